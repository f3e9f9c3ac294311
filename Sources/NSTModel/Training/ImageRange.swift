import Foundation

/// A contiguous part of another `TrainingImages`: image `i` is the base's image
/// `range.lowerBound + i`. The held-out split uses two of them: training on the front of the
/// sorted data, validation on its last `validationImages`.
public struct ImageRange: TrainingImages {
    public let base: any TrainingImages
    public let range: Range<Int>
    public let label: String

    /// - Precondition: `range` lies within `0..<base.count`.
    public init(_ base: any TrainingImages, range: Range<Int>, label: String) {
        precondition(range.lowerBound >= 0 && range.upperBound <= base.count, "range \(range) of \(base.count) images")
        self.base = base
        self.range = range
        self.label = label
    }

    public var count: Int { range.count }

    public var description: String { "\(base.description) (\(label): images \(range.lowerBound + 1)…\(range.upperBound))" }

    public func loadBatch(start: Int, count: Int, size: Int, into: Tensor) throws
        -> (loaded: Int, skipped: [(path: String, reason: String)])
    {
        checkBatchArguments(start: start, count: count, size: size, into: into)
        let n = min(count, max(0, range.count - start))
        guard n > 0 else { return (0, []) }
        return try base.loadBatch(start: range.lowerBound + start, count: n, size: size, into: into)
    }

    public func image(at index: Int) throws -> RGBImage {
        precondition(index >= 0 && index < range.count, "image \(index) of \(range.count)")
        return try base.image(at: range.lowerBound + index)
    }
}

/// The held-out split of a job's data (issue 14): the last `validationImages` of the sorted
/// images are the validation set and are never trained on; training uses the images before them,
/// cut to `maxImages`. With no validation images the data (and its order) is the caller's, unchanged.
public struct HeldOutSplit {
    public let training: any TrainingImages
    /// nil when `validationImages` is 0.
    public let validation: (any TrainingImages)?

    /// - Parameters:
    ///   - all: the whole sorted dataset when `validationImages` > 0 (not yet cut to `maxImages`).
    /// - Throws: `TrainingError.tooFewImages` unless at least one image is left to train on.
    public init(_ all: any TrainingImages, validationImages: Int, maxImages: Int? = nil) throws(TrainingError) {
        precondition(validationImages >= 0, "validationImages \(validationImages)")
        let trainingCount = min(all.count - validationImages, maxImages.map { max($0, 0) } ?? Int.max)
        if validationImages == 0 && trainingCount == all.count {
            training = all
            validation = nil
            return
        }
        guard all.count > validationImages else {
            throw .tooFewImages(path: all.description, count: all.count, validation: validationImages)
        }
        guard trainingCount > 0 else { throw .emptyDataset(path: all.description) }
        training = ImageRange(all, range: 0..<trainingCount, label: "training")
        validation = validationImages == 0 ? nil
            : ImageRange(all, range: (all.count - validationImages)..<all.count, label: "validation")
    }
}
