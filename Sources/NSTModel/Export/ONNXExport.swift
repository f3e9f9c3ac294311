import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Exports a TransformerNet as an ONNX model (opset 17, IR version 8) that computes what
/// `infer` computes, op for op as the PyTorch reference's modules:
///
///   ConvLayer            Pad(mode=reflect, pads=[0,0,p,p,0,0,p,p]), Conv(k, stride, pads 0), p = k/2
///   UpsampleConvLayer    Resize(nearest, ×2: scales [1,1,2,2], asymmetric, floor), then as ConvLayer
///   InstanceNorm2d       InstanceNormalization(epsilon 1e-5, scale = weight, B = bias), Relu
///   ResidualBlock        … Add(block output, block input)
///
/// `Resize` with coordinate_transformation_mode=asymmetric and nearest_mode=floor is
/// `F.interpolate(mode="nearest", scale_factor=2)`: output pixel i reads input pixel ⌊i/2⌋.
///
/// Input `input` [N, 3, H, W] float32 RGB in [0, 255] (no mean/std normalisation); N, H and W
/// are dynamic (`batch`, `height`, `width`). Output `output` [N, 3, 4⌈H/4⌉, 4⌈W/4⌉]. With
/// `clipOutput` (the default) the graph ends with Clip(0, 255), so `output` is the image
/// `stylize` writes before truncation to bytes; without it, `output` is the raw network output
/// (PyTorch's `TransformerNet.forward`), which may leave [0, 255].
///
/// Weights are initializers named by the PyTorch state_dict keys (`conv1.conv2d.weight`, …),
/// stored as raw float32 little-endian.
extension TransformerNet {
    public static let onnxOpsetVersion: Int64 = 17
    /// The IR version that goes with opset 17 (ONNX 1.12).
    public static let onnxIRVersion: Int64 = 8

    /// The ONNX model of this network. `source` (a file name, say) goes into the metadata.
    public func onnxModel(clipOutput: Bool = true, source: String? = nil) -> ONNX.Model {
        var b = ONNXGraphBuilder()
        var y = b.instanceNorm(in1, b.convLayer(conv1, "input"))
        y = b.instanceNorm(in2, b.convLayer(conv2, y))
        y = b.instanceNorm(in3, b.convLayer(conv3, y))
        for (i, r) in res.enumerated() {
            let block = "res\(i + 1)"
            var h = b.instanceNorm(r.in1, b.convLayer(r.conv1, y))
            h = b.instanceNorm(r.in2, b.convLayer(r.conv2, h))
            y = b.add(h, y, name: block)
        }
        y = b.instanceNorm(in4, b.convLayer(deconv1, y))
        y = b.instanceNorm(in5, b.convLayer(deconv2, y))
        if clipOutput {
            b.clip(b.convLayer(deconv3, y), 0, 255, output: "output")
        } else {
            b.convLayer(deconv3, y, output: "output")
        }

        let outputNote = clipOutput
            ? "clamped to [0, 255] (Clip), as the stylize command does before writing bytes"
            : "the raw network output, not clamped (convert with clip(0, 255))"
        let doc = """
            Johnson et al. fast neural style TransformerNet, exported by nst-orchestrator. \
            input: float32 [N, 3, H, W], RGB pixel values in [0, 255], no normalisation; \
            output: float32 [N, 3, 4*ceil(H/4), 4*ceil(W/4)], RGB in [0, 255], \(outputNote).
            """
        let graph = ONNX.Graph(
            name: "TransformerNet", docString: doc, nodes: b.nodes, initializers: b.initializers,
            inputs: [ONNX.ValueInfo(name: "input", elementType: .float,
                                    dims: [.param("batch"), .value(3), .param("height"), .param("width")])],
            outputs: [ONNX.ValueInfo(name: "output", elementType: .float,
                                     dims: [.param("batch"), .value(3), .param("out_height"), .param("out_width")])])
        var metadata: [(key: String, value: String)] = [
            ("input_range", "0-255"),
            ("output_clipped", clipOutput ? "true" : "false"),
        ]
        if let source { metadata.append(("source", source)) }
        return ONNX.Model(
            irVersion: Self.onnxIRVersion, opsetImports: [ONNX.OperatorSetID(domain: "", version: Self.onnxOpsetVersion)],
            producerName: "nst-orchestrator", producerVersion: "1", modelVersion: 1,
            docString: doc, graph: graph, metadata: metadata)
    }

    /// Writes `onnxModel(clipOutput:source:)` to `url`, atomically (a temporary file renamed over it).
    public func exportONNX(to url: URL, clipOutput: Bool = true, source: String? = nil) throws(ONNXExportError) {
        let folder = url.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .writeFailed(file: url.path, reason: "no folder \(folder)")
        }
        if FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory), isDirectory.boolValue {
            throw .writeFailed(file: url.path, reason: "is a directory")
        }
        let bytes = onnxModel(clipOutput: clipOutput, source: source).serialized()
        do {
            try Data(bytes).write(to: url, options: .atomic)
        } catch {
            throw .writeFailed(file: url.path, reason: Self.reason(error))
        }
    }

    /// The POSIX reason behind a Foundation file error where there is one ("No such file or directory").
    private static func reason(_ error: any Error) -> String {
        let ns = error as NSError
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(underlying.code)))
        }
        return ns.localizedDescription
    }
}

/// Why an ONNX model could not be written; names the file.
public enum ONNXExportError: Error, CustomStringConvertible, Equatable, Sendable {
    case writeFailed(file: String, reason: String)

    public var description: String {
        switch self {
        case .writeFailed(let file, let reason): return "\(file): cannot write the ONNX model: \(reason)"
        }
    }
}

// MARK: - Graph builder

/// Appends nodes and initializers in forward order; every method returns the name of the value
/// it produced. Values are named after the PyTorch modules that compute them
/// (`conv1.reflection_pad`, `conv1.conv2d`, `in1`, `in1.relu`, `res1`, `deconv1.upsample`).
struct ONNXGraphBuilder {
    private(set) var nodes: [ONNX.Node] = []
    private(set) var initializers: [ONNX.Initializer] = []
    private var constants: Set<String> = []

    /// A Pad (+ Resize for an upsampling layer) + Conv, its weights as initializers.
    @discardableResult
    mutating func convLayer(_ layer: ConvLayer, _ x: String, output: String? = nil) -> String {
        let module = String(layer.weight.name.dropLast(".conv2d.weight".count))
        var y = x
        if layer.upsample {
            let scales = constant("upsample_scales", dims: [4], .floats([1, 1, 2, 2]))
            y = node("Resize", "\(module).upsample", [y, "", scales], attributes: [
                .init("mode", .string("nearest")),
                .init("coordinate_transformation_mode", .string("asymmetric")),
                .init("nearest_mode", .string("floor")),
            ])
        }
        let p = Int64(layer.spec.k / 2)
        let pads = constant("pads_\(p)", dims: [8], .int64s([0, 0, p, p, 0, 0, p, p]))
        y = node("Pad", "\(module).reflection_pad", [y, pads], attributes: [.init("mode", .string("reflect"))])
        let k = Int64(layer.spec.k), s = Int64(layer.spec.stride)
        return node("Conv", "\(module).conv2d", [y, parameter(layer.weight), parameter(layer.bias)], output: output,
                    attributes: [.init("kernel_shape", .ints([k, k])), .init("strides", .ints([s, s])),
                                 .init("pads", .ints([0, 0, 0, 0])), .init("dilations", .ints([1, 1])),
                                 .init("group", .int(1))])
    }

    /// InstanceNormalization with the layer's affine weight and bias, then Relu if the layer has one.
    mutating func instanceNorm(_ layer: InstanceNormLayer, _ x: String) -> String {
        let module = String(layer.weight.name.dropLast(".weight".count))
        let y = node("InstanceNormalization", module, [x, parameter(layer.weight), parameter(layer.bias)],
                     attributes: [.init("epsilon", .float(Float(instanceNormEps)))])
        return layer.relu ? node("Relu", "\(module).relu", [y]) : y
    }

    mutating func add(_ a: String, _ b: String, name: String) -> String { node("Add", name, [a, b]) }

    mutating func clip(_ x: String, _ low: Float, _ high: Float, output: String) {
        let lo = constant("clip_min", dims: [], .floats([low]))
        let hi = constant("clip_max", dims: [], .floats([high]))
        node("Clip", "clip", [x, lo, hi], output: output)
    }

    // MARK: - Nodes and initializers

    @discardableResult
    private mutating func node(_ op: String, _ name: String, _ inputs: [String], output: String? = nil,
                               attributes: [ONNX.Attribute] = []) -> String {
        let y = output ?? name
        nodes.append(ONNX.Node(name: name, opType: op, inputs: inputs, outputs: [y], attributes: attributes))
        return y
    }

    private mutating func parameter(_ p: Parameter) -> String {
        initializers.append(ONNX.Initializer(name: p.name, dims: p.shape.map(Int64.init), content: .raw(p.value)))
        return p.name
    }

    /// A constant initializer, added once however often it is used.
    private mutating func constant(_ name: String, dims: [Int64], _ content: ONNX.Initializer.Content) -> String {
        if constants.insert(name).inserted {
            initializers.append(ONNX.Initializer(name: name, dims: dims, content: content))
        }
        return name
    }
}
