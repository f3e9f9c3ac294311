/// Why an image could not be stylised; each case carries the values it is about.
public enum StylizeError: Error, CustomStringConvertible, Equatable {
    /// Smaller than the network can pad (5 pixels a side: the ¼-resolution layers need 2 rows).
    case imageTooSmall(width: Int, height: Int)
    /// `--strength` outside 0…1 (or not a number).
    case strengthOutOfRange(Double)
    /// A tile side outside `StylizeSettings.tileSizes`.
    case tileSizeOutOfRange(Int)
    /// A memory budget below `StylizeSettings.minimumMemoryBytes`.
    case memoryBudgetTooSmall(bytes: Int)
    /// A batch whose images are not all the same size.
    case batchSizesDiffer(first: String, other: String)
    /// The temporary file of a tiled run could not be created, written or read.
    case spill(path: String, reason: String)

    public var description: String {
        switch self {
        case let .imageTooSmall(w, h):
            return "image is \(w)×\(h); the network needs at least \(StylizeSettings.minimumImageSide) pixels a side"
        case let .strengthOutOfRange(s):
            return "strength \(s) is outside 0…1"
        case let .tileSizeOutOfRange(n):
            return "tile size \(n) is outside \(StylizeSettings.tileSizes.lowerBound)…\(StylizeSettings.tileSizes.upperBound)"
        case let .memoryBudgetTooSmall(bytes):
            return "memory budget of \(bytes) bytes is below the minimum of \(StylizeSettings.minimumMemoryBytes >> 20) MiB"
        case let .batchSizesDiffer(first, other):
            return "a batch holds images of one size: \(first) and \(other)"
        case let .spill(path, reason):
            return "tile spill file \(path): \(reason)"
        }
    }
}
