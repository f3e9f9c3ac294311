import CoordinatorAPI
import Foundation
import GRDB

/// Stored as its raw text (`queued`, `running`, …).
extension JobState: DatabaseValueConvertible {}

// MARK: - Job

/// One row of the `jobs` table: a style's training and its lease. Times are stored as
/// seconds since 1970 (REAL), so they round-trip exactly.
public struct Job: Codable, Sendable, Equatable, Identifiable {
    public var id: Int64
    public var name: String
    /// The full submitted configuration (column `config_json`).
    public var config: JobConfig
    public var state: JobState
    public var priority: Int
    /// 1 for the first attempt; + 1 after each lease expiry or retryable failure.
    public var attempt: Int
    public var maxAttempts: Int
    /// The worker holding (or, once finished or cancelled, last holding) the lease.
    public var leaseOwner: String?
    /// The current lease token (128-bit random hex); kept after success or cancellation so
    /// that the last holder gets an exact answer, cleared when the job is queued again.
    public var leaseToken: String?
    /// Set only while running.
    public var leaseExpiresAt: Date?
    /// The lease length granted at lease time; each heartbeat extends the lease by it.
    public var leaseSeconds: TimeInterval?
    public var imagesDone: Int
    /// Known from the config when `steps` is set, else reported by the worker.
    public var imagesTotal: Int?
    /// Steps done (the last completed step).
    public var step: Int
    public var stepsTotal: Int?
    /// The step the current attempt started from: the latest checkpoint's step, 0 if none.
    public var resumedFromStep: Int
    public var latestCheckpointID: Int64?
    /// SHA-256 of the final model in the artifact store, once succeeded.
    public var modelSHA256: String?
    public var modelSize: Int64?
    /// Why the job failed (set only in state `failed`).
    public var failureReason: String?
    public var createdAt: Date
    public var updatedAt: Date
    /// When the current attempt was leased.
    public var startedAt: Date?
    public var finishedAt: Date?
    /// Training speed last reported by the worker.
    public var imagesPerS: Double?
    /// SHA-256 of the latest preview PNG in the artifact store (migration "v2"), and its step.
    public var previewSHA256: String?
    public var previewStep: Int?
    /// The worker credential (`credentials.id`, migration "v3") that took the current or last
    /// lease; nil when the admin token (or no token) did. A worker token may report only for
    /// jobs it holds.
    public var leaseCredentialID: Int64?
    /// The loss network the latest heartbeat named (migration "v5"), e.g. `vgg16 sha256:397923af…`
    /// or `random-vgg seed 0`: what the model was trained against is on record.
    public var lossNetwork: String?
    /// Why a succeeded job stopped before its budget (migration "v6"): `early-stopped at step N (best step M)`.
    public var stopReason: String?
    /// `"style_weight": "auto"`: the weight the worker chose (migration "v7"); nil until then.
    public var chosenStyleWeight: Double?
    /// A warm start (`"init"`, migration "v7"): the job whose model training started from, and
    /// how it was chosen (`job 3 (wave): Gram distance 0.214, nearest of 4`).
    public var warmStartJobID: Int64?
    public var warmStart: String?

    enum CodingKeys: String, CodingKey {
        case id, name
        case config = "config_json"
        case state, priority, attempt
        case maxAttempts = "max_attempts"
        case leaseOwner = "lease_owner"
        case leaseToken = "lease_token"
        case leaseExpiresAt = "lease_expires_at"
        case leaseSeconds = "lease_seconds"
        case imagesDone = "images_done"
        case imagesTotal = "images_total"
        case step
        case stepsTotal = "steps_total"
        case resumedFromStep = "resumed_from_step"
        case latestCheckpointID = "latest_checkpoint_id"
        case modelSHA256 = "model_sha256"
        case modelSize = "model_size"
        case failureReason = "failure_reason"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case startedAt = "started_at"
        case finishedAt = "finished_at"
        case imagesPerS = "images_per_s"
        case previewSHA256 = "preview_sha256"
        case previewStep = "preview_step"
        case leaseCredentialID = "lease_credential_id"
        case lossNetwork = "loss_network"
        case stopReason = "stop_reason"
        case chosenStyleWeight = "chosen_style_weight"
        case warmStartJobID = "warm_start_job_id"
        case warmStart = "warm_start"
    }
}

extension Job: FetchableRecord, PersistableRecord {
    public static let databaseTableName = "jobs"

    /// Columns for the query interface.
    public enum Columns {
        public static let id = Column(CodingKeys.id)
        public static let name = Column(CodingKeys.name)
        public static let state = Column(CodingKeys.state)
        public static let priority = Column(CodingKeys.priority)
        public static let leaseOwner = Column(CodingKeys.leaseOwner)
        public static let leaseExpiresAt = Column(CodingKeys.leaseExpiresAt)
        public static let createdAt = Column(CodingKeys.createdAt)
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}

// MARK: - Insertion

/// The columns of a new job; the rest take their schema defaults. Inserted with
/// `insertAndFetch(_:as: Job.self)` so that `Job.id` never has to be optional.
struct NewJob: Encodable, PersistableRecord {
    static let databaseTableName = "jobs"
    var name: String
    var config: JobConfig
    var state: JobState
    var priority: Int
    var attempt: Int
    var maxAttempts: Int
    var imagesTotal: Int?
    var stepsTotal: Int?
    var createdAt: Date
    var updatedAt: Date

    init(config: JobConfig, now: Date) {
        name = config.name
        self.config = config
        state = .queued
        priority = config.priority
        attempt = 1
        maxAttempts = config.maxAttempts
        imagesTotal = config.plannedImages
        stepsTotal = config.plannedSteps
        createdAt = now
        updatedAt = now
    }

    enum CodingKeys: String, CodingKey {
        case name
        case config = "config_json"
        case state, priority, attempt
        case maxAttempts = "max_attempts"
        case imagesTotal = "images_total"
        case stepsTotal = "steps_total"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
    }

    static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}
