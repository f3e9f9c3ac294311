import CoordinatorAPI
import Foundation

// MARK: - ScanCache

/// What an earlier scan of a folder learnt about each file, so that registering an unchanged
/// folder again (a coordinator restart) hashes and decodes nothing: per relative path, the
/// size and modification time (nanoseconds) it was seen with, its SHA-256, and whether it
/// decodes (and if not, why). A file whose size or mtime differ is scanned again.
///
/// Also remembers which shard each planned group of files became (`shards`), so that an
/// unchanged layout is not read again to find its shard digests.
///
/// One JSON file per folder in a state directory, named by the SHA-256 of the folder's absolute
/// path, written to a temporary file and renamed (docs/datasets.md). An unreadable or foreign
/// file is ignored (everything is scanned again), never an error.
public struct ScanCache: Codable, Sendable, Equatable {
    /// Bumped when what an entry means changes (a new decoder that accepts other files).
    public static let currentVersion = 1

    public var version = ScanCache.currentVersion
    /// The folder's absolute path.
    public var root: String
    public var files: [String: Entry] = [:]
    /// Plan key (see `ShardPlan.key`) → the shard it was written as.
    public var shards: [String: DatasetManifest.Shard] = [:]

    public struct Entry: Codable, Sendable, Equatable {
        public var size: Int64
        public var mtimeNanoseconds: Int64
        public var sha256: String
        /// nil: not checked (only hashed, by `InPlace`); true: decodes; false: see `reason`.
        public var decodes: Bool?
        public var reason: String?

        enum CodingKeys: String, CodingKey {
            case size, sha256, decodes, reason
            case mtimeNanoseconds = "mtime_ns"
        }
    }

    public init(root: String) { self.root = root }

    /// The entry for `path` if it was seen with this size and mtime.
    func entry(_ path: String, size: Int64, mtime: Int64) -> Entry? {
        guard let e = files[path], e.size == size, e.mtimeNanoseconds == mtime else { return nil }
        return e
    }

    // MARK: - Files

    /// `directory/scan-<sha256 of the root path, 16 hex>.json`.
    public static func url(for root: URL, in directory: URL) -> URL {
        directory.appendingPathComponent("scan-\(FileDigest.sha256(of: Data(root.path.utf8)).prefix(16)).json")
    }

    /// The cache of `root` in `directory`, or an empty one when there is none or it cannot be
    /// used (unreadable, another version, another folder).
    public static func load(for root: URL, in directory: URL) -> ScanCache {
        let empty = ScanCache(root: root.path)
        guard let data = try? Data(contentsOf: url(for: root, in: directory)),
              let cache = try? JSONDecoder().decode(ScanCache.self, from: data),
              cache.version == currentVersion, cache.root == root.path else { return empty }
        return cache
    }

    /// Writes the cache atomically into `directory` (created if needed).
    public func save(in directory: URL) throws(DatasetPackError) {
        let target = Self.url(for: URL(fileURLWithPath: root), in: directory)
        do {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            try encoder.encode(self).write(to: target, options: .atomic)
        } catch {
            throw .cache(path: target.path, reason: (error as NSError).localizedDescription)
        }
    }
}
