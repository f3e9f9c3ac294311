import Crypto
import Foundation

// Every artifact is named by the SHA-256 of its bytes, on both ends of the wire.

// MARK: - Hex and file digests

private let hexDigits = Array("0123456789abcdef".utf8)

/// Lowercase hex of a digest.
public func hexString<D: Sequence>(_ bytes: D) -> String where D.Element == UInt8 {
    var out: [UInt8] = []
    out.reserveCapacity(64)
    for b in bytes {
        out.append(hexDigits[Int(b >> 4)])
        out.append(hexDigits[Int(b & 0x0f)])
    }
    return String(decoding: out, as: UTF8.self)
}

/// Incremental SHA-256 with a hex result.
public struct SHA256Hasher {
    private var inner = SHA256()

    public init() {}

    public mutating func update(_ data: Data) { inner.update(data: data) }

    /// The digest of everything so far, as lowercase hex.
    public func hex() -> String { hexString(inner.finalize()) }
}

/// SHA-256 of files, read in chunks.
public enum FileDigest {
    /// The SHA-256 (lowercase hex) and size of the file at `url`.
    public static func sha256(of url: URL) throws -> (sha256: String, size: Int64) {
        let handle = try FileHandle(forReadingFrom: url)
        defer { try? handle.close() }
        var hasher = SHA256()
        var size: Int64 = 0
        while let chunk = try handle.read(upToCount: 1 << 20), !chunk.isEmpty {
            hasher.update(data: chunk)
            size += Int64(chunk.count)
        }
        return (hexString(hasher.finalize()), size)
    }

    /// The SHA-256 (lowercase hex) of `data`.
    public static func sha256(of data: Data) -> String {
        hexString(SHA256.hash(data: data))
    }
}

/// True if `a` and `b` are the same bytes, in a time that depends only on their lengths (lease
/// tokens and digests are compared this way, so that timing tells an attacker nothing).
public func constantTimeEqual(_ a: String?, _ b: String) -> Bool {
    guard let a else { return false }
    let x = Array(a.utf8), y = Array(b.utf8)
    guard x.count == y.count else { return false }
    var diff: UInt8 = 0
    for i in x.indices { diff |= x[i] ^ y[i] }
    return diff == 0
}
