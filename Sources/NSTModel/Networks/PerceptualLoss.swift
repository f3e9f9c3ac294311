/// The seed's perceptual losses (Johnson et al. 2016) on VGG16 features:
///
///   content = content_weight · MSE(relu2_2(VGG(norm(y))), relu2_2(VGG(norm(x))))
///   style   = style_weight · Σ_{l ∈ relu1_2, relu2_2, relu3_3, relu4_3} MSE(gram(φ_l(y)), gram(φ_l(style)))
///
/// The style Gram matrices come from one style image and are compared with every image of the
/// batch (the seed's `gm_s[:n_batch]`).
public final class PerceptualLoss {
    public let vgg: VGG16
    public var contentWeight: Double
    public var styleWeight: Double
    /// Gram matrices of the style image, one [1, C, C] per tap.
    public private(set) var styleGrams: [Tensor] = []
    let normalized = Activation()
    let contentTarget = Activation()
    let grams = VGG16.Tap.allCases.map { _ in Scratch() }
    let gramGrad = Scratch()
    let gramWork = Scratch()
    let grads = [Scratch(), Scratch()]

    public init(vgg: VGG16, contentWeight: Double = 1e5, styleWeight: Double = 1e10) {
        self.vgg = vgg
        self.contentWeight = contentWeight
        self.styleWeight = styleWeight
    }

    /// Computes the style targets from a style image [1, 3, H, W] in [0, 255].
    public func setStyle(_ style: Tensor) {
        let xn = normalized.get(style.dims4)
        normalizeForward(xn.data, style.data, style.dims4)
        styleGrams = vgg.forward(xn).map { f in
            let d = f.dims4
            let g = Tensor(shape: [d.n, d.c, d.c])
            gramForward(g.data, f.data, d)
            return g
        }
    }

    public struct Value: Sendable {
        public var content: Double
        public var style: Double
        public var total: Double { content + style }
    }

    /// Forward and backward of the losses for content images `x` and network outputs `y`
    /// (both [N, 3, H, W] in [0, 255]); writes d(total)/dy into `dy`.
    public func lossAndGradient(x: Tensor, y: Tensor, dy: Tensor) -> Value {
        let (value, fy, target) = forward(x: x, y: y)
        // d total / d norm(y) lands in dy first, then goes through the normalisation in place.
        vgg.backward(dx: dy.data, grads: grads) { tap, grad in
            let l = tap.rawValue, f = fy[l], fd = f.dims4, cc = fd.c * fd.c
            if tap == .relu2_2 {
                mseBackward(grad, f.data, target.data, count: target.count, scale: contentWeight)
            }
            let dg = gramGrad.pointer(fd.n * cc)
            dg.update(repeating: 0, count: fd.n * cc)
            mseBackward(dg, grams[l].pointer(fd.n * cc), styleGrams[l].data, count: fd.n * cc, bCount: cc, scale: styleWeight)
            gramBackward(grad, dg, x: f.data, fd, gramWork)
        }
        normalizeBackward(dy.data, dy.data, x.dims4)
        return value
    }

    /// Forward only (for evaluation): the same losses without gradients.
    public func loss(x: Tensor, y: Tensor) -> Value { forward(x: x, y: y).value }

    /// Forward only with both weights 1: `MSE(relu2_2…)` and `Σ_l MSE(gram…)` themselves, so runs
    /// with different weights compare on one scale (validation). `loss` is these times the weights.
    public func unweightedLoss(x: Tensor, y: Tensor) -> Value {
        forward(x: x, y: y, contentWeight: 1, styleWeight: 1).value
    }

    /// The losses, the taps of VGG16(y) and the content target; the Gram matrices of the taps
    /// stay in `grams` for the backward pass.
    private func forward(x: Tensor, y: Tensor) -> (value: Value, taps: [Tensor], target: Tensor) {
        forward(x: x, y: y, contentWeight: contentWeight, styleWeight: styleWeight)
    }

    private func forward(x: Tensor, y: Tensor, contentWeight: Double, styleWeight: Double)
        -> (value: Value, taps: [Tensor], target: Tensor)
    {
        precondition(!styleGrams.isEmpty, "setStyle first")
        let d = x.dims4
        // Content target: VGG16(x) only up to relu2_2, copied out before VGG16(y) reuses the buffers.
        let xn = normalized.get(d)
        normalizeForward(xn.data, x.data, d)
        let fx = vgg.forward(xn, upTo: .relu2_2)[1]
        let target = contentTarget.get(fx.dims4)
        target.copy(from: fx)

        normalizeForward(xn.data, y.data, d)
        let fy = vgg.forward(xn)
        var value = Value(content: contentWeight * mseForward(fy[1].data, target.data, count: target.count), style: 0)
        for (l, f) in fy.enumerated() {
            let fd = f.dims4, cc = fd.c * fd.c
            let g = grams[l].pointer(fd.n * cc)
            gramForward(g, f.data, fd)
            value.style += mseForward(g, styleGrams[l].data, count: fd.n * cc, bCount: cc)
        }
        value.style *= styleWeight
        return (value, fy, target)
    }
}
