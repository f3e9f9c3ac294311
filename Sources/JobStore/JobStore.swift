import CoordinatorAPI
import Foundation
import GRDB

// MARK: - JobStore

/// The coordinator's job table: a SQLite file in WAL mode through GRDB's `DatabasePool`.
///
/// Every domain verb is one write transaction that also appends an `events` row per
/// transition; reads see a consistent snapshot. Time comes only from the injected clock.
/// All methods are safe to call concurrently from any task.
public final class JobStore: Sendable {
    let dbWriter: any DatabaseWriter
    /// The store's source of time, also the coordinator's (dashboard sessions expire by it).
    public let clock: any StoreClock
    /// The default lease length, used when `leaseNextJob` is not given one.
    public let leaseDuration: TimeInterval
    /// Set when a write failed because the disk (or SQLite's size limit) was full: heartbeats
    /// could not extend leases meanwhile, so the next write that succeeds first grants every
    /// running lease a full period of grace.
    let storageTrouble = Flag()

    /// Opens (creating if needed, with its parent directory) the store at `path` and runs
    /// any pending migrations.
    public convenience init(path: String, clock: any StoreClock = SystemClock(),
                            leaseDuration: TimeInterval = 60) throws {
        let writer: DatabasePool
        do {
            let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
            writer = try DatabasePool(path: path, configuration: Self.configuration())
        } catch {
            throw StoreError.database(operation: "open \(path)", underlying: error)
        }
        try self.init(writer: writer, clock: clock, leaseDuration: leaseDuration)
    }

    /// A store in memory (one connection), for tests that need no file.
    public static func inMemory(clock: any StoreClock = SystemClock(),
                                leaseDuration: TimeInterval = 60) throws -> JobStore {
        let queue: DatabaseQueue
        do {
            queue = try DatabaseQueue(configuration: configuration())
        } catch {
            throw StoreError.database(operation: "open in-memory database", underlying: error)
        }
        return try JobStore(writer: queue, clock: clock, leaseDuration: leaseDuration)
    }

    init(writer: any DatabaseWriter, clock: any StoreClock, leaseDuration: TimeInterval) throws {
        precondition(leaseDuration > 0, "leaseDuration must be positive")
        dbWriter = writer
        self.clock = clock
        self.leaseDuration = leaseDuration
        do {
            try Self.migrator.migrate(writer)
        } catch {
            throw StoreError.database(operation: "migrate", underlying: error)
        }
    }

    static func configuration() -> Configuration {
        var config = Configuration()
        // Another process (or a second store on the same file) may hold the write lock briefly.
        config.busyMode = .timeout(10)
        config.foreignKeysEnabled = true
        // WAL with synchronous=FULL: every committed transition survives a power loss of the
        // coordinator's machine, not only a crash of its process (GRDB's default, NORMAL, may lose
        // the last commits to an OS crash). About 20% fewer heartbeats per second; still far more
        // than any cluster of workers sends.
        config.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = FULL") }
        return config
    }

    /// Closes the database connections; later calls fail with `StoreError.database`.
    public func close() throws {
        do { try dbWriter.close() } catch {
            throw StoreError.database(operation: "close", underlying: error)
        }
    }

    /// Names of the migrations applied to the file, in order.
    public func appliedMigrations() async throws -> [String] {
        try await read("appliedMigrations") { db in
            try Self.migrator.appliedIdentifiers(db).sorted()
        }
    }

    // MARK: - Transactions

    /// Runs `body` in one write transaction, passing it the clock's time. A `StoreError`
    /// thrown by `body` rolls back and is rethrown as is; anything else is wrapped with
    /// `operation`.
    func write<T: Sendable>(_ operation: String,
                            _ body: @escaping @Sendable (Database, Date) throws -> T) async throws -> T {
        let clock = self.clock
        let recovering = storageTrouble.isSet
        let defaultDuration = leaseDuration
        do {
            let result = try await dbWriter.write { db in
                let now = clock.now()
                if recovering { _ = try Self.extendRunningLeases(db, now: now, defaultDuration: defaultDuration) }
                return try body(db, now)
            }
            if recovering { storageTrouble.clear() }
            return result
        } catch let error as StoreError {
            throw error
        } catch let error as CancellationError {
            throw error
        } catch {
            let wrapped = StoreError.database(operation: operation, underlying: error)
            if wrapped.isStorageFull { storageTrouble.set() }
            throw wrapped
        }
    }

    /// Gives every running lease at least a full lease period from now: the coordinator calls
    /// it at start, so that time it was down (or a clock jump between two runs) is not charged
    /// to the workers. Returns the number of leases extended.
    @discardableResult
    public func grantGrace() async throws -> Int {
        let defaultDuration = leaseDuration
        return try await write("grantGrace") { db, now in
            try Self.extendRunningLeases(db, now: now, defaultDuration: defaultDuration)
        }
    }

    static func extendRunningLeases(_ db: Database, now: Date, defaultDuration: TimeInterval) throws -> Int {
        try db.execute(sql: """
            UPDATE jobs SET lease_expires_at = MAX(COALESCE(lease_expires_at, 0), ? + COALESCE(lease_seconds, ?))
            WHERE state = 'running'
            """, arguments: [now.timeIntervalSince1970, defaultDuration])
        return db.changesCount
    }

    /// Like `write`, for verbs that must commit some changes (an expiry noticed on the way)
    /// even when they then refuse the request: `body` returns the refusal as a failure, the
    /// transaction commits, and the error is thrown afterwards.
    func writeCommitting<T: Sendable>(
        _ operation: String,
        _ body: @escaping @Sendable (Database, Date) throws -> Result<T, StoreError>
    ) async throws -> T {
        try await write(operation, body).get()
    }

    func read<T: Sendable>(_ operation: String,
                           _ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await dbWriter.read(body)
        } catch let error as CancellationError {
            throw error
        } catch {
            throw StoreError.database(operation: operation, underlying: error)
        }
    }

    // MARK: - Shared steps (inside a transaction)

    static func fetchJob(_ db: Database, _ id: Int64) throws -> Job {
        guard let job = try Job.fetchOne(db, key: id) else { throw StoreError.notFound(jobID: id) }
        return job
    }

    static func recordEvent(_ db: Database, job: Int64?, at: Date, kind: EventKind,
                            from: JobState?, to: JobState?, reason: String?, worker: String?) throws {
        try NewEvent(jobID: job, at: at, kind: kind, fromState: from, toState: to,
                     reason: reason, worker: worker).insert(db)
    }

    /// Upserts a worker's row with `last_seen = now`.
    static func touchWorker(_ db: Database, name: String, host: String, threads: Int, now: Date) throws {
        try db.execute(sql: """
            INSERT INTO workers (name, host, threads, last_seen) VALUES (?, ?, ?, ?)
            ON CONFLICT(name) DO UPDATE SET host = excluded.host, threads = excluded.threads,
                last_seen = excluded.last_seen
            """, arguments: [name, Sanitize.oneLine(host, limit: 255), min(max(threads, 0), 1 << 16), now.timeIntervalSince1970])
    }

    /// Forgets that `worker` holds `jobID` (the job left `running`).
    static func detachWorker(_ db: Database, jobID: Int64) throws {
        try db.execute(sql: "UPDATE workers SET current_job_id = NULL WHERE current_job_id = ?",
                       arguments: [jobID])
    }

    /// A fresh lease token: 128 random bits from the system generator, as 32 hex digits.
    static func newToken() -> String {
        var rng = SystemRandomNumberGenerator()
        return [rng.next() as UInt64, rng.next() as UInt64].map { word in
            let hex = String(word, radix: 16)
            return String(repeating: "0", count: 16 - hex.count) + hex
        }.joined()
    }
}

// MARK: - Workers

extension JobStore {
    /// Records that a worker is alive (upserts its host, threads and `last_seen`). Leasing
    /// does this too; heartbeats refresh `last_seen`.
    public func touchWorker(name: String, host: String, threads: Int) async throws {
        if let problem = JobConfig.nameProblem(name) {
            throw StoreError.invalidConfig(reason: "worker name: \(problem)")
        }
        try await write("touchWorker") { db, now in
            try Self.touchWorker(db, name: name, host: host, threads: threads, now: now)
        }
    }
}
