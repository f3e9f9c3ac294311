import Foundation

// MARK: - File-system errors

/// A system call of the artifact store failed with `errno`.
struct StorageIOError: Error, CustomStringConvertible {
    /// What was being done, e.g. "write upload".
    let operation: String
    let errno: Int32

    /// ENOSPC or EDQUOT: the disk (or the user's quota on it) is full.
    var isDiskFull: Bool { errno == ENOSPC || errno == EDQUOT }

    var description: String { "\(operation): \(String(cString: strerror(errno)))" }

    /// The answer to a client: 507 when the disk is full, else 500.
    func apiError(storing what: String) -> APIError {
        if isDiskFull {
            return APIError(.insufficientStorage,
                            "the coordinator's disk is full (\(description)) while storing \(what); nothing was kept")
        }
        return APIError(.internalServerError, "cannot store \(what): \(description)")
    }
}

// MARK: - POSIX file

/// A file descriptor opened for writing a new file, with the few calls the store needs. Used by
/// one task at a time.
final class PosixFile: @unchecked Sendable {
    private var fd: Int32
    private var written: Int64 = 0
    /// `StoragePolicy.writeFault`: an errno to fail a write or fsync with, for tests.
    private let fault: (@Sendable (Int64) -> Int32?)?

    init(creating path: String, fault: (@Sendable (Int64) -> Int32?)? = nil) throws {
        self.fault = fault
        fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw StorageIOError(operation: "create \(path)", errno: errno) }
    }

    func write(_ bytes: UnsafeRawBufferPointer) throws {
        if let code = fault?(written) { throw StorageIOError(operation: "write upload", errno: code) }
        var offset = 0
        while offset < bytes.count {
            let n = Foundation.write(fd, bytes.baseAddress! + offset, bytes.count - offset)
            if n < 0 {
                if errno == EINTR { continue }
                throw StorageIOError(operation: "write upload", errno: errno)
            }
            offset += n
            written += Int64(n)
        }
    }

    func sync() throws {
        if let code = fault?(written) { throw StorageIOError(operation: "fsync upload", errno: code) }
        guard fsync(fd) == 0 else { throw StorageIOError(operation: "fsync upload", errno: errno) }
    }

    func close() {
        if fd >= 0 { _ = Foundation.close(fd); fd = -1 }
    }

    /// fsyncs a directory, so that a rename into it survives a crash.
    static func syncDirectory(_ path: String) throws {
        let dfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard dfd >= 0 else { throw StorageIOError(operation: "open \(path)", errno: errno) }
        defer { _ = Foundation.close(dfd) }
        guard fsync(dfd) == 0 else { throw StorageIOError(operation: "fsync \(path)", errno: errno) }
    }

    /// Creates the directory `path` if it is missing (its parent exists); true if it did.
    static func makeDirectory(_ path: String) throws -> Bool {
        if mkdir(path, 0o755) == 0 { return true }
        if errno == EEXIST { return false }
        throw StorageIOError(operation: "create directory \(path)", errno: errno)
    }
}
