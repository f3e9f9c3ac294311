import Foundation

/// Where a training run's content images come from, in training order: a folder on disk
/// (`ImageFolder`) or a packed dataset (`PackedImages`). `TrainingSession` sees only this.
///
/// Image `i` is the same image on every call and on every machine that holds the same data, so
/// step k always trains on the same batch (the session's resume guarantee rests on it).
public protocol TrainingImages {
    /// The number of images in training order, unreadable ones included (they are skipped when
    /// loaded, as `ImageFolder` skips them, so positions never shift).
    var count: Int { get }

    /// Where the images come from, for messages: a folder's path, or a manifest's name and digest.
    var description: String { get }

    /// Loads images `start ..< min(start + count, self.count)`: each is decoded, resized to
    /// size×size with PIL-exact bilinear resampling unless it already has that size, and written
    /// as CHW floats in [0, 255] into rows `0..<loaded` of `into` (shape `[>= count, 3, size, size]`).
    /// Images that cannot be decoded are skipped and returned with the reason.
    /// - Throws: only when the data itself is unavailable or not what was promised (a packed
    ///   image whose bytes are missing or differ from their digest); never for a bad image.
    func loadBatch(start: Int, count: Int, size: Int, into: Tensor) throws
        -> (loaded: Int, skipped: [(path: String, reason: String)])

    /// Image `index` (`0..<count`) decoded at its own size, for a picture rather than a batch
    /// (the worker's preview renders the first held-out image).
    /// - Throws: when it cannot be read or decoded (or, packed, is excluded from the dataset).
    func image(at index: Int) throws -> RGBImage
}

// MARK: - Shared by the conformances

extension RGBImage {
    /// Resizes to size×size (unless it already has that size) and writes CHW floats to row
    /// `row` of a `[N, 3, size, size]` batch.
    func writeTrainingRow(_ row: Int, size: Int, of batch: Tensor) {
        let image = width == size && height == size ? self : resized(width: size, height: size)
        image.writeCHW(to: batch.data + row * 3 * size * size)
    }
}

/// The argument checks every `loadBatch` makes (programmer mistakes, hence preconditions).
func checkBatchArguments(start: Int, count: Int, size: Int, into: Tensor) {
    precondition(start >= 0 && count >= 0 && size > 0, "loadBatch(start: \(start), count: \(count), size: \(size))")
    precondition(into.shape.count == 4 && into.shape[0] >= count && into.shape[1] == 3
                 && into.shape[2] == size && into.shape[3] == size,
                 "loadBatch into \(into.shape) for \(count) images of \(size)x\(size)")
}
