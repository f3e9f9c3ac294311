import CoordinatorAPI
import Foundation

/// Files named by their SHA-256 in the coordinator's artifact layout, `root/ab/abcdef…`
/// (`Sources/Coordinator/Storage/ArtifactStore.swift`): shards and manifests are written here
/// once, through a temporary file in `tmp` that is fsynced and renamed into place, and never
/// changed. A file already stored under its digest is not written again.
public struct ContentStore: Sendable {
    public let root: URL
    /// Where files are written before they are renamed into place (same file system as `root`).
    public let tmp: URL

    /// `tmp` defaults to `root/.tmp` (a name the coordinator's store leaves alone).
    public init(root: URL, tmp: URL? = nil) {
        self.root = root
        self.tmp = tmp ?? root.appendingPathComponent(".tmp", isDirectory: true)
    }

    /// `root/ab/abcdef…`; `sha256` must be 64 lowercase hex digits.
    public func url(for sha256: String) -> URL {
        precondition(JobConfig.isSHA256(sha256), "not a sha256: \(sha256)")
        return root.appendingPathComponent(String(sha256.prefix(2)), isDirectory: true).appendingPathComponent(sha256)
    }

    /// The stored file's size, or nil if there is none.
    public func size(of sha256: String) -> Int64? {
        guard case .success(let s) = fileStatus(url(for: sha256).path) else { return nil }
        return s.size
    }

    /// Stores `data` under its SHA-256 unless it is there; returns the digest and whether it
    /// was written.
    @discardableResult
    public func put(_ data: Data) throws(DatasetPackError) -> (sha256: String, written: Bool) {
        let sha256 = FileDigest.sha256(of: data)
        if size(of: sha256) == Int64(data.count) { return (sha256, false) }
        let writer = try Writer(store: self)
        try writer.append(data)
        return (sha256, try writer.commit(expected: sha256))
    }

    // MARK: - Writer

    /// A file being written into the store: appended to, hashed on the way, then renamed under
    /// its digest (or dropped, if that digest is there already). Dropped unless committed.
    final class Writer {
        let store: ContentStore
        let temp: URL
        private let fd: Int32
        private var hasher = SHA256Hasher()
        private(set) var size: Int64 = 0
        private var done = false

        init(store: ContentStore) throws(DatasetPackError) {
            self.store = store
            do { try FileManager.default.createDirectory(at: store.tmp, withIntermediateDirectories: true) } catch {
                throw .store(path: store.tmp.path, reason: (error as NSError).localizedDescription)
            }
            temp = store.tmp.appendingPathComponent("pack-\(UUID().uuidString)")
            fd = open(temp.path, O_WRONLY | O_CREAT | O_EXCL, 0o644)
            guard fd >= 0 else { throw .store(path: temp.path, reason: errnoText()) }
        }

        deinit {
            close(fd)
            if !done { unlink(temp.path) }
        }

        func append(_ data: Data) throws(DatasetPackError) {
            hasher.update(data)
            let ok: Bool = data.withUnsafeBytes { raw in
                var off = 0
                while off < raw.count {
                    let n = write(fd, raw.baseAddress! + off, raw.count - off)
                    if n < 0 { if errno == EINTR { continue }; return false }
                    off += n
                }
                return true
            }
            guard ok else { throw .store(path: temp.path, reason: errnoText()) }
            size += Int64(data.count)
        }

        /// The digest of what was appended.
        func digest() -> String { hasher.hex() }

        /// fsyncs and renames the file under its digest, then fsyncs the folder; returns false
        /// (and drops the file) when that digest was stored already.
        /// - Parameter expected: when given, the digest the bytes must have (a mismatch is a store error).
        func commit(expected: String? = nil) throws(DatasetPackError) -> Bool {
            let sha256 = hasher.hex()
            if let expected, expected != sha256 {
                throw .store(path: temp.path, reason: "wrote bytes with sha256 \(sha256), expected \(expected)")
            }
            let target = store.url(for: sha256)
            if store.size(of: sha256) == size { return false }
            guard fsync(fd) == 0 else { throw .store(path: temp.path, reason: errnoText()) }
            let dir = target.deletingLastPathComponent()
            do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
                throw .store(path: dir.path, reason: (error as NSError).localizedDescription)
            }
            guard rename(temp.path, target.path) == 0 else { throw .store(path: target.path, reason: errnoText()) }
            done = true
            let dfd = open(dir.path, O_RDONLY)
            if dfd >= 0 { _ = fsync(dfd); close(dfd) }
            return true
        }
    }
}
