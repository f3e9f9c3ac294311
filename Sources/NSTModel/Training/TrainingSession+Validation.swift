import Foundation

/// The mean perceptual losses of the current network over the held-out images, per image:
///
///   content = (1/N) Σ_i MSE(relu2_2(VGG(norm(net(x_i)))), relu2_2(VGG(norm(x_i))))
///   style   = (1/N) Σ_i Σ_l MSE(gram(φ_l(net(x_i))), gram(φ_l(style)))
///
/// unweighted (trials with different weights compare on one scale) and times the job's
/// content and style weights (the scale of the training loss; early stopping watches `total`).
public struct ValidationLosses: Sendable, Equatable {
    public var content: Double
    public var style: Double
    public var contentWeighted: Double
    public var styleWeighted: Double
    /// Images evaluated (unreadable ones are left out, as in training).
    public var images: Int

    public var total: Double { contentWeighted + styleWeighted }
}

extension TrainingSession {
    /// Evaluates the current network on `validation` in batches of the job's batch size at its
    /// image size: forward passes only, no gradient, no Adam update, no change to `state` (the
    /// next `runStep` trains exactly as it would have). nil without validation images, or when
    /// none of them can be read.
    /// - Throws: when the dataset cannot deliver its bytes (`PackedImages`).
    public func validate() throws -> ValidationLosses? {
        guard let validation else { return nil }
        let size = options.imageSize, batchSize = options.batchSize
        var content = 0.0, style = 0.0, images = 0
        var start = 0
        // The training batch buffer is reused: `runStep` loads it afresh before every step.
        while start < validation.count {
            let (loaded, _) = try validation.loadBatch(start: start, count: batchSize, size: size, into: batch)
            start += batchSize
            guard loaded > 0 else { continue }
            let x = loaded == batchSize ? batch : Tensor(viewing: batch, shape: [loaded, 3, size, size])
            let y = trainer.net.forward(x)
            // Each batch's losses are means over its images: weight them by the image count.
            let v = trainer.loss.unweightedLoss(x: x, y: y)
            content += v.content * Double(loaded)
            style += v.style * Double(loaded)
            images += loaded
        }
        guard images > 0 else { return nil }
        content /= Double(images)
        style /= Double(images)
        return ValidationLosses(content: content, style: style,
                                contentWeighted: trainer.loss.contentWeight * content,
                                styleWeighted: trainer.loss.styleWeight * style, images: images)
    }
}
