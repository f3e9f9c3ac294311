import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Queries

extension JobStore {
    /// All jobs ordered by id, each with its latest loss point.
    public func jobs() async throws -> [JobSummary] {
        try await read("jobs") { db in
            let jobs = try Job.order(Job.Columns.id).fetchAll(db)
            let latest = try LossPointRecord.fetchAll(db, sql: """
                SELECT lp.* FROM loss_points lp
                JOIN (SELECT job_id, MAX(step) AS step FROM loss_points GROUP BY job_id) m
                  ON lp.job_id = m.job_id AND lp.step = m.step
                """)
            let byJob = Dictionary(latest.map { ($0.jobID, $0.point) }, uniquingKeysWith: { a, _ in a })
            return jobs.map { JobSummary(job: $0, latestLoss: byJob[$0.id]) }
        }
    }

    /// The job with this id, or nil.
    public func job(id: Int64) async throws -> Job? {
        try await read("job(id:)") { db in try Job.fetchOne(db, key: id) }
    }

    /// The most recent job (highest id) with this name, or nil.
    public func job(named name: String) async throws -> Job? {
        try await read("job(named:)") { db in
            try Job.filter(Job.Columns.name == name).order(Job.Columns.id.desc).fetchOne(db)
        }
    }

    /// The job's loss curve, one point per step, ordered by step.
    public func lossPoints(jobID: Int64) async throws -> [LossPoint] {
        try await read("lossPoints") { db in
            try LossPointRecord.filter(LossPointRecord.Columns.jobID == jobID)
                .order(LossPointRecord.Columns.step).fetchAll(db).map(\.point)
        }
    }

    /// The job's checkpoints ordered by step.
    public func checkpoints(jobID: Int64) async throws -> [CheckpointRecord] {
        try await read("checkpoints") { db in
            try CheckpointRecord.filter(CheckpointRecord.Columns.jobID == jobID)
                .order(CheckpointRecord.Columns.step).fetchAll(db)
        }
    }

    /// The checkpoint a new lease of the job would resume from, or nil.
    public func latestCheckpoint(jobID: Int64) async throws -> CheckpointRecord? {
        try await read("latestCheckpoint") { db in
            try Self.latestCheckpoint(db, jobID: jobID)
        }
    }

    /// The job's audit trail, oldest first.
    public func events(jobID: Int64) async throws -> [JobEvent] {
        try await read("events") { db in
            try JobEvent.filter(JobEvent.Columns.jobID == jobID).order(JobEvent.Columns.id).fetchAll(db)
        }
    }

    /// The last `limit` events of all jobs, oldest first.
    public func recentEvents(limit: Int = 100) async throws -> [JobEvent] {
        try await read("recentEvents") { db in
            try JobEvent.order(JobEvent.Columns.id.desc).limit(max(0, limit)).fetchAll(db).reversed()
        }
    }

    /// Every worker seen, ordered by name.
    public func workers() async throws -> [WorkerRecord] {
        try await read("workers") { db in
            try WorkerRecord.order(WorkerRecord.Columns.name).fetchAll(db)
        }
    }

    /// Number of jobs in each state (every state present, zero if none).
    public func counts() async throws -> [JobState: Int] {
        try await read("counts") { db in
            var out = Dictionary(uniqueKeysWithValues: JobState.allCases.map { ($0, 0) })
            for row in try Row.fetchAll(db, sql: "SELECT state, COUNT(*) AS n FROM jobs GROUP BY state") {
                if let state = JobState(rawValue: row["state"]) { out[state] = row["n"] }
            }
            return out
        }
    }

    /// Number of events of each kind ever recorded (kinds never seen are absent). Counters for
    /// `/metrics` (e.g. lease expiries, which happen inside several verbs) are derived from it.
    public func eventCounts() async throws -> [EventKind: Int] {
        try await read("eventCounts") { db in
            var out: [EventKind: Int] = [:]
            for row in try Row.fetchAll(db, sql: "SELECT kind, COUNT(*) AS n FROM events GROUP BY kind") {
                if let kind = EventKind(rawValue: row["kind"]) { out[kind] = row["n"] }
            }
            return out
        }
    }

    // MARK: - Inside a transaction

    static func latestCheckpoint(_ db: Database, jobID: Int64) throws -> CheckpointRecord? {
        if let id = try Job.fetchOne(db, key: jobID)?.latestCheckpointID {
            return try CheckpointRecord.fetchOne(db, key: id)
        }
        return nil
    }

    /// What `sha256` is to the jobs: "dataset" (a registered manifest or shard), "checkpoint",
    /// "style", "model", or nil — for the served bytes metric. Indexed reads, and a text search
    /// of the configs for styles.
    public func artifactRole(sha256: String) async throws -> String? {
        guard JobConfig.isSHA256(sha256) else { return nil }
        return try await read("artifactRole") { db in
            // First: a manifest digest also appears in the configs that pin it.
            if try DatasetVersion.fetchOne(db, key: sha256) != nil { return "dataset" }
            if try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dataset_shards WHERE sha256 = ?", arguments: [sha256]) ?? 0 > 0 {
                return "dataset"
            }
            if try CheckpointRecord.filter(Column("sha256") == sha256).fetchCount(db) > 0 { return "checkpoint" }
            if try Job.filter(Column("model_sha256") == sha256).fetchCount(db) > 0 { return "model" }
            if try Job.filter(Column("config_json").like("%\(sha256)%")).fetchCount(db) > 0 { return "style" }
            return nil
        }
    }
}
