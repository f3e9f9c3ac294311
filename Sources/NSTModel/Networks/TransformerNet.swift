import Foundation

/// Johnson et al.'s image transformation network exactly as in the seed (and
/// `torch_reference.py`): three convolutions (9×9, then two stride-2 3×3) with instance norm
/// and ReLU, five residual blocks of 128 channels, two nearest-×2 upsample convolutions and a
/// final 9×9 convolution. Input and output are [N, 3, H, W] images in [0, 255] (the output is
/// not clamped during training); H and W should be multiples of 4.
public final class TransformerNet {
    public let conv1: ConvLayer, in1: InstanceNormLayer
    public let conv2: ConvLayer, in2: InstanceNormLayer
    public let conv3: ConvLayer, in3: InstanceNormLayer
    public let res: [ResidualBlock]
    public let deconv1: ConvLayer, in4: InstanceNormLayer
    public let deconv2: ConvLayer, in5: InstanceNormLayer
    public let deconv3: ConvLayer
    public let parameters: [Parameter]
    let ctx = Workspace()

    public init() {
        conv1 = ConvLayer("conv1", cin: 3, cout: 32, k: 9, stride: 1)
        in1 = InstanceNormLayer("in1", channels: 32, relu: true)
        conv2 = ConvLayer("conv2", cin: 32, cout: 64, k: 3, stride: 2)
        in2 = InstanceNormLayer("in2", channels: 64, relu: true)
        conv3 = ConvLayer("conv3", cin: 64, cout: 128, k: 3, stride: 2)
        in3 = InstanceNormLayer("in3", channels: 128, relu: true)
        res = (1...5).map { ResidualBlock("res\($0)", channels: 128) }
        deconv1 = ConvLayer("deconv1", cin: 128, cout: 64, k: 3, stride: 1, upsample: true)
        in4 = InstanceNormLayer("in4", channels: 64, relu: true)
        deconv2 = ConvLayer("deconv2", cin: 64, cout: 32, k: 3, stride: 1, upsample: true)
        in5 = InstanceNormLayer("in5", channels: 32, relu: true)
        deconv3 = ConvLayer("deconv3", cin: 32, cout: 3, k: 9, stride: 1)
        // The order of PyTorch's state_dict.
        var ps = conv1.parameters + in1.parameters + conv2.parameters + in2.parameters
        ps += conv3.parameters + in3.parameters
        for r in res { ps += r.parameters }
        ps += deconv1.parameters + in4.parameters + deconv2.parameters + in5.parameters + deconv3.parameters
        parameters = ps
    }

    /// PyTorch's default initialisation (Conv2d: weight and bias U(−1/√fan_in, 1/√fan_in);
    /// InstanceNorm2d: weight 1, bias 0), drawn from SplitMix64 seeded with `seed` per tensor.
    public convenience init(seed: UInt64) {
        self.init()
        for p in parameters {
            if p.shape.count == 4 {
                let bound = 1 / Double(p.shape[1] * p.shape[2] * p.shape[3]).squareRoot()
                fillDeterministic(p.value, name: p.name, baseSeed: seed, offset: 0, bound: bound)
            }
        }
        for layer in convLayers {
            let bound = 1 / Double(layer.spec.cin * layer.spec.k * layer.spec.k).squareRoot()
            fillDeterministic(layer.bias.value, name: layer.bias.name, baseSeed: seed, offset: 0, bound: bound)
        }
    }

    public var convLayers: [ConvLayer] {
        [conv1, conv2, conv3] + res.flatMap { [$0.conv1, $0.conv2] } + [deconv1, deconv2, deconv3]
    }

    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

    public func zeroGradients() { for p in parameters { p.grad?.zero() } }

    // MARK: - Forward / backward

    /// The returned tensor is owned by the network and overwritten by the next forward.
    public func forward(_ x: Tensor) -> Tensor {
        var y = Profiler.time("net conv1+in1 fwd") { in1.forward(conv1.forward(x, ctx)) }
        y = Profiler.time("net conv2+in2 fwd") { in2.forward(conv2.forward(y, ctx)) }
        y = Profiler.time("net conv3+in3 fwd") { in3.forward(conv3.forward(y, ctx)) }
        for (i, r) in res.enumerated() { y = Profiler.time("net res\(i + 1) fwd") { r.forward(y, ctx) } }
        y = Profiler.time("net deconv1+in4 fwd") { in4.forward(deconv1.forward(y, ctx)) }
        y = Profiler.time("net deconv2+in5 fwd") { in5.forward(deconv2.forward(y, ctx)) }
        return Profiler.time("net deconv3 fwd") { deconv3.forward(y, ctx) }
    }

    /// Forward for stylising: the same result as `forward`, but nothing is kept for backward and
    /// every layer works in four reused buffers, so a 1024×1024 image needs about 5 GB less.
    public func infer(_ x: Tensor) -> Tensor {
        let d0 = x.dims4
        let big = 32 * d0.n * (d0.h + 8) * (d0.w + 8)            // the widest activation, padded
        var a = ctx.grads[0].pointer(big), b = ctx.grads[1].pointer(big)
        let c = ctx.grads[2].pointer(big), pad = ctx.padGrad
        _ = pad.pointer(Self.largestPaddedInput(d0))   // sized once: growing it mid-run would hold both copies
        func run(_ l: ConvLayer, _ n: InstanceNormLayer?, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ d: Dims4) -> Dims4 {
            Profiler.time("infer \(l.weight.name.dropLast(".conv2d.weight".count))") {
                let od = l.infer(dst, src, d, pad: pad, ctx)
                n?.infer(dst, od)
                return od
            }
        }
        var d = run(conv1, in1, x.data, a, d0)
        d = run(conv2, in2, a, b, d); swap(&a, &b)
        d = run(conv3, in3, a, b, d); swap(&a, &b)
        for r in res {
            _ = run(r.conv1, r.in1, a, b, d)
            _ = run(r.conv2, r.in2, b, c, d)
            for i in 0..<d.count { b[i] = c[i] + a[i] }
            swap(&a, &b)
        }
        d = run(deconv1, in4, a, b, d); swap(&a, &b)
        d = run(deconv2, in5, a, b, d); swap(&a, &b)
        let yd = deconv3.spec.output(reflectionPadDims(d, deconv3.spec.k / 2))
        let y = Tensor(shape: yd.shape)
        _ = run(deconv3, nil, a, y.data, d)
        return y
    }

    /// Floats of the largest padded layer input of `infer` for an input of dims d: deconv2's,
    /// 64 channels upsampled to at most (h + 3) × (w + 3) and padded by 1 (larger than conv1's
    /// 3 × (h + 8) × (w + 8) and deconv3's 32 × (h + 8) × (w + 8) for h, w ≥ 5).
    static func largestPaddedInput(_ d: Dims4) -> Int { 64 * d.n * (d.h + 5) * (d.w + 5) }

    /// Stylises one image: [0, 255] pixels in, the output clamped to [0, 255] and truncated to
    /// bytes (as the reference's `save_rgb`).
    public func stylize(_ image: RGBImage) -> RGBImage {
        let x = Tensor(shape: [1, 3, image.height, image.width])
        image.writeCHW(to: x.data)
        let y = infer(x)
        return RGBImage(chw: y.data, width: y[dim: 3], height: y[dim: 2])
    }

    /// Accumulates parameter gradients from `dy`, the gradient of the last forward's output.
    /// `dy` is copied first and not modified. The input gradient is only computed when `dx` is
    /// given (training never needs it).
    public func backward(_ dy: Tensor, dx: Tensor? = nil) {
        let n = dy.count
        let size = max(n, 32 * dy[dim: 0] * dy[dim: 2] * dy[dim: 3])  // the largest activation
        var a = ctx.grads[0].pointer(size), b = ctx.grads[1].pointer(size)
        let c = ctx.grads[2].pointer(size)
        a.update(from: dy.data, count: n)
        Profiler.time("net deconv3 bwd") { deconv3.backward(dy: a, dx: b, ctx) }; swap(&a, &b)
        Profiler.time("net deconv2+in5 bwd") {
            in5.backward(dy: a, dx: b); deconv2.backward(dy: b, dx: a, ctx)
        }
        Profiler.time("net deconv1+in4 bwd") {
            in4.backward(dy: a, dx: b); deconv1.backward(dy: b, dx: a, ctx)
        }
        for (i, r) in res.enumerated().reversed() {
            Profiler.time("net res\(i + 1) bwd") { r.backward(dy: a, dx: b, tmp: c, ctx) }; swap(&a, &b)
        }
        Profiler.time("net conv3+in3 bwd") { in3.backward(dy: a, dx: b); conv3.backward(dy: b, dx: a, ctx) }
        Profiler.time("net conv2+in2 bwd") { in2.backward(dy: a, dx: b); conv2.backward(dy: b, dx: a, ctx) }
        Profiler.time("net conv1+in1 bwd") { in1.backward(dy: a, dx: b); conv1.backward(dy: b, dx: dx?.data, ctx) }
    }

    /// Bytes held by activations and scratch after a step (for the benchmark's memory table).
    public var activationBytes: Int {
        var total = ctx.bytes
        for l in convLayers { total += l.activationBytes }
        for l in [in1, in2, in3, in4, in5] { total += l.activationBytes }
        for r in res { total += r.in1.activationBytes + r.in2.activationBytes + r.out.bytes }
        return total
    }
}

extension TransformerNet {
    /// A seeded random network whose pictures spread over 0…255, for tests and demos of
    /// inference: a fresh network's output is near 0 (almost all black after clamping), so its
    /// last layer is scaled up and centred on mid-grey.
    public static func visible(seed: UInt64) -> TransformerNet {
        let net = TransformerNet(seed: seed)
        let w = net.deconv3.weight.value
        for i in 0..<w.count { w.data[i] *= 60 }
        net.deconv3.bias.value.fill(128)
        return net
    }
}
