import CoordinatorAPI
import Foundation

// MARK: - DownloadCache

/// A worker's cache of what it downloads from the coordinator — dataset manifests, shards and
/// VGG16 weights — kept across jobs and restarts: files named by their SHA-256 in the artifact
/// layout, `root/ab/abcdef…`, bounded by `maxBytes` with the least recently used evicted first.
///
/// "Used" is the file's modification time: `touch` sets it to now, and every lookup that finds a
/// file touches it, so the order survives restarts. Files pinned with `pin` (the shards of the
/// running job) are never evicted, even when they alone exceed the bound: a job must finish on
/// the data it started with. A download in progress lives beside its target as a dot file
/// (`ab/.abcdef….partial`, see `CoordinatorClient.download`), which the cache leaves alone.
///
/// Two workers may share one cache: each sees the other's files. One may evict a file the
/// other is about to read; the reader then finds it missing and fetches it again.
public final class DownloadCache: @unchecked Sendable {
    public let root: URL
    /// The bound on the stored files' bytes; nil for none.
    public let maxBytes: Int64?
    private let lock = NSLock()
    private var pins: [String: Int] = [:]

    public init(root: URL, maxBytes: Int64?) {
        self.root = root
        self.maxBytes = maxBytes
    }

    /// One stored file.
    public struct Entry: Sendable, Equatable {
        public var sha256: String
        public var size: Int64
        /// Its modification time, in nanoseconds since 1970: when it was last used.
        public var lastUsed: Int64
    }

    /// `root/ab/abcdef…`; `sha256` must be 64 lowercase hex digits.
    public func url(for sha256: String) -> URL {
        precondition(JobConfig.isSHA256(sha256), "not a sha256: \(sha256)")
        return root.appendingPathComponent(String(sha256.prefix(2)), isDirectory: true).appendingPathComponent(sha256)
    }

    /// Creates the folder of `sha256`'s file (downloads write there).
    public func prepare(for sha256: String) throws(DatasetPackError) {
        let dir = url(for: sha256).deletingLastPathComponent()
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw .store(path: dir.path, reason: (error as NSError).localizedDescription)
        }
    }

    /// True when a file of exactly `size` bytes is stored under `sha256`; it is then marked used.
    /// A file of another size is not the artifact (a cut copy): it is removed.
    public func has(_ sha256: String, size: Int64) -> Bool {
        let path = url(for: sha256).path
        guard case .success(let st) = fileStatus(path) else { return false }
        guard st.size == size else { unlink(path); return false }
        touch(sha256)
        return true
    }

    /// Marks `sha256`'s file used at `date` (now by default).
    public func touch(_ sha256: String, at date: Date = Date()) {
        let ns = Int64((date.timeIntervalSince1970 * 1e9).rounded())
        var times = [timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000)),
                     timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))]
        _ = utimensat(AT_FDCWD, url(for: sha256).path, &times, 0)
    }

    /// Removes `sha256`'s file (a corrupt copy), pinned or not.
    public func remove(_ sha256: String) {
        unlink(url(for: sha256).path)
    }

    // MARK: - Pins

    /// Keeps these files from eviction until `unpin` (counted: pinning twice needs two unpins).
    public func pin<S: Sequence>(_ digests: S) where S.Element == String {
        lock.withLock { for d in digests { pins[d, default: 0] += 1 } }
    }

    public func unpin<S: Sequence>(_ digests: S) where S.Element == String {
        lock.withLock {
            for d in digests {
                guard let n = pins[d] else { continue }
                pins[d] = n > 1 ? n - 1 : nil
            }
        }
    }

    public var pinned: Set<String> { lock.withLock { Set(pins.keys) } }

    // MARK: - Usage and eviction

    /// Every stored file (dot files and anything not named by a digest left out).
    public func entries() -> [Entry] {
        var out: [Entry] = []
        let fm = FileManager.default
        guard let dirs = try? fm.contentsOfDirectory(atPath: root.path) else { return [] }
        for dir in dirs where dir.utf8.count == 2 {
            guard let names = try? fm.contentsOfDirectory(atPath: root.path + "/" + dir) else { continue }
            for name in names where JobConfig.isSHA256(name) && name.hasPrefix(dir) {
                if case .success(let st) = fileStatus(root.path + "/" + dir + "/" + name) {
                    out.append(Entry(sha256: name, size: st.size, lastUsed: st.mtime))
                }
            }
        }
        return out
    }

    /// The bytes of all stored files.
    public func usage() -> Int64 { entries().reduce(0) { $0 + $1.size } }

    /// What `makeRoom` did.
    public struct Eviction: Sendable, Equatable {
        public var evicted: [Entry] = []
        /// The stored bytes afterwards (without the incoming ones).
        public var usage: Int64 = 0
        /// False when the pinned files alone leave no room for the incoming bytes under the bound.
        public var fits = true
        public var freed: Int64 { evicted.reduce(0) { $0 + $1.size } }
    }

    /// Evicts the least recently used unpinned files until `incoming` more bytes fit under the
    /// bound (never `keep`, nor a pinned file).
    @discardableResult
    public func makeRoom(for incoming: Int64, keep: Set<String> = []) -> Eviction {
        var result = Eviction()
        let all = entries()
        result.usage = all.reduce(0) { $0 + $1.size }
        guard let maxBytes else { return result }
        let protected = pinned.union(keep)
        let candidates = all.filter { !protected.contains($0.sha256) }
            .sorted { ($0.lastUsed, $0.sha256) < ($1.lastUsed, $1.sha256) }
        for entry in candidates {
            if result.usage + incoming <= maxBytes { break }
            guard unlink(url(for: entry.sha256).path) == 0 || errno == ENOENT else { continue }
            result.evicted.append(entry)
            result.usage -= entry.size
        }
        result.fits = result.usage + incoming <= maxBytes
        return result
    }
}
