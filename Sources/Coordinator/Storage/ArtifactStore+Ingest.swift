import CoordinatorAPI
import Crypto
import Foundation
import NIOCore

// MARK: - Ingest

extension ArtifactStore {
    /// Streams `body` into the store as the artifact `expected`, an upload of `kind`, and
    /// returns its size.
    ///
    /// In order: the declared length is checked against the limit of `kind` and reserved
    /// against the store quota before a byte is written; the body is written to `tmp/` while
    /// it is hashed, the limit and the declared length checked again on every buffer (a body
    /// that runs past either is cut there), and a watchdog cuts it when nothing arrives for
    /// `uploadTimeout`; then the file is fsynced and renamed into place. On any refusal or
    /// failure the temporary file is removed at once and nothing is kept.
    /// - Throws: `APIError` 400 (bad digest, checksum mismatch, body shorter or longer than
    ///   `contentLength`), 408 (stalled), 411 (no Content-Length), 413 (over the limit of
    ///   `kind`), 507 (over the store quota, or the disk full: ENOSPC, EDQUOT), 500 (any
    ///   other file-system failure).
    func ingest<Body: AsyncSequence & Sendable>(_ body: Body, expected: String, contentLength: Int64?,
                                                kind: UploadKind) async throws -> Int64 where Body.Element == ByteBuffer {
        let destination = try url(for: expected)
        let limit = limit(for: kind)
        guard let length = contentLength else {
            throw APIError(.lengthRequired, "Content-Length is required for uploads")
        }
        guard length <= limit else { throw Self.tooLarge(kind, bytes: length, limit: limit) }
        // Bytes already stored under this digest are not counted twice.
        let reservation = try reserve(try size(of: expected) == length ? 0 : length, kind: kind)
        defer { usage.release(reservation) }

        let what = "\(kind == .artifact ? "an" : "a") \(kind.singular) of \(length) bytes"
        let temp = tmp.appendingPathComponent("upload-\(UUID().uuidString)")
        let file: PosixFile
        do { file = try PosixFile(creating: temp.path, fault: writeFault) } catch let error as StorageIOError {
            throw error.apiError(storing: what)
        }
        var kept = false
        defer {
            file.close()
            if !kept { unlink(temp.path) }
        }
        let actual = try await receive(body, into: file, length: length, limit: limit, kind: kind, what: what)
        guard actual == expected else {
            throw APIError.badRequest("checksum mismatch: expected \(expected), got \(actual)")
        }
        do {
            try file.sync()
            let dir = destination.deletingLastPathComponent()
            let created = try PosixFile.makeDirectory(dir.path)
            let replaces = Self.regularFile(destination.path) != nil
            guard rename(temp.path, destination.path) == 0 else {
                throw StorageIOError(operation: "move the upload into the artifact store", errno: errno)
            }
            kept = true
            usage.commit(reservation, added: replaces ? 0 : length)
            try PosixFile.syncDirectory(dir.path)
            if created { try PosixFile.syncDirectory(root.path) }
        } catch let error as StorageIOError {
            throw error.apiError(storing: what)
        }
        return length
    }

    /// Reserves `bytes` of the quota; before refusing, counts the store again, in case another
    /// process (`orchestrator gc`) freed space since the last count.
    private func reserve(_ bytes: Int64, kind: UploadKind) throws -> StoreUsage.Reservation {
        do {
            return try usage.reserve(bytes, quota: quota, kind: kind)
        } catch let refusal as APIError where quota != nil {
            guard (try? recount()) != nil else { throw refusal }
            return try usage.reserve(bytes, quota: quota, kind: kind)
        }
    }

    /// Writes the body to `file`, hashing it, and returns its SHA-256; cut with a 408 by a
    /// watchdog task when no buffer arrives for `uploadTimeout` (cancelling the read ends the
    /// request body, so the connection does not stay blocked).
    private func receive<Body: AsyncSequence & Sendable>(
        _ body: Body, into file: PosixFile, length: Int64, limit: Int64, kind: UploadKind, what: String
    ) async throws -> String where Body.Element == ByteBuffer {
        let progress = Locked(UploadProgress())
        let timeout = uploadTimeout
        return try await withThrowingTaskGroup(of: String?.self) { group in
            group.addTask {
                var hasher = SHA256()
                var received: Int64 = 0
                do {
                    for try await buffer in body {
                        received += Int64(buffer.readableBytes)
                        progress.withLockedValue { $0 = UploadProgress(received: received) }
                        if received > limit { throw Self.tooLarge(kind, bytes: received, limit: limit, streamed: true) }
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
                } catch let error as StorageIOError {
                    throw error.apiError(storing: what)
                } catch {
                    throw APIError.badRequest("upload cut off after \(received) of \(length) bytes: \(error)")
                }
                guard received == length else {
                    throw APIError.badRequest("upload cut off after \(received) of \(length) bytes")
                }
                return hexString(hasher.finalize())
            }
            group.addTask {
                try await Self.watch(progress, timeout: timeout, length: length)
                return nil
            }
            defer { group.cancelAll() }
            // The first to finish: the reader with the digest, or an error (the watchdog's 408).
            while let result = try await group.next() {
                if let digest = result { return digest }
            }
            throw CancellationError()
        }
    }

    /// Returns only by throwing: a 408 once nothing has arrived for `timeout`, or
    /// `CancellationError` when the upload ends first.
    private static func watch(_ progress: Locked<UploadProgress>, timeout: Duration, length: Int64) async throws {
        while true {
            let last = progress.withLockedValue { $0 }
            let deadline = last.at.advanced(by: timeout)
            if ContinuousClock.now >= deadline {
                let seconds = Double(timeout.components.seconds) + Double(timeout.components.attoseconds) * 1e-18
                throw APIError(.requestTimeout, "upload stalled: nothing received for \(String(format: "%g", seconds)) s "
                               + "after \(last.received) of \(length) bytes; nothing was kept")
            }
            try await Task.sleep(until: deadline, clock: .continuous)
        }
    }

    /// The 413 for an upload of `kind` of `bytes` (declared, or `streamed` so far) over `limit`.
    static func tooLarge(_ kind: UploadKind, bytes: Int64, limit: Int64, streamed: Bool = false) -> APIError {
        let mib = limit % (1 << 20) == 0 ? " (\(limit >> 20) MiB)" : ""
        let limitText = "exceeds the limit of \(limit) bytes\(mib) for \(kind.noun)"
        return APIError(.contentTooLarge, streamed ? "upload body \(limitText) (\(bytes) bytes received so far)"
                                                   : "upload of \(bytes) bytes \(limitText)")
    }
}

/// How much of an upload has arrived, and when the last buffer did.
struct UploadProgress: Sendable {
    var received: Int64 = 0
    var at = ContinuousClock.now
}

// MARK: - Adopting a local file

extension ArtifactStore {
    /// Copies a file of the coordinator's own machine (the VGG16 weights of `serve
    /// --vgg-weights`) into the store under its SHA-256, unless it is there already; returns
    /// its digest and size. Read twice (hash, copy), checked against the digest after the copy.
    func adopt(file: URL) throws -> WeightsInfo {
        let (sha, size) = try FileDigest.sha256(of: file)
        let destination = try url(for: sha)
        if try self.size(of: sha) == size { return WeightsInfo(sha256: sha, size: size) }
        let temp = tmp.appendingPathComponent("adopt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: temp) }
        try FileManager.default.copyItem(at: file, to: temp)
        let (copied, _) = try FileDigest.sha256(of: temp)
        guard copied == sha else {
            throw StorageIOError(operation: "copy \(file.path) (it changed while being copied)", errno: EIO)
        }
        _ = try PosixFile.makeDirectory(destination.deletingLastPathComponent().path)
        guard rename(temp.path, destination.path) == 0 else {
            throw StorageIOError(operation: "move \(file.lastPathComponent) into the artifact store", errno: errno)
        }
        try recount()
        return WeightsInfo(sha256: sha, size: size)
    }
}
