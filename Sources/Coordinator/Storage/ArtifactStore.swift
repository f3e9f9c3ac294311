import CoordinatorAPI
import Crypto
import Foundation
import JobStore
import NIOCore

// MARK: - ArtifactStore

/// The coordinator's content-addressed files: `artifacts/ab/abcdef…` named by their SHA-256.
///
/// A path is only ever built from a validated 64-hex digest, so nothing a request says can
/// reach another place on disk. Uploads are streamed to `tmp/`, hashed on the way, fsynced,
/// renamed into place and the directory fsynced: a crash leaves either no file or a complete
/// one, never a torn one.
struct ArtifactStore: Sendable {
    let root: URL
    let tmp: URL
    /// The state directory, for the relative paths recorded in the database.
    let stateDir: URL

    init(config: CoordinatorConfig) {
        root = config.artifactsDir
        tmp = config.tmpDir
        stateDir = config.stateDir
    }

    /// Creates the directories and removes uploads left unfinished by an earlier run.
    func prepare() throws {
        let fm = FileManager.default
        try fm.createDirectory(at: root, withIntermediateDirectories: true)
        try fm.createDirectory(at: tmp, withIntermediateDirectories: true)
        for name in try fm.contentsOfDirectory(atPath: tmp.path) {
            try? fm.removeItem(at: tmp.appendingPathComponent(name))
        }
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

    // MARK: - Ingest

    /// Streams `body` into the store as the artifact `expected`, and returns its size.
    /// - Throws: `APIError` 400 (bad digest, checksum mismatch, body shorter or longer than
    ///   `contentLength`), 411 (no Content-Length), 413 (over `limit`); nothing is kept then.
    func ingest<Body: AsyncSequence>(_ body: Body, expected: String, contentLength: Int64?,
                                     limit: Int64) async throws -> Int64 where Body.Element == ByteBuffer {
        let destination = try url(for: expected)
        guard let length = contentLength else {
            throw APIError(.lengthRequired, "Content-Length is required for uploads")
        }
        guard length <= limit else {
            throw APIError(.contentTooLarge, "upload of \(length) bytes exceeds the limit of \(limit) bytes")
        }
        let temp = tmp.appendingPathComponent("upload-\(UUID().uuidString)")
        let file = try PosixFile(creating: temp.path)
        var kept = false
        defer {
            file.close()
            if !kept { unlink(temp.path) }
        }
        var hasher = SHA256()
        var received: Int64 = 0
        do {
            for try await buffer in body {
                received += Int64(buffer.readableBytes)
                if received > length {
                    throw APIError.badRequest("body longer than its Content-Length of \(length) bytes")
                }
                try buffer.withUnsafeReadableBytes { raw in
                    hasher.update(bufferPointer: raw)
                    try file.write(raw)
                }
            }
        } catch let error as APIError {
            throw error
        } catch {
            throw APIError.badRequest("upload cut off after \(received) of \(length) bytes: \(error)")
        }
        guard received == length else {
            throw APIError.badRequest("upload cut off after \(received) of \(length) bytes")
        }
        let actual = hexString(hasher.finalize())
        guard actual == expected else {
            throw APIError.badRequest("checksum mismatch: expected \(expected), got \(actual)")
        }
        try file.sync()
        let dir = destination.deletingLastPathComponent()
        let created = !FileManager.default.fileExists(atPath: dir.path)
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        guard rename(temp.path, destination.path) == 0 else {
            throw APIError(.internalServerError, "cannot move upload into the artifact store: \(errnoText())")
        }
        kept = true
        try PosixFile.syncDirectory(dir.path)
        if created { try PosixFile.syncDirectory(root.path) }
        return received
    }
}

// MARK: - POSIX file

/// A file descriptor opened for writing a new file, with the few calls the store needs.
final class PosixFile {
    private var fd: Int32

    init(creating path: String) throws {
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw APIError(.internalServerError, "cannot create \(path): \(errnoText())")
        }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw APIError(.internalServerError, "cannot write upload: \(errnoText())")
            }
            offset += n
        }
    }

    func sync() throws {
        guard fsync(fd) == 0 else { throw APIError(.internalServerError, "fsync failed: \(errnoText())") }
    }

    func close() {
        if fd >= 0 { _ = Foundation.close(fd); fd = -1 }
    }

    /// fsyncs a directory, so that a rename into it survives a crash.
    static func syncDirectory(_ path: String) throws {
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw APIError(.internalServerError, "cannot open \(path): \(errnoText())") }
        defer { _ = Foundation.close(dfd) }
        guard fsync(dfd) == 0 else { throw APIError(.internalServerError, "fsync \(path) failed: \(errnoText())") }
    }
}

