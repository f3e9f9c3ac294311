import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Checkpoints

/// One uploaded checkpoint (`checkpoints` table); unique per (job, step).
public struct CheckpointRecord: Codable, Sendable, Equatable, Identifiable, FetchableRecord, PersistableRecord {
    public var id: Int64
    public var jobID: Int64
    /// Steps completed when the checkpoint was taken; a resumed attempt's first step is `step + 1`.
    public var step: Int
    public var imagesSeen: Int
    /// SHA-256 (lowercase hex) of the checkpoint file in the artifact store.
    public var sha256: String
    public var size: Int64
    /// Where the coordinator keeps the file (relative to its state directory, by convention).
    public var path: String
    public var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case id
        case jobID = "job_id"
        case step
        case imagesSeen = "images_seen"
        case sha256, size, path
        case createdAt = "created_at"
    }

    public static let databaseTableName = "checkpoints"

    /// Columns for the query interface.
    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let jobID = Column(CodingKeys.jobID)
        public static let step = Column(CodingKeys.step)
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}

/// The columns of a checkpoint to insert or replace.
struct NewCheckpoint: Encodable, PersistableRecord {
    static let databaseTableName = "checkpoints"
    var jobID: Int64
    var step: Int
    var imagesSeen: Int
    var sha256: String
    var size: Int64
    var path: String
    var createdAt: Date

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case step
        case imagesSeen = "images_seen"
        case sha256, size, path
        case createdAt = "created_at"
    }

    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}

// MARK: - Loss points

/// A `loss_points` row; primary key (job_id, step), so a step reported again replaces the row.
struct LossPointRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "loss_points"
    static let persistenceConflictPolicy = PersistenceConflictPolicy(insert: .replace, update: .replace)

    var jobID: Int64
    var step: Int
    var images: Int
    var content: Double
    var style: Double
    var total: Double

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case step, images, content, style, total
    }

    enum Columns {
        static let jobID = Column(CodingKeys.jobID)
        static let step = Column(CodingKeys.step)
    }

    init(jobID: Int64, _ p: LossPoint) {
        self.jobID = jobID
        step = p.step
        images = p.images
        content = p.content
        style = p.style
        total = p.total
    }

    var point: LossPoint {
        LossPoint(step: step, images: images, content: content, style: style, total: total)
    }
}

// MARK: - Workers

/// A worker the coordinator has heard from (`workers` table).
public struct WorkerRecord: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public var name: String
    public var host: String
    public var threads: Int
    public var lastSeen: Date
    /// The job it holds a lease on, if any.
    public var currentJobID: Int64?

    enum CodingKeys: String, CodingKey {
        case name, host, threads
        case lastSeen = "last_seen"
        case currentJobID = "current_job_id"
    }

    public static let databaseTableName = "workers"

    /// Columns for the query interface.
    public enum Columns {
        public static let name = Column(CodingKeys.name)
        public static let lastSeen = Column(CodingKeys.lastSeen)
        public static let currentJobID = Column(CodingKeys.currentJobID)
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}

// MARK: - Events

/// What an `events` row records.
public enum EventKind: String, Codable, Sendable, DatabaseValueConvertible {
    case submitted, leased, checkpointed, completed, failed, expired, released, cancelled, retried
    /// A new preview image was recorded (migration "v2").
    case previewed
}

/// The audit trail: one row per state transition (and per checkpoint), with its reason.
public struct JobEvent: Codable, Sendable, Equatable, Identifiable, FetchableRecord, PersistableRecord {
    public var id: Int64
    public var jobID: Int64?
    public var at: Date
    public var kind: EventKind
    public var fromState: JobState?
    public var toState: JobState?
    public var reason: String?
    public var worker: String?

    enum CodingKeys: String, CodingKey {
        case id
        case jobID = "job_id"
        case at, kind
        case fromState = "from_state"
        case toState = "to_state"
        case reason, worker
    }

    public static let databaseTableName = "events"

    /// Columns for the query interface.
    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let jobID = Column(CodingKeys.jobID)
        public static let kind = Column(CodingKeys.kind)
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}

/// The columns of a new event.
struct NewEvent: Encodable, PersistableRecord {
    static let databaseTableName = "events"
    var jobID: Int64?
    var at: Date
    var kind: EventKind
    var fromState: JobState?
    var toState: JobState?
    var reason: String?
    var worker: String?

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case at, kind
        case fromState = "from_state"
        case toState = "to_state"
        case reason, worker
    }

    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}
