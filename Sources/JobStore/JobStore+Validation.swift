import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Validation points (migration "v6", issue 14)

/// A row of `validation_points`: the held-out losses of a job at one step (a checkpoint's, or
/// the last). A point replaces an earlier one of the same step.
struct ValidationPointRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "validation_points"
    static let persistenceConflictPolicy = PersistenceConflictPolicy(insert: .replace, update: .replace)

    var jobID: Int64
    var step: Int
    var content: Double
    var style: Double
    var contentWeighted: Double
    var styleWeighted: Double

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case step, content, style
        case contentWeighted = "content_weighted"
        case styleWeighted = "style_weighted"
    }

    enum Columns {
        static let jobID = Column(CodingKeys.jobID)
        static let step = Column(CodingKeys.step)
    }

    init(jobID: Int64, _ p: ValidationPoint) {
        self.jobID = jobID
        step = p.step
        content = p.content
        style = p.style
        contentWeighted = p.contentWeighted
        styleWeighted = p.styleWeighted
    }

    var point: ValidationPoint {
        ValidationPoint(step: step, content: content, style: style, contentWeighted: contentWeighted, styleWeighted: styleWeighted)
    }
}

extension JobStore {
    /// The job's validation points in step order.
    public func validationPoints(jobID: Int64) async throws -> [ValidationPoint] {
        try await read("validationPoints") { db in try Self.validationPoints(db, jobID: jobID) }
    }

    /// The checkpoint with the lowest weighted validation total (the earliest on a tie), if
    /// that checkpoint is still stored: early stopping's model when a later attempt stops.
    public func bestCheckpoint(jobID: Int64) async throws -> CheckpointRecord? {
        try await read("bestCheckpoint") { db in try Self.bestCheckpoint(db, jobID: jobID) }
    }

    /// Every job's validation points in step order (one per checkpoint: few beside loss curves).
    public func validationPointsByJob() async throws -> [Int64: [ValidationPoint]] {
        try await read("validationPointsByJob") { db in
            var out: [Int64: [ValidationPoint]] = [:]
            let rows = try ValidationPointRecord.order(ValidationPointRecord.Columns.jobID, ValidationPointRecord.Columns.step).fetchAll(db)
            for row in rows { out[row.jobID, default: []].append(row.point) }
            return out
        }
    }

    // MARK: - Inside a transaction

    static func validationPoints(_ db: Database, jobID: Int64) throws -> [ValidationPoint] {
        try ValidationPointRecord.filter(ValidationPointRecord.Columns.jobID == jobID)
            .order(ValidationPointRecord.Columns.step).fetchAll(db).map(\.point)
    }

    /// The SQL of the best validation step of the job `jobColumn` names (lowest weighted total,
    /// earliest on a tie); NULL without points. Retention keeps that step's checkpoint.
    static func bestValidationStepSQL(jobColumn: String) -> String {
        """
        (SELECT v.step FROM validation_points v WHERE v.job_id = \(jobColumn)
         ORDER BY v.content_weighted + v.style_weighted, v.step LIMIT 1)
        """
    }

    static func bestCheckpoint(_ db: Database, jobID: Int64) throws -> CheckpointRecord? {
        try CheckpointRecord.fetchOne(db, sql: """
            SELECT * FROM checkpoints WHERE job_id = ? AND step = \(bestValidationStepSQL(jobColumn: "?"))
            """, arguments: [jobID, jobID])
    }

    /// Refuses points a worker cannot have measured: steps outside 0…maxCount, losses that are
    /// negative or not finite.
    static func check(_ points: [ValidationPoint], jobID: Int64) throws {
        for p in points {
            let losses = [p.content, p.style, p.contentWeighted, p.styleWeighted]
            guard (0...JobLimits.maxCount).contains(p.step), losses.allSatisfy({ $0.isFinite && $0 >= 0 }) else {
                throw StoreError.invalidReport(jobID: jobID, reason:
                    "validation point at step \(p.step): step must be from 0 to \(JobLimits.maxCount) and losses finite and "
                    + "non-negative (content \(p.content), style \(p.style), weighted \(p.contentWeighted), \(p.styleWeighted))")
            }
        }
    }

    /// Upserts validation points: a step already recorded is replaced.
    static func insert(_ points: [ValidationPoint], jobID: Int64, _ db: Database) throws {
        for p in points { try ValidationPointRecord(jobID: jobID, p).insert(db) }
    }
}
