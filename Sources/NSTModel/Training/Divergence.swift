import Foundation

/// Notices a run that will not recover, so that it fails within minutes instead of hours
/// (issue 14). Two rules:
///
/// - **Loss blow-up**: the training total exceeds `factor` (10) × its running minimum for
///   `patience` (20) consecutive steps. Twenty steps ride out the noise of small batches (a
///   single odd batch is never enough) and are seconds to minutes of training.
/// - **Collapse**: an output of the network (the checkpoint's preview) is a constant image:
///   every channel's standard deviation is below `collapseStd` (half a grey level of 0…255).
///
/// The running minimum starts afresh with each attempt (a resumed one sees the same steps again).
public struct Divergence: Sendable, Equatable {
    public static let factor = 10.0
    public static let patience = 20
    public static let collapseStd = 0.5

    public private(set) var runningMin = Double.infinity
    /// Consecutive steps above `factor` × the running minimum, up to the latest.
    public private(set) var above = 0

    public init() {}

    /// Takes step `step`'s training total (non-finite totals are the non-finite-loss error's
    /// business, not this rule's). Throws `TrainingError.diverged` once the rule fires.
    public mutating func observe(step: Int, total: Double) throws(TrainingError) {
        guard total.isFinite else { return }
        if total > Self.factor * runningMin {
            above += 1
            if above >= Self.patience {
                throw .diverged(step: step, why: String(format: "training loss above %g× its minimum %.4g for %d steps, now %.4g",
                                                        Self.factor, runningMin, above, total))
            }
        } else {
            above = 0
        }
        runningMin = min(runningMin, total)
    }

    /// Throws `TrainingError.diverged` when `output`, rendered at step `step`, is a constant image.
    public static func checkOutput(_ output: RGBImage, step: Int) throws(TrainingError) {
        let stds = channelStandardDeviations(output)
        if let top = stds.max(), top < collapseStd {
            throw .diverged(step: step, why: String(format: "the output collapsed to a constant image (channel std %.3g)", top))
        }
    }

    /// The standard deviation of each of the R, G, B channels over the image's pixels.
    public static func channelStandardDeviations(_ image: RGBImage) -> [Double] {
        let n = image.width * image.height
        guard n > 0 else { return [0, 0, 0] }
        var sum = [0.0, 0.0, 0.0], sq = [0.0, 0.0, 0.0]
        image.pixels.withUnsafeBufferPointer { p in
            for i in 0..<n {
                for c in 0..<3 {
                    let v = Double(p[3 * i + c])
                    sum[c] += v
                    sq[c] += v * v
                }
            }
        }
        return (0..<3).map { c in
            let mean = sum[c] / Double(n)
            return max(0, sq[c] / Double(n) - mean * mean).squareRoot()
        }
    }
}
