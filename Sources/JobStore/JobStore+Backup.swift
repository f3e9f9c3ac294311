import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Online backup

// Copying jobs.sqlite with `cp` while the coordinator runs loses every commit still in
// jobs.sqlite-wal, and can catch the file mid-checkpoint. `backup` goes through SQLite's
// backup API instead: one read transaction on a read-only connection, so the copy is the
// database as of one commit, writers are never blocked (WAL) and the live file is not touched.

/// What `JobStore.backup` wrote.
public struct BackupSummary: Sendable, Equatable {
    /// The backup file.
    public var path: String
    /// Its size in bytes.
    public var bytes: Int64
    /// Number of jobs in each state (every state present, zero if none).
    public var jobs: [JobState: Int]
    /// Checkpoints recorded, over all jobs.
    public var checkpoints: Int
    /// Loss points recorded, over all jobs.
    public var lossPoints: Int

    /// Number of jobs in the backup.
    public var jobCount: Int { jobs.values.reduce(0, +) }
}

/// Why `JobStore.backup` wrote nothing.
public enum BackupError: Error, CustomStringConvertible, Equatable {
    /// The database to back up is missing, unreadable, or not a job store.
    case unreadableSource(path: String, reason: String)
    /// The output file exists and replacing it was not asked for.
    case destinationExists(path: String)
    /// The output cannot be written: no such directory, no permission, a directory, the
    /// database itself.
    case unwritableDestination(path: String, reason: String)
    /// SQLite failed while copying or checking the copy (disk full, I/O error, corruption).
    case failed(source: String, destination: String, reason: String)

    public var description: String {
        switch self {
        case .unreadableSource(let path, let reason):
            return "cannot back up \(path): \(reason)"
        case .destinationExists(let path):
            return "\(path) already exists; not overwriting it"
        case .unwritableDestination(let path, let reason):
            return "cannot write \(path): \(reason)"
        case .failed(let source, let destination, let reason):
            return "backup of \(source) to \(destination) failed: \(reason)"
        }
    }
}

extension JobStore {
    /// Copies the job store at `source` into a new file `destination`, consistently, while
    /// other processes (a running coordinator) may be writing to it.
    ///
    /// The source is opened read-only and copied in one step of SQLite's backup API, inside one
    /// read transaction: the copy holds every transaction committed before it started and none
    /// after. The copy is written next to `destination` under a temporary name, checked
    /// (`PRAGMA integrity_check`, the `jobs` table), then renamed into place, so `destination`
    /// is either the complete backup or untouched. The copy is a single self-contained file
    /// (no `-wal` to go with it). The source is never written; on a database no coordinator has
    /// open, SQLite's read-only WAL access leaves an empty `-wal` and a `-shm` next to it (owned
    /// by the database's owner even when run as root), which the next coordinator uses.
    ///
    /// - Parameter replacing: replace an existing `destination` (its stale `-wal`, `-shm` and
    ///   `-journal` files too). Without it an existing file is refused.
    /// - Throws: `BackupError`; nothing is left behind then.
    @discardableResult
    public static func backup(databaseAt source: String, to destination: String,
                              replacing: Bool = false) throws -> BackupSummary {
        try checkSource(source)
        try checkDestination(destination, source: source, replacing: replacing)
        let sourceQueue = try openReadOnly(source)
        defer { try? sourceQueue.close() }

        let destinationURL = URL(fileURLWithPath: destination)
        let directory = destinationURL.deletingLastPathComponent()
        let temporary = directory.appendingPathComponent(
            ".\(destinationURL.lastPathComponent).partial-\(UUID().uuidString.prefix(8))").path
        var kept = false
        defer { if !kept { removeDatabaseFiles(temporary) } }

        var summary: BackupSummary
        do {
            let copy = try DatabaseQueue(path: temporary)
            do {
                try sourceQueue.backup(to: copy)
                summary = try copy.read { db in try check(copy: db, source: source, destination: destination) }
            } catch {
                try? copy.close()
                throw error
            }
            try copy.close()
        } catch let error as BackupError {
            throw error
        } catch {
            throw BackupError.failed(source: source, destination: destination, reason: sqliteReason(error))
        }

        if replacing {
            for suffix in ["-wal", "-shm", "-journal"] { unlink(destination + suffix) }
        }
        guard rename(temporary, destination) == 0 else {
            throw BackupError.unwritableDestination(path: destination, reason: errnoReason())
        }
        kept = true
        syncDirectory(directory.path)
        summary.bytes = fileSize(destination) ?? 0
        return summary
    }

    // MARK: - Steps

    /// Refuses a missing source, or one that is not a regular file.
    static func checkSource(_ path: String) throws {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            let parent = URL(fileURLWithPath: path).deletingLastPathComponent().path
            if code == ENOENT, !FileManager.default.fileExists(atPath: parent) {
                throw BackupError.unreadableSource(path: path, reason: "no such file (directory \(parent) does not exist)")
            }
            throw BackupError.unreadableSource(path: path, reason: errnoReason(code))
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            throw BackupError.unreadableSource(path: path, reason: "not a regular file")
        }
    }

    /// Refuses a destination that exists (unless `replacing`), is a directory, is the source
    /// itself, or lies in a directory that does not exist or cannot be written.
    static func checkDestination(_ path: String, source: String, replacing: Bool) throws {
        var st = stat()
        if lstat(path, &st) == 0 {
            if (st.st_mode & S_IFMT) == S_IFDIR {
                throw BackupError.unwritableDestination(path: path, reason: "it is a directory")
            }
            var src = stat()
            if stat(path, &st) == 0, stat(source, &src) == 0, st.st_dev == src.st_dev, st.st_ino == src.st_ino {
                throw BackupError.unwritableDestination(path: path, reason: "it is the database being backed up")
            }
            if !replacing { throw BackupError.destinationExists(path: path) }
        }
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        guard stat(directory, &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else {
            throw BackupError.unwritableDestination(path: path, reason: "directory \(directory) does not exist")
        }
        guard access(directory, W_OK) == 0 else {
            throw BackupError.unwritableDestination(path: path, reason: "directory \(directory) is not writable")
        }
    }

    /// A read-only connection on `path`, after checking that it is a job store.
    static func openReadOnly(_ path: String) throws -> DatabaseQueue {
        var config = Configuration()
        config.readonly = true
        config.busyMode = .timeout(10)
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(path: path, configuration: config)
        } catch {
            throw BackupError.unreadableSource(path: path, reason: sqliteReason(error))
        }
        do {
            let isStore = try queue.read { db in
                try db.tableExists("jobs") && db.tableExists("grdb_migrations")
            }
            guard isStore else {
                try? queue.close()
                throw BackupError.unreadableSource(path: path, reason: "not a job store (no jobs table)")
            }
        } catch let error as BackupError {
            throw error
        } catch {
            try? queue.close()
            throw BackupError.unreadableSource(path: path, reason: sqliteReason(error))
        }
        return queue
    }

    /// Checks the fresh copy and counts what it holds.
    static func check(copy db: Database, source: String, destination: String) throws -> BackupSummary {
        let integrity = try String.fetchAll(db, sql: "PRAGMA integrity_check")
        guard integrity == ["ok"] else {
            throw BackupError.failed(source: source, destination: destination,
                                     reason: "the copy fails SQLite's integrity check: "
                                         + integrity.prefix(3).joined(separator: "; "))
        }
        var jobs = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
        for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state") {
            if let state = JobState(rawValue: row["state"]) { jobs[state] = row["n"] }
        }
        let checkpoints = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM checkpoints") ?? 0
        let lossPoints = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM loss_points") ?? 0
        return BackupSummary(path: destination, bytes: 0, jobs: jobs, checkpoints: checkpoints, lossPoints: lossPoints)
    }

    // MARK: - Files

    /// SQLite's own message for `error` ("file is not a database"), else its description.
    static func sqliteReason(_ error: any Error) -> String {
        if let error = error as? DatabaseError, let message = error.message { return message }
        return String(describing: error)
    }

    /// `strerror`'s text, lower-cased to read inside a sentence ("permission denied").
    static func errnoReason(_ code: Int32 = errno) -> String {
        String(cString: strerror(code)).lowercased()
    }

    static func removeDatabaseFiles(_ path: String) {
        for suffix in ["", "-journal", "-wal", "-shm"] { unlink(path + suffix) }
    }

    static func fileSize(_ path: String) -> Int64? {
        var st = stat()
        return stat(path, &st) == 0 ? Int64(st.st_size) : nil
    }

    /// Makes a rename in `path` durable. Best effort: some file systems refuse to fsync a
    /// directory, and the backup itself is already on disk (SQLite synced it on commit).
    static func syncDirectory(_ path: String) {
        guard let directory = FileHandle(forReadingAtPath: path) else { return }
        try? directory.synchronize()
        try? directory.close()
    }
}
