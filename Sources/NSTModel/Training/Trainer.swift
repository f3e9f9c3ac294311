/// One optimiser step of the seed's training loop:
///   zero_grad; y = net(x); loss = content + style; loss.backward(); adam.step()
public final class Trainer {
    public let net: TransformerNet
    public let loss: PerceptualLoss
    public let adam: Adam
    let outputGrad = Activation()

    public init(net: TransformerNet, loss: PerceptualLoss, lr: Double) {
        self.net = net
        self.loss = loss
        self.adam = Adam(parameters: net.parameters, lr: lr)
    }

    /// Trains on one batch [N, 3, H, W] of images in [0, 255]; returns that batch's losses
    /// (computed before the update, as the seed logs them).
    @discardableResult
    public func step(_ x: Tensor) -> PerceptualLoss.Value {
        net.zeroGradients()
        let y = net.forward(x)
        let dy = outputGrad.get(y.dims4)
        let value = loss.lossAndGradient(x: x, y: y, dy: dy)
        net.backward(dy)
        adam.update()
        return value
    }
}
