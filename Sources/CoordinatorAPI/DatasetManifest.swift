import Foundation

// MARK: - DatasetManifest

/// A dataset as the coordinator distributes it (docs/datasets.md): the images of a folder in
/// training order, each with its size and SHA-256 and where it lies in the shards, the files
/// that do not decode with the reason, and the shards themselves.
///
/// The training order is every listed path (`files` and `excluded` together) sorted by its
/// UTF-8 bytes — the order `ImageFolder` and `orchestrator train --dataset DIR` use — with the
/// excluded ones skipped when loaded, as `train` skips them, so a job trained from a manifest
/// and one trained on the folder see the same batches.
///
/// The manifest's identity is its digest: the SHA-256 of its canonical JSON (`canonicalJSON()`:
/// sorted keys, no whitespace, `/` not escaped). A job pins that digest; the manifest and its
/// shards are stored content-addressed and never change, so a job sees the same bytes on every
/// attempt.
public struct DatasetManifest: Codable, Sendable, Equatable {
    /// The format this code writes and reads: shards are raw concatenations of the files they
    /// hold, in training order, and `offset`/`length` locate each file in its shard.
    public static let currentFormat = 1

    public var format: Int
    /// The dataset's name (`serve --dataset NAME=DIR`), under the job-name rule.
    public var name: String
    /// The images that decode, in training order.
    public var files: [File]
    /// The listed files that do not decode (or cannot be read), in training order.
    public var excluded: [Excluded]
    /// Shard `i` holds the files whose `shard` is `i`.
    public var shards: [Shard]
    public var totals: Totals

    public struct File: Codable, Sendable, Equatable {
        /// Relative to the dataset root, `/`-separated.
        public var path: String
        /// The file's size in bytes.
        public var size: Int64
        /// The file's SHA-256, lowercase hex.
        public var sha256: String
        /// Index into `shards`.
        public var shard: Int
        /// Where the file's bytes start in the shard, and how many there are (= `size`).
        public var offset: Int64
        public var length: Int64

        public init(path: String, size: Int64, sha256: String, shard: Int, offset: Int64, length: Int64) {
            self.path = path; self.size = size; self.sha256 = sha256
            self.shard = shard; self.offset = offset; self.length = length
        }
    }

    public struct Excluded: Codable, Sendable, Equatable {
        public var path: String
        /// Why: the decoder's or the file system's one-line message.
        public var reason: String

        public init(path: String, reason: String) { self.path = path; self.reason = reason }
    }

    public struct Shard: Codable, Sendable, Equatable {
        /// The shard's SHA-256, lowercase hex: its name in the content-addressed store.
        public var sha256: String
        public var size: Int64

        public init(sha256: String, size: Int64) { self.sha256 = sha256; self.size = size }
    }

    public struct Totals: Codable, Sendable, Equatable {
        public var files: Int
        public var excluded: Int
        /// The bytes of all `files` (= the bytes of all shards).
        public var bytes: Int64
        public var shards: Int

        public init(files: Int, excluded: Int, bytes: Int64, shards: Int) {
            self.files = files; self.excluded = excluded; self.bytes = bytes; self.shards = shards
        }
    }

    /// A manifest with `totals` computed from the lists.
    public init(name: String, files: [File], excluded: [Excluded], shards: [Shard]) {
        format = Self.currentFormat
        self.name = name
        self.files = files
        self.excluded = excluded
        self.shards = shards
        totals = Totals(files: files.count, excluded: excluded.count,
                        bytes: files.reduce(0) { $0 + $1.size }, shards: shards.count)
    }

    // MARK: - Canonical form and digest

    /// The canonical encoding: JSON with sorted keys, no whitespace, `/` not escaped. The same
    /// manifest always gives the same bytes; they are what is stored, sent and hashed.
    public func canonicalJSON() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return try encoder.encode(self)
    }

    /// SHA-256 of `canonicalJSON()`, lowercase hex.
    public func digest() throws -> String { FileDigest.sha256(of: try canonicalJSON()) }

    /// Reads manifest bytes received from elsewhere: checks that they hash to `digest` (when
    /// given), decode, and pass `problems()`.
    /// - Throws: `DatasetManifestError`.
    public static func decode(_ data: Data, digest: String? = nil) throws(DatasetManifestError) -> DatasetManifest {
        guard Int64(data.count) <= DatasetLimits.manifestBytes else {
            throw .invalid(["the manifest is \(data.count) bytes, more than \(DatasetLimits.manifestBytes)"])
        }
        if let digest {
            let actual = FileDigest.sha256(of: data)
            guard constantTimeEqual(actual, digest) else { throw .digestMismatch(expected: digest, actual: actual) }
        }
        let manifest: DatasetManifest
        do {
            manifest = try JSONDecoder().decode(DatasetManifest.self, from: data)
        } catch let error as DecodingError {
            throw .invalid([error.oneLine])
        } catch {
            throw .invalid(["\(error)"])
        }
        let problems = manifest.problems()
        guard problems.isEmpty else { throw .invalid(problems) }
        return manifest
    }

    // MARK: - Training order

    /// One position of the training order.
    public enum Entry: Sendable, Equatable {
        case file(Int)       // index into `files`
        case excluded(Int)   // index into `excluded`
    }

    /// `files` and `excluded` merged by path (UTF-8 byte order): the training order.
    public var trainingOrder: [Entry] {
        var out: [Entry] = []
        out.reserveCapacity(files.count + excluded.count)
        var i = 0, j = 0
        while i < files.count || j < excluded.count {
            if j == excluded.count || (i < files.count && Self.precedes(files[i].path, excluded[j].path)) {
                out.append(.file(i)); i += 1
            } else {
                out.append(.excluded(j)); j += 1
            }
        }
        return out
    }

    /// The order of paths: by UTF-8 bytes (Python's `sorted()` on str, as `ImageFolder` sorts).
    public static func precedes(_ a: String, _ b: String) -> Bool {
        a.utf8.lexicographicallyPrecedes(b.utf8)
    }
}

// MARK: - Errors

public enum DatasetManifestError: Error, CustomStringConvertible, Equatable {
    /// The bytes do not hash to the digest they were fetched by.
    case digestMismatch(expected: String, actual: String)
    /// Not a manifest this code can use; every problem found, one line each.
    case invalid([String])

    public var description: String {
        switch self {
        case let .digestMismatch(expected, actual):
            return "dataset manifest: expected sha256 \(expected), got \(actual)"
        case .invalid(let problems):
            let shown = problems.prefix(5).joined(separator: "; ")
            return "invalid dataset manifest: \(shown)" + (problems.count > 5 ? " (and \(problems.count - 5) more)" : "")
        }
    }
}
