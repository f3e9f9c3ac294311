import Foundation

/// The loss network: torchvision's VGG16 `features[0:23]` (Simonyan & Zisserman 2015), frozen.
///
/// Ten 3×3 convolutions with zero padding 1, each followed by ReLU, and three 2×2 max-pools:
///   64 64 M 128 128 M 256 256 256 M 512 512 512
/// It returns the four taps relu1_2, relu2_2, relu3_3, relu4_3 (after features 3, 8, 15, 22) and
/// back-propagates to its input only (no parameter gradients). Input: an ImageNet-normalised
/// batch [N, 3, H, W].
public final class VGG16 {
    public enum Tap: Int, CaseIterable, Sendable { case relu1_2 = 0, relu2_2, relu3_3, relu4_3 }

    /// torchvision indices of the convolutions in features[0:23].
    public static let convIndices = [0, 2, 5, 7, 10, 12, 14, 17, 19, 21]
    static let layerNames = ["conv1_1", "conv1_2", "conv2_1", "conv2_2", "conv3_1", "conv3_2", "conv3_3",
                             "conv4_1", "conv4_2", "conv4_3"]
    static let channels = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512]
    /// After which conv (position in `convIndices`) a pool follows, and where the taps are.
    static let poolAfter: Set<Int> = [1, 3, 6]
    static let tapAfter: [Int: Tap] = [1: .relu1_2, 3: .relu2_2, 6: .relu3_3, 9: .relu4_3]

    public let parameters: [Parameter]
    let specs: [ConvSpec]
    let convOut: [Activation]            // ReLU outputs of each conv
    let poolOut: [Int: Activation]       // pooled outputs, keyed by the conv position before them
    let ws = Scratch()
    /// Each layer's Winograd kernels, kept while the weights stay the same.
    let kernels: [WinogradKernelCache]
    private var inputDims = Dims4(0, 0, 0, 0)
    private var input: Tensor?
    private var depth = 0                // number of convs run by the last forward

    public init() {
        var ps: [Parameter] = [], specs: [ConvSpec] = []
        var cin = 3
        for (i, cout) in Self.channels.enumerated() {
            let idx = Self.convIndices[i]
            ps.append(Parameter(name: "features.\(idx).weight", shape: [cout, cin, 3, 3], trainable: false))
            ps.append(Parameter(name: "features.\(idx).bias", shape: [cout], trainable: false))
            specs.append(ConvSpec(cin: cin, cout: cout, k: 3, stride: 1, pad: 1))
            cin = cout
        }
        parameters = ps
        self.specs = specs
        kernels = specs.map { _ in WinogradKernelCache() }
        convOut = specs.map { _ in Activation() }
        var pools: [Int: Activation] = [:]
        for i in Self.poolAfter { pools[i] = Activation() }
        poolOut = pools
    }

    /// A seeded random VGG16 (kaiming-normal fan_out weights, zero biases, as
    /// `torch_reference.py random-vgg` draws them): for tests and demos without real weights.
    public convenience init(randomSeed seed: UInt64) {
        self.init()
        for p in parameters where p.shape.count == 4 {
            var rng = SplitMix64(seed: seed ^ fnv1a64(p.name))
            let std = (2 / Double(p.shape[0] * 9)).squareRoot()
            for i in 0..<p.value.count { p.value.data[i] = Float(rng.normal() * std) }
        }
    }

    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

    // MARK: - Forward

    /// Runs the network up to and including `upTo`; returns the taps computed so far.
    /// Tap tensors are owned by the network and overwritten by the next forward.
    @discardableResult
    public func forward(_ x: Tensor, upTo last: Tap = .relu4_3) -> [Tensor] {
        input = x
        inputDims = x.dims4
        var cur = x
        var taps: [Tensor] = []
        depth = 0
        for i in 0..<specs.count {
            let y = convOut[i].get(specs[i].output(cur.dims4))
            Profiler.time("vgg \(Self.layerNames[i]) fwd") {
                conv2dForward(y.data, cur.data, cur.dims4, parameters[2 * i].value.data, parameters[2 * i + 1].value.data, specs[i], ws,
                              kernels: kernels[i])
                reluForward(y.data, y.data, y.count)
            }
            depth = i + 1
            cur = y
            if let tap = Self.tapAfter[i] {
                taps.append(y)
                if tap == last { break }
            }
            if let pool = poolOut[i] {
                let p = pool.get(maxPool2Dims(y.dims4))
                maxPool2Forward(p.data, y.data, y.dims4)
                cur = p
            }
        }
        return taps
    }

    // MARK: - Backward

    /// Back-propagates from the taps of the last full forward to its input.
    /// `addTapGradient(tap, grad)` is called when the backward pass reaches a tap: it must ADD the
    /// loss gradient with respect to that tap into `grad` (shape of the tap). The result, the
    /// gradient with respect to the input, is written into `dx`.
    public func backward(dx: UnsafeMutablePointer<Float>, grads: [Scratch],
                         addTapGradient: (Tap, UnsafeMutablePointer<Float>) -> Void) {
        precondition(depth == specs.count, "VGG16 backward needs a full forward")
        let size = specs.indices.map { convOut[$0].tensor!.count }.max()!
        var a = grads[0].pointer(size), b = grads[1].pointer(size)
        a.update(repeating: 0, count: convOut[specs.count - 1].tensor!.count)
        for i in stride(from: specs.count - 1, through: 0, by: -1) {
            let y = convOut[i].tensor!
            // `a` holds the gradient of this stage's output: the pool after conv i if there is one.
            if poolOut[i] != nil {
                maxPool2Backward(b, a, x: y.data, y.dims4)
                swap(&a, &b)
            }
            if let tap = Self.tapAfter[i] { addTapGradient(tap, a) }
            let xin = i == 0 ? input! : (poolOut[i - 1]?.tensor ?? convOut[i - 1].tensor!)
            Profiler.time("vgg \(Self.layerNames[i]) bwd") {
                reluBackward(a, a, y: y.data, y.count)
                conv2dBackward(dx: i == 0 ? dx : b, dw: nil, db: nil, dy: a, x: xin.data, xin.dims4,
                               w: parameters[2 * i].value.data, specs[i], ws, kernels: kernels[i])
            }
            swap(&a, &b)
        }
    }

    public var activationBytes: Int {
        convOut.reduce(0) { $0 + $1.bytes } + poolOut.values.reduce(0) { $0 + $1.bytes } + 4 * ws.capacity
            + kernels.reduce(0) { $0 + $1.bytes }
    }
}
