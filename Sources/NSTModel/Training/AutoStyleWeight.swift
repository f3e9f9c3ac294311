import Foundation

/// `"style_weight": "auto"` (docs/tuning.md): before the first step, the unweighted content
/// and style terms of the starting network are measured on the first batch of the training
/// data (step 1's images), and the style weight is set so that the weighted style term is
/// `ratio` times the weighted content term:
///
///   style_weight = ratio × content_weight × content / style
///
/// The measurement depends only on the data, the style, the loss network and the starting
/// weights, so every attempt of a job chooses the same weight; a resumed attempt takes it from
/// its checkpoint (`autoStyleWeightKey`) all the same.
public struct AutoStyleWeight: Sendable, Equatable {
    /// The unweighted terms measured on the first batch.
    public var content: Double
    public var style: Double
    public var ratio: Double
    /// The chosen style weight.
    public var weight: Double

    /// The weight for `ratio` given the measured terms.
    /// - Throws: `TrainingError.invalidOption` when the terms give no usable weight (a style
    ///   term of 0, a content term of 0 with a positive content weight, or anything not finite).
    public static func choose(content: Double, style: Double, ratio: Double, contentWeight: Double) throws -> AutoStyleWeight {
        guard ratio.isFinite, ratio > 0 else {
            throw TrainingError.invalidOption("style_ratio must be a positive number, got \(ratio)")
        }
        guard content.isFinite, style.isFinite, style > 0 else {
            throw TrainingError.invalidOption("style_weight auto: the first batch gives content \(content) and style \(style); "
                                              + "no weight makes the style term \(ratio)× the content term")
        }
        let weight = ratio * contentWeight * content / style
        guard weight.isFinite, weight > 0 else {
            throw TrainingError.invalidOption("style_weight auto: the first batch gives content \(content) and style \(style) "
                                              + "with content_weight \(contentWeight): the weight would be \(weight)")
        }
        return AutoStyleWeight(content: content, style: style, ratio: ratio, weight: weight)
    }
}

extension TrainingSession {
    /// The checkpoint metadata key holding an auto style weight (`%.17g`, exact for a Double).
    public static let autoStyleWeightKey = "auto_style_weight"

    /// Measures the current network's unweighted losses on the first batch of the training data
    /// (forward only: no gradient, no Adam update, `state` untouched) and sets the loss's style
    /// weight from them; `autoStyleWeight` records the choice.
    /// - Throws: `TrainingError` when the first batch has no readable image or gives no usable
    ///   weight; the dataset's read errors.
    @discardableResult
    public func chooseStyleWeight(ratio: Double) throws -> AutoStyleWeight {
        let size = options.imageSize
        let (loaded, _) = try dataset.loadBatch(start: 0, count: options.batchSize, size: size, into: batch)
        guard loaded > 0 else {
            throw TrainingError.invalidOption("style_weight auto: no image of the first batch of \(dataset.description) could be read")
        }
        let x = loaded == options.batchSize ? batch : Tensor(viewing: batch, shape: [loaded, 3, size, size])
        let v = trainer.loss.unweightedLoss(x: x, y: trainer.net.forward(x))
        let chosen = try AutoStyleWeight.choose(content: v.content, style: v.style, ratio: ratio,
                                                contentWeight: trainer.loss.contentWeight)
        trainer.loss.styleWeight = chosen.weight
        autoStyleWeight = chosen
        styleWeightSettled = true
        return chosen
    }
}
