import Foundation

/// Adam (Kingma & Ba 2015) with PyTorch's semantics and float32 arithmetic order
/// (`torch.optim.Adam`, single-tensor path, no weight decay, no amsgrad):
///
///   t += 1;  m = m + (1 − β1)(g − m);  v = β2·v + (1 − β2)·g²
///   p = p − (lr / (1 − β1ᵗ)) · m / (√v / √(1 − β2ᵗ) + ε)
public final class Adam {
    public var lr: Double
    public let beta1: Double, beta2: Double, eps: Double
    public private(set) var step: Int = 0
    /// First and second moments, one pair per parameter, in parameter order.
    public let m: [Tensor]
    public let v: [Tensor]
    public let parameters: [Parameter]

    public init(parameters: [Parameter], lr: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, eps: Double = 1e-8) {
        precondition(parameters.allSatisfy { $0.grad != nil }, "Adam needs trainable parameters")
        self.parameters = parameters
        self.lr = lr; self.beta1 = beta1; self.beta2 = beta2; self.eps = eps
        m = parameters.map { Tensor(shape: $0.shape) }
        v = parameters.map { Tensor(shape: $0.shape) }
    }

    /// Restores the state of a checkpoint (moments already copied into `m` and `v`).
    public func restore(step: Int) { self.step = step }

    public func update() {
        step += 1
        let bc1 = 1 - pow(beta1, Double(step)), bc2 = 1 - pow(beta2, Double(step))
        let stepSize = Float(-(lr / bc1)), bc2Sqrt = Float(bc2.squareRoot())
        let a1 = Float(1 - beta1), b2 = Float(beta2), a2 = Float(1 - beta2), e = Float(eps)
        for (k, p) in parameters.enumerated() {
            let w = p.value.data, g = p.grad!.data, mk = m[k].data, vk = v[k].data
            for i in 0..<p.value.count {
                let gi = g[i]
                mk[i] = mk[i] + a1 * (gi - mk[i])
                vk[i] = vk[i] * b2 + a2 * gi * gi
                let denom = vk[i].squareRoot() / bc2Sqrt + e
                w[i] = w[i] + stepSize * (mk[i] / denom)
            }
        }
    }
}
