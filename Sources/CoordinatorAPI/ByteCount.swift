import Foundation

/// A number of bytes as people write it on a command line: `1048576`, or with a binary suffix
/// `K`/`KiB`, `M`/`MiB`, `G`/`GiB`, `T`/`TiB` (`500M`, `20GiB`). Positive, at most Int64.max.
/// (`orchestrator serve --max-store-bytes`, `stylize --max-memory`, `worker --cache-max-bytes`.)
public struct ByteCount: Sendable, Equatable {
    public let bytes: Int64

    public init?(_ text: String) {
        let text = text.trimmingCharacters(in: .whitespaces)
        let digits = text.prefix { $0.isASCII && $0.isNumber }
        let suffix = text.dropFirst(digits.count).uppercased()
        let shifts: [String: Int64] = ["": 0, "B": 0, "K": 10, "KIB": 10, "M": 20, "MIB": 20,
                                       "G": 30, "GIB": 30, "T": 40, "TIB": 40]
        guard !digits.isEmpty, let n = Int64(digits), n > 0, let shift = shifts[suffix] else { return nil }
        let (value, overflow) = n.multipliedReportingOverflow(by: 1 << shift)
        guard !overflow else { return nil }
        bytes = value
    }
}
