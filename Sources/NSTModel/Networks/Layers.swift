/// The seed's building blocks, each owning its parameters and the activations its backward
/// needs. Names follow the PyTorch modules (`conv1.conv2d.weight`, `res2.in1.bias`, …).
///
/// Gradient convention: `backward(dy:dx:)` reads the gradient of the layer's output from `dy`
/// and writes (overwrites) the gradient of its input into `dx`; parameter gradients are
/// accumulated. `dy` and `dx` never alias; `dy` may be clobbered.

// MARK: - ConvLayer: reflection pad + conv (the seed's ConvLayer and UpsampleConvLayer)

public final class ConvLayer {
    public let spec: ConvSpec
    public let upsample: Bool
    public let weight: Parameter
    public let bias: Parameter
    let padded = Activation(), out = Activation()
    private(set) var inputDims = Dims4(0, 0, 0, 0)

    /// `prefix` is the module name, e.g. "conv1" or "res3.conv2"; the conv is `<prefix>.conv2d`.
    public init(_ prefix: String, cin: Int, cout: Int, k: Int, stride: Int, upsample: Bool = false, trainable: Bool = true) {
        spec = ConvSpec(cin: cin, cout: cout, k: k, stride: stride, pad: 0)
        self.upsample = upsample
        weight = Parameter(name: "\(prefix).conv2d.weight", shape: [cout, cin, k, k], trainable: trainable)
        bias = Parameter(name: "\(prefix).conv2d.bias", shape: [cout], trainable: trainable)
    }

    var pad: Int { spec.k / 2 }

    public func forward(_ x: Tensor, _ ctx: Workspace) -> Tensor {
        inputDims = x.dims4
        let p: Tensor
        if upsample {
            p = padded.get(upsample2PadDims(inputDims, pad))
            upsample2PadForward(p.data, x.data, inputDims, pad)
        } else {
            p = padded.get(reflectionPadDims(inputDims, pad))
            reflectionPadForward(p.data, x.data, inputDims, pad)
        }
        let y = out.get(spec.output(p.dims4))
        conv2dForward(y.data, p.data, p.dims4, weight.value.data, bias.value.data, spec, ctx.columns)
        return y
    }

    /// `dx` nil: no input gradient (the first layer of the network).
    public func backward(dy: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>?, _ ctx: Workspace) {
        let p = padded.tensor!
        let pd = p.dims4
        let dpad = dx == nil ? nil : ctx.padGrad.pointer(pd.count)
        conv2dBackward(dx: dpad, dw: weight.grad?.data, db: bias.grad?.data, dy: dy,
                       x: p.data, pd, w: weight.value.data, spec, ctx.columns, transposed: ctx.transposedWeights)
        guard let dx, let dpad else { return }
        if upsample {
            let ud = upsample2Dims(inputDims)
            let dup = ctx.upGrad.pointer(ud.count)
            reflectionPadBackward(dup, dpad, ud, pad)
            upsample2Backward(dx, dup, inputDims)
        } else {
            reflectionPadBackward(dx, dpad, inputDims, pad)
        }
    }

    public var parameters: [Parameter] { [weight, bias] }
    var activationBytes: Int { padded.bytes + out.bytes }

    /// Forward without keeping anything for backward: `x` → `y` through the caller's scratch
    /// (`pad` holds the padded input). Returns the output dims.
    func infer(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4, pad padBuf: Scratch, _ ctx: Workspace) -> Dims4 {
        let pd = upsample ? upsample2PadDims(xd, pad) : reflectionPadDims(xd, pad)
        let p = padBuf.pointer(pd.count)
        if upsample { upsample2PadForward(p, x, xd, pad) } else { reflectionPadForward(p, x, xd, pad) }
        conv2dForward(y, p, pd, weight.value.data, bias.value.data, spec, ctx.columns)
        return spec.output(pd)
    }
}

// MARK: - InstanceNorm2d(affine=True), optionally followed by ReLU

public final class InstanceNormLayer {
    public let weight: Parameter
    public let bias: Parameter
    public let relu: Bool
    let cache = InstanceNormCache()
    let out = Activation()
    private var input: Tensor?

    public init(_ name: String, channels: Int, relu: Bool, trainable: Bool = true) {
        weight = Parameter(name: "\(name).weight", shape: [channels], trainable: trainable)
        bias = Parameter(name: "\(name).bias", shape: [channels], trainable: trainable)
        weight.value.fill(1)
        self.relu = relu
    }

    public func forward(_ x: Tensor) -> Tensor {
        input = x
        let y = out.get(x.dims4)
        instanceNormForward(y.data, x.data, x.dims4, weight.value.data, bias.value.data, relu: relu, cache: cache)
        return y
    }

    public func backward(dy: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>) {
        let x = input!
        instanceNormBackward(dx, dgamma: weight.grad?.data, dbeta: bias.grad?.data, dy, x: x.data,
                             y: out.tensor!.data, x.dims4, weight.value.data, relu: relu, cache: cache)
    }

    public var parameters: [Parameter] { [weight, bias] }
    var activationBytes: Int { out.bytes }

    /// In place, keeping nothing for backward.
    func infer(_ x: UnsafeMutablePointer<Float>, _ xd: Dims4) {
        instanceNormForward(x, x, xd, weight.value.data, bias.value.data, relu: relu, cache: cache)
    }
}

// MARK: - ResidualBlock: x + in2(conv2(relu(in1(conv1(x)))))

public final class ResidualBlock {
    public let conv1, conv2: ConvLayer
    public let in1, in2: InstanceNormLayer
    let out = Activation()

    public init(_ name: String, channels c: Int) {
        conv1 = ConvLayer("\(name).conv1", cin: c, cout: c, k: 3, stride: 1)
        in1 = InstanceNormLayer("\(name).in1", channels: c, relu: true)
        conv2 = ConvLayer("\(name).conv2", cin: c, cout: c, k: 3, stride: 1)
        in2 = InstanceNormLayer("\(name).in2", channels: c, relu: false)
    }

    public func forward(_ x: Tensor, _ ctx: Workspace) -> Tensor {
        let h = in2.forward(conv2.forward(in1.forward(conv1.forward(x, ctx)), ctx))
        let y = out.get(x.dims4)
        for i in 0..<y.count { y.data[i] = h.data[i] + x.data[i] }
        return y
    }

    /// `tmp` is a third buffer as large as dx.
    public func backward(dy: UnsafeMutablePointer<Float>, dx: UnsafeMutablePointer<Float>, tmp: UnsafeMutablePointer<Float>, _ ctx: Workspace) {
        let count = out.tensor!.count
        in2.backward(dy: dy, dx: tmp)
        conv2.backward(dy: tmp, dx: dx, ctx)
        in1.backward(dy: dx, dx: tmp)
        conv1.backward(dy: tmp, dx: dx, ctx)
        for i in 0..<count { dx[i] += dy[i] }
    }

    public var parameters: [Parameter] { conv1.parameters + in1.parameters + conv2.parameters + in2.parameters }
    var activationBytes: Int { conv1.activationBytes + in1.activationBytes + conv2.activationBytes + in2.activationBytes + out.bytes }
}

// MARK: - Shared scratch

/// Scratch buffers shared by all layers of a network, allocated on the first step.
public final class Workspace {
    public let columns = Scratch()   // im2col / col2im bands
    public let padGrad = Scratch()   // gradient of a padded input
    public let upGrad = Scratch()    // gradient of an upsampled input
    public let transposedWeights = Scratch()
    public let grads = [Scratch(), Scratch(), Scratch()]  // ping-pong activation gradients
    public init() {}

    public var bytes: Int {
        4 * (columns.capacity + padGrad.capacity + upGrad.capacity + grads.reduce(0) { $0 + $1.capacity })
    }
}
