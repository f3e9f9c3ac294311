import Foundation
import NSTModel
import XCTest

/// The ONNX export read back with an independent protobuf decoder: the model header, the graph's
/// nodes and attributes, the dynamic dimensions, the initializers' bytes, and — through a naive
/// evaluator of the decoded graph — that the graph computes what `TransformerNet.infer` computes.
final class ONNXExportTests: XCTestCase {
    override func setUp() { Threads.configure(2) }

    /// Golden-fixture parameters (no parameter at its default, so a swapped scale and bias or two
    /// swapped convolutions change the output), with deconv3 scaled so that the raw output runs
    /// well past both ends of [0, 255] and the Clip matters.
    static func makeNet() -> TransformerNet {
        let net = TransformerNet()
        Golden.fillTransformer(net)
        for i in 0..<net.deconv3.weight.value.count { net.deconv3.weight.value.data[i] *= 400 }
        net.deconv3.bias.value.data.update(from: [90, 128, 160], count: 3)
        return net
    }

    static func randomInput(_ shape: [Int], seed: UInt64) -> Tensor {
        let x = Tensor(shape: shape)
        var rng = SplitMix64(seed: seed)
        for i in 0..<x.count { x.data[i] = Float(255 * rng.unit()) }
        return x
    }

    // MARK: - Model header and graph interface

    func testModelDeclaresOpset17ProducerAndMetadata() throws {
        let model = try DecodedModel(TransformerNet(seed: 3).onnxModel(source: "candy.safetensors").serialized())
        XCTAssertEqual(model.irVersion, 8)
        XCTAssertEqual(model.opsets.map(\.domain), [""], "only the default ai.onnx operator set")
        XCTAssertEqual(model.opsets.map(\.version), [17])
        XCTAssertEqual(model.producerName, "nst-orchestrator")
        XCTAssertTrue(model.docString.contains("[0, 255]"), model.docString)
        XCTAssertEqual(model.metadata, ["input_range": "0-255", "output_clipped": "true", "source": "candy.safetensors"])
        XCTAssertEqual(model.graph.name, "TransformerNet")
    }

    func testInputAndOutputAreFloatNCHWWithDynamicBatchHeightAndWidth() throws {
        let graph = try DecodedModel(TransformerNet(seed: 3).onnxModel().serialized()).graph
        XCTAssertEqual(graph.inputs.map(\.name), ["input"])
        XCTAssertEqual(graph.outputs.map(\.name), ["output"])
        XCTAssertEqual(graph.inputs[0].elementType, 1, "FLOAT")
        XCTAssertEqual(graph.outputs[0].elementType, 1, "FLOAT")
        XCTAssertEqual(graph.inputs[0].dims, [.param("batch"), .value(3), .param("height"), .param("width")])
        XCTAssertEqual(graph.outputs[0].dims, [.param("batch"), .value(3), .param("out_height"), .param("out_width")])
    }

    // MARK: - Nodes

    /// The op sequence of the reference's forward, with Relu after every instance norm except the
    /// second one of each residual block, and Clip last.
    func testNodesFollowTheReferenceForwardInOrder() throws {
        let graph = try DecodedModel(TransformerNet(seed: 3).onnxModel().serialized()).graph
        let convBlock = ["Pad", "Conv", "InstanceNormalization", "Relu"]
        let residual = ["Pad", "Conv", "InstanceNormalization", "Relu", "Pad", "Conv", "InstanceNormalization", "Add"]
        let expected = convBlock + convBlock + convBlock + Array([[String]](repeating: residual, count: 5).joined())
            + ["Resize"] + convBlock + ["Resize"] + convBlock + ["Pad", "Conv", "Clip"]
        XCTAssertEqual(graph.nodes.map(\.opType), expected)

        let raw = try DecodedModel(TransformerNet(seed: 3).onnxModel(clipOutput: false).serialized()).graph
        XCTAssertEqual(raw.nodes.map(\.opType), Array(expected.dropLast()), "--no-clip leaves out only the Clip")
        XCTAssertEqual(raw.nodes.last?.outputs, ["output"])
        XCTAssertEqual(graph.nodes.last?.outputs, ["output"])
    }

    func testConvolutionsAndInstanceNormsUseTheirOwnParameters() throws {
        let net = TransformerNet(seed: 3)
        let graph = try DecodedModel(net.onnxModel().serialized()).graph
        let convs = graph.nodes.filter { $0.opType == "Conv" }
        XCTAssertEqual(convs.map { Array($0.inputs.dropFirst()) },
                       net.convLayers.map { [$0.weight.name, $0.bias.name] })
        let norms = [net.in1, net.in2, net.in3] + net.res.flatMap { [$0.in1, $0.in2] } + [net.in4, net.in5]
        XCTAssertEqual(graph.nodes.filter { $0.opType == "InstanceNormalization" }.map { Array($0.inputs.dropFirst()) },
                       norms.map { [$0.weight.name, $0.bias.name] }, "scale = weight, B = bias")
    }

    func testAttributes() throws {
        let net = TransformerNet(seed: 3)
        let graph = try DecodedModel(net.onnxModel().serialized()).graph
        let strides: [Int64] = [1, 2, 2] + [Int64](repeating: 1, count: 10) + [1, 1, 1]
        for (i, (node, layer)) in zip(graph.nodes.filter { $0.opType == "Conv" }, net.convLayers).enumerated() {
            let k = Int64(layer.spec.k)
            XCTAssertEqual(node.attributes["kernel_shape"]?.value, .ints([k, k]), node.name)
            XCTAssertEqual(node.attributes["strides"]?.value, .ints([strides[i], strides[i]]), node.name)
            XCTAssertEqual(node.attributes["pads"]?.value, .ints([0, 0, 0, 0]), "padding is the Pad node's: \(node.name)")
            XCTAssertEqual(node.attributes["dilations"]?.value, .ints([1, 1]), node.name)
            XCTAssertEqual(node.attributes["group"]?.value, .int(1), node.name)
        }
        for (i, node) in graph.nodes.enumerated() {
            switch node.opType {
            case "Pad":
                // Reflection by k/2 of the convolution that reads it, on H and W only.
                let conv = graph.nodes[i + 1]
                XCTAssertEqual(conv.opType, "Conv")
                XCTAssertEqual(conv.inputs[0], node.outputs[0])
                let p = Int64(graph.initializer(conv.inputs[1])!.dims[2] / 2)
                XCTAssertEqual(node.attributes["mode"]?.value, .string("reflect"), node.name)
                XCTAssertEqual(try graph.initializer(node.inputs[1])?.int64s(), [0, 0, p, p, 0, 0, p, p], node.name)
                XCTAssertEqual(node.attributes.count, 1, node.name)
            case "InstanceNormalization":
                XCTAssertEqual(node.attributes["epsilon"]?.value, .float(1e-5), node.name)
            case "Resize":
                XCTAssertEqual(node.attributes["mode"]?.value, .string("nearest"), node.name)
                XCTAssertEqual(node.attributes["coordinate_transformation_mode"]?.value, .string("asymmetric"), node.name)
                XCTAssertEqual(node.attributes["nearest_mode"]?.value, .string("floor"), node.name)
                XCTAssertEqual(node.inputs.count, 3, "x, roi (left empty), scales")
                XCTAssertEqual(node.inputs[1], "", "no roi")
                XCTAssertEqual(try graph.initializer(node.inputs[2])?.floats(), [1, 1, 2, 2], node.name)
            case "Clip":
                XCTAssertEqual(try graph.initializer(node.inputs[1])?.floats(), [0])
                XCTAssertEqual(try graph.initializer(node.inputs[2])?.floats(), [255])
                XCTAssertEqual(graph.initializer(node.inputs[1])?.dims, [], "min is a scalar")
            case "Conv": break  // above
            default:
                XCTAssertTrue(node.attributes.isEmpty, "\(node.name) (\(node.opType)) has no attributes")
            }
        }
    }

    /// Topological order, every input defined before use, every value written once, every
    /// initializer used (what onnx.checker also requires).
    func testGraphIsWellFormed() throws {
        let graph = try DecodedModel(TransformerNet(seed: 3).onnxModel().serialized()).graph
        var defined = Set(graph.initializers.map(\.name))
        XCTAssertEqual(defined.count, graph.initializers.count, "initializer names are distinct")
        defined.insert("input")
        var used: Set<String> = []
        for node in graph.nodes {
            for input in node.inputs where !input.isEmpty {
                XCTAssertTrue(defined.contains(input), "\(node.name) reads \(input) before it is defined")
                used.insert(input)
            }
            for output in node.outputs { XCTAssertTrue(defined.insert(output).inserted, "\(output) written twice") }
        }
        let unused = Set(graph.initializers.map(\.name)).subtracting(used)
        XCTAssertTrue(unused.isEmpty, "initializers no node reads: \(unused)")
        XCTAssertEqual(Set(graph.nodes.map(\.name)).count, graph.nodes.count, "node names are distinct")
    }

    // MARK: - Initializers

    func testEveryParameterIsAnInitializerWithTheSameFloat32Bytes() throws {
        let net = Self.makeNet()
        let graph = try DecodedModel(net.onnxModel().serialized()).graph
        for p in net.parameters {
            guard let t = graph.initializer(p.name) else { XCTFail("no initializer \(p.name)"); continue }
            XCTAssertEqual(t.dims, p.shape, p.name)
            XCTAssertEqual(t.dataType, 1, "\(p.name) is FLOAT")
            XCTAssertEqual(t.rawData?.count, 4 * p.value.count, "\(p.name) is raw_data, 4 bytes a value")
            XCTAssertTrue(t.floatData.isEmpty, p.name)
            XCTAssertEqual(try t.floats(), p.value.array, p.name)   // read as little-endian IEEE 754
        }
        let constants = Set(graph.initializers.map(\.name)).subtracting(net.parameters.map(\.name))
        XCTAssertEqual(constants, ["pads_4", "pads_1", "upsample_scales", "clip_min", "clip_max"])
        XCTAssertEqual(graph.initializers.count, net.parameters.count + constants.count)
    }

    // MARK: - What the graph computes

    /// The decoded graph, run by the reference evaluator, against `infer`: raw (no Clip) and clipped,
    /// at two sizes from the same file (dynamic N, H and W; 18×26 is not a multiple of 4, so the
    /// output is 20×28, as in PyTorch).
    func testGraphComputesWhatTheNetworkComputes() throws {
        let net = Self.makeNet()
        let raw = ONNXReferenceEvaluator(graph: try DecodedModel(net.onnxModel(clipOutput: false).serialized()).graph)
        let clipped = ONNXReferenceEvaluator(graph: try DecodedModel(net.onnxModel().serialized()).graph)
        for (shape, outHW) in [([1, 3, 20, 24], [20, 24]), ([2, 3, 18, 26], [20, 28])] {
            let x = Self.randomInput(shape, seed: UInt64(shape[2]))
            let expected = net.infer(x)
            XCTAssertEqual(expected.shape, [shape[0], 3] + outHW)
            let ref = expected.array
            XCTAssertTrue(ref.contains { $0 < -50 } && ref.contains { $0 > 300 } && ref.contains { $0 > 10 && $0 < 245 },
                          "the raw output spans [0, 255] and beyond, so the Clip is tested")
            let input = ONNXReferenceEvaluator.Array4(shape: shape, data: x.array)
            let y = try raw.run(input)
            XCTAssertEqual(y.shape, expected.shape)
            assertWithin(y.data, ref, 1e-3, "raw output at \(shape)")
            let yc = try clipped.run(input)
            XCTAssertEqual(yc.shape, expected.shape)
            assertWithin(yc.data, ref.map { min(max($0, 0), 255) }, 1e-3, "clipped output at \(shape)")
            XCTAssertEqual(yc.data.min(), 0)
            XCTAssertEqual(yc.data.max(), 255)
        }
    }

    /// The clipped graph's output truncated to bytes is `stylize`'s image, up to 1 where float
    /// rounding puts the two sides of an integer.
    func testClippedOutputIsTheStylizedImage() throws {
        let net = Self.makeNet()
        let evaluator = ONNXReferenceEvaluator(graph: try DecodedModel(net.onnxModel().serialized()).graph)
        var rng = SplitMix64(seed: 11)
        let image = RGBImage(width: 20, height: 16, pixels: (0..<20 * 16 * 3).map { _ in UInt8(rng.next() >> 56) })
        let x = Tensor(shape: [1, 3, 16, 20])
        image.writeCHW(to: x.data)
        let y = try evaluator.run(.init(shape: x.shape, data: x.array))
        let fromONNX = y.data.withUnsafeBufferPointer { RGBImage(chw: $0.baseAddress!, width: 20, height: 16) }
        let stylized = net.stylize(image)
        XCTAssertEqual([stylized.width, stylized.height], [20, 16])
        let diffs = zip(fromONNX.pixels, stylized.pixels).map { abs(Int($0) - Int($1)) }
        XCTAssertLessThanOrEqual(diffs.max() ?? 99, 1)
        XCTAssertLessThan(diffs.filter { $0 != 0 }.count, diffs.count / 100, "at most 1% of the bytes differ, by 1")
        XCTAssertTrue(stylized.pixels.contains(0) && stylized.pixels.contains(255), "the clamp is exercised")
    }

    /// The evaluator must be able to fail: a graph with two convolutions' weights exchanged
    /// (same shapes) gives another output.
    func testEvaluatorSeesASwappedWeight() throws {
        let net = Self.makeNet()
        var graph = try DecodedModel(net.onnxModel(clipOutput: false).serialized()).graph
        let a = graph.nodes.firstIndex { $0.inputs.contains("res1.conv1.conv2d.weight") }!
        let b = graph.nodes.firstIndex { $0.inputs.contains("res1.conv2.conv2d.weight") }!
        graph.nodes[a].inputs[1] = "res1.conv2.conv2d.weight"
        graph.nodes[b].inputs[1] = "res1.conv1.conv2d.weight"
        let x = Self.randomInput([1, 3, 12, 16], seed: 5)
        let y = try ONNXReferenceEvaluator(graph: graph).run(.init(shape: x.shape, data: x.array))
        let ref = net.infer(x).array
        let maxDiff = zip(y.data, ref).map { abs($0 - $1) }.max()!
        XCTAssertGreaterThan(maxDiff, 1, "a wrong graph is noticed")
    }

    // MARK: - Writing the file

    func testExportWritesTheSerializedModelAndNamesTheFileOnFailure() throws {
        let net = TransformerNet(seed: 3)
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-onnx-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("net.onnx")
        try net.exportONNX(to: url, source: "net.safetensors")
        XCTAssertEqual([UInt8](try Data(contentsOf: url)), net.onnxModel(source: "net.safetensors").serialized())

        let missing = dir.appendingPathComponent("no-such-folder/net.onnx")
        XCTAssertThrowsError(try net.exportONNX(to: missing)) { error in
            guard case .writeFailed(let file, _)? = error as? ONNXExportError else { return XCTFail("\(error)") }
            XCTAssertEqual(file, missing.path)
            XCTAssertEqual("\(error)", "\(missing.path): cannot write the ONNX model: no folder \(missing.deletingLastPathComponent().path)")
        }
        XCTAssertThrowsError(try net.exportONNX(to: dir)) { error in
            XCTAssertEqual(error as? ONNXExportError, .writeFailed(file: dir.path, reason: "is a directory"))
        }
    }
}

/// max |a − b| ≤ tol · max(1, max |b|): relative to the output's range, b the reference.
func assertWithin(_ a: [Float], _ b: [Float], _ tol: Double, _ label: String, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, label, file: file, line: line)
    let maxDiff = zip(a, b).map { Double(abs($0 - $1)) }.max() ?? 0
    let scale = max(1, b.map { Double(abs($0)) }.max() ?? 0)
    XCTAssertLessThanOrEqual(maxDiff, tol * scale, "\(label): max abs diff \(maxDiff), scale \(scale)", file: file, line: line)
}
