import CoordinatorAPI
import Foundation
import JobStore

// MARK: - ArtifactStore

/// The coordinator's content-addressed files: `artifacts/ab/abcdef…` named by their SHA-256.
///
/// A path is only ever built from a validated 64-hex digest, so nothing a request says can
/// reach another place on disk. Uploads are streamed to `tmp/`, hashed on the way, fsynced,
/// renamed into place and the directory fsynced: a crash leaves either no file or a complete
/// one, never a torn one (`ArtifactStore+Ingest.swift`). The garbage collector
/// (`GarbageCollector.swift`) deletes what no row references.
struct ArtifactStore: Sendable {
    let root: URL
    let tmp: URL
    /// The state directory, for the relative paths recorded in the database.
    let stateDir: URL
    /// The largest upload of each kind: `StoragePolicy.uploadLimits`, capped by
    /// `CoordinatorConfig.maxUploadBytes`.
    let limits: UploadLimits
    /// `StoragePolicy.maxStoreBytes`.
    let quota: Int64?
    /// `StoragePolicy.uploadTimeout`.
    let uploadTimeout: Duration
    /// `StoragePolicy.writeFault` (tests).
    let writeFault: (@Sendable (Int64) -> Int32?)?
    /// Bytes stored and reserved, for the quota; shared by every copy of this store.
    let usage = StoreUsage()

    init(config: CoordinatorConfig) {
        root = config.artifactsDir
        tmp = config.tmpDir
        stateDir = config.stateDir
        var limits = config.storage.uploadLimits
        for kind in UploadKind.allCases { limits[kind] = min(limits[kind], config.maxUploadBytes) }
        self.limits = limits
        quota = config.storage.maxStoreBytes
        uploadTimeout = config.storage.uploadTimeout
        writeFault = config.storage.writeFault
    }

    /// Creates the directories, removes uploads left unfinished by an earlier run, puts back
    /// files a collection interrupted by a crash had set aside, and counts the stored bytes.
    func prepare() throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: tmp.path) {
            try? fm.removeItem(at: tmp.appendingPathComponent(name))
        }
        for file in try storedFiles() where file.setAside { restore(file) }
        try recount()
    }

    /// `sha256` if it is 64 lowercase hex digits, else a 400.
    static func checked(_ sha256: String) throws -> String {
        guard JobConfig.isSHA256(sha256) else {
            throw APIError.badRequest("not a sha256 digest (64 lowercase hex digits): \"\(sha256.prefix(80))\"")
        }
        return sha256
    }

    /// Where the artifact `sha256` lives (validated first).
    func url(for sha256: String) throws -> URL {
        let sha = try Self.checked(sha256)
        return root.appendingPathComponent(String(sha.prefix(2)), isDirectory: true)
            .appendingPathComponent(sha)
    }

    /// `artifacts/ab/abcdef…`, relative to the state directory.
    func relativePath(for sha256: String) throws -> String {
        let sha = try Self.checked(sha256)
        return "artifacts/\(sha.prefix(2))/\(sha)"
    }

    /// The stored artifact's size, or nil if there is none.
    func size(of sha256: String) throws -> Int64? {
        let path = try url(for: sha256).path
        var st = stat()
        guard stat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        return Int64(st.st_size)
    }

    /// Like `size(of:)`, for a check that precedes a new reference to the file (submit,
    /// complete, `HEAD`): also sets its modification time to now, so that the garbage collector
    /// keeps it for at least the grace age although no row references it yet.
    func claim(_ sha256: String) throws -> Int64? {
        let path = try url(for: sha256).path
        if utimes(path, nil) != 0, errno == ENOENT { return nil }
        return try size(of: sha256)
    }

    /// The largest upload of `kind`.
    func limit(for kind: UploadKind) -> Int64 { limits[kind] }

    // MARK: - Files on disk

    /// A file under `artifacts/`.
    struct StoredFile: Sendable {
        let url: URL
        /// The digest its name gives: `ab/abcdef…` or, set aside, `ab/abcdef….gc`; nil for a
        /// name the store never writes (left alone).
        let sha256: String?
        /// Set aside by a collection (renamed to `….gc`) and not yet deleted or put back.
        let setAside: Bool
        let size: Int64
        let modified: Date
    }

    /// Every regular file in `artifacts/*/`.
    func storedFiles() throws -> [StoredFile] {
        let fm = FileManager.default
        var out: [StoredFile] = []
        for dir in try fm.contentsOfDirectory(atPath: root.path).sorted() {
            let dirURL = root.appendingPathComponent(dir, isDirectory: true)
            guard let names = try? fm.contentsOfDirectory(atPath: dirURL.path) else { continue }
            for name in names.sorted() {
                let url = dirURL.appendingPathComponent(name)
                guard let (size, modified) = Self.regularFile(url.path) else { continue }
                let setAside = name.hasSuffix(Self.setAsideSuffix)
                let stem = setAside ? String(name.dropLast(Self.setAsideSuffix.count)) : name
                let valid = JobConfig.isSHA256(stem) && stem.hasPrefix(dir)
                out.append(StoredFile(url: url, sha256: valid ? stem : nil, setAside: valid && setAside,
                                      size: size, modified: modified))
            }
        }
        return out
    }

    /// Counts the stored bytes again (for the quota).
    func recount() throws {
        usage.recount(stored: try storedFiles().reduce(0) { $0 + $1.size })
    }

    /// The name suffix of a file set aside by a collection.
    static let setAsideSuffix = ".gc"

    /// Puts a set-aside file back under its name, unless the name holds a file again (the
    /// same bytes: then the set-aside copy goes).
    func restore(_ file: StoredFile) {
        guard file.setAside, let sha = file.sha256, let target = try? url(for: sha) else { return }
        if Self.regularFile(target.path) == nil {
            _ = rename(file.url.path, target.path)
        } else {
            _ = unlink(file.url.path)
        }
    }

    /// Size and modification time of a regular file (not following a symbolic link), or nil.
    static func regularFile(_ path: String) -> (size: Int64, modified: Date)? {
        var st = stat()
        guard lstat(path, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else { return nil }
        #if canImport(Darwin)
        let t = st.st_mtimespec
        #else
        let t = st.st_mtim
        #endif
        return (Int64(st.st_size), Date(timeIntervalSince1970: Double(t.tv_sec) + Double(t.tv_nsec) / 1e9))
    }
}
