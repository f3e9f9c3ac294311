import Foundation

// MARK: - Lease

/// `POST /v1/lease` body.
public struct LeaseRequest: Codable, Sendable {
    public var worker: String
    public var host: String
    public var threads: Int

    public init(worker: String, host: String, threads: Int) {
        self.worker = worker
        self.host = host
        self.threads = threads
    }
}

/// A job handed to a worker: train `config`, resuming from `checkpoint` when present, and
/// send `token` with every report and upload until the lease ends.
public struct LeaseResponse: Codable, Sendable, Equatable {
    public var jobID: Int64
    public var config: JobConfig
    public var token: String
    /// The lease length; heartbeats extend it by this much.
    public var leaseSeconds: Double
    public var leaseExpiresAt: Date
    public var attempt: Int
    /// The checkpoint to resume from (fetch it with `download(artifact:to:)`), nil for a fresh start.
    public var checkpoint: CheckpointInfo?
    /// The coordinator's VGG16 weights (an artifact), for a worker without its own; nil when the
    /// coordinator serves none.
    public var vgg: WeightsInfo?
    /// The manifest the job trains on (`config.datasetSHA256`), for a worker to fetch with its
    /// shards; nil when the coordinator serves no dataset (the worker's `--dataset DIR` is used).
    public var dataset: DatasetRef?
    /// The validation points recorded so far (a resumed attempt continues early stopping's
    /// count from them), and the checkpoint with the best weighted validation total.
    public var validation: [ValidationPoint]
    public var best: CheckpointInfo?
    /// A fresh start of a job with `"init"`: the finished models it may start from (one for
    /// `job:ID` or once `nearest` has chosen; up to `InitCandidate.maxCount` for `nearest`).
    /// Empty on a resume: the checkpoint holds the weights.
    public var initCandidates: [InitCandidate]

    public init(jobID: Int64, config: JobConfig, token: String, leaseSeconds: Double,
                leaseExpiresAt: Date, attempt: Int, checkpoint: CheckpointInfo?, vgg: WeightsInfo? = nil,
                dataset: DatasetRef? = nil, validation: [ValidationPoint] = [], best: CheckpointInfo? = nil,
                initCandidates: [InitCandidate] = []) {
        self.initCandidates = initCandidates
        self.validation = validation
        self.best = best
        self.vgg = vgg
        self.dataset = dataset
        self.jobID = jobID
        self.config = config
        self.token = token
        self.leaseSeconds = leaseSeconds
        self.leaseExpiresAt = leaseExpiresAt
        self.attempt = attempt
        self.checkpoint = checkpoint
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case config, token
        case leaseSeconds = "lease_seconds"
        case leaseExpiresAt = "lease_expires_at"
        case attempt, checkpoint, vgg, dataset, validation, best
        case initCandidates = "init_candidates"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        jobID = try c.decode(Int64.self, forKey: .jobID)
        config = try c.decode(JobConfig.self, forKey: .config)
        token = try c.decode(String.self, forKey: .token)
        leaseSeconds = try c.decode(Double.self, forKey: .leaseSeconds)
        leaseExpiresAt = try c.decode(Date.self, forKey: .leaseExpiresAt)
        attempt = try c.decode(Int.self, forKey: .attempt)
        checkpoint = try c.decodeIfPresent(CheckpointInfo.self, forKey: .checkpoint)
        vgg = try c.decodeIfPresent(WeightsInfo.self, forKey: .vgg)
        dataset = try c.decodeIfPresent(DatasetRef.self, forKey: .dataset)
        validation = try c.decodeIfPresent([ValidationPoint].self, forKey: .validation) ?? []
        best = try c.decodeIfPresent(CheckpointInfo.self, forKey: .best)
        initCandidates = try c.decodeIfPresent([InitCandidate].self, forKey: .initCandidates) ?? []
    }

    /// Writes `"checkpoint": null` for a fresh start (and `"vgg"` only when there is one).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(jobID, forKey: .jobID)
        try c.encode(config, forKey: .config)
        try c.encode(token, forKey: .token)
        try c.encode(leaseSeconds, forKey: .leaseSeconds)
        try c.encode(leaseExpiresAt, forKey: .leaseExpiresAt)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(checkpoint, forKey: .checkpoint)
        try c.encodeIfPresent(vgg, forKey: .vgg)
        try c.encodeIfPresent(dataset, forKey: .dataset)
        if !validation.isEmpty { try c.encode(validation, forKey: .validation) }
        try c.encodeIfPresent(best, forKey: .best)
        if !initCandidates.isEmpty { try c.encode(initCandidates, forKey: .initCandidates) }
    }
}

/// A finished job a new one may start from (`"init"`): its style image and its model, both
/// artifacts the worker may download while it holds the lease.
public struct InitCandidate: Codable, Sendable, Equatable {
    /// The most candidates a lease offers for `"init": "nearest"` (the newest per style image).
    public static let maxCount = 32

    public var jobID: Int64
    public var name: String
    public var styleSHA256: String
    /// The style size that job trained with (its Gram statistics are compared at the new job's).
    public var styleSize: Int
    public var model: WeightsInfo

    public init(jobID: Int64, name: String, styleSHA256: String, styleSize: Int, model: WeightsInfo) {
        self.jobID = jobID
        self.name = name
        self.styleSHA256 = styleSHA256
        self.styleSize = styleSize
        self.model = model
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case name
        case styleSHA256 = "style_sha256"
        case styleSize = "style_size"
        case model
    }
}

/// What a worker reports about a warm start (`"init"`): the job whose model it started from,
/// and for `nearest` the Gram distance and how many candidates it compared.
public struct WarmStartReport: Codable, Sendable, Equatable {
    public var jobID: Int64
    public var distance: Double?
    public var candidates: Int?

    public init(jobID: Int64, distance: Double? = nil, candidates: Int? = nil) {
        self.jobID = jobID
        self.distance = distance
        self.candidates = candidates
    }

    enum CodingKeys: String, CodingKey {
        case jobID = "job_id"
        case distance, candidates
    }
}

/// A dataset the coordinator serves (`serve --dataset NAME=DIR`): its manifest, an artifact
/// of `size` bytes named by `sha256`, lists `files` images (`bytes` in all) in shards that are
/// artifacts too (docs/datasets.md).
public struct DatasetRef: Codable, Sendable, Equatable {
    public var name: String
    /// The manifest's SHA-256 (the digest jobs pin).
    public var sha256: String
    /// The manifest's size in bytes.
    public var size: Int64
    public var files: Int
    public var excluded: Int
    public var bytes: Int64
    public var shards: Int

    public init(name: String, sha256: String, size: Int64, files: Int, excluded: Int, bytes: Int64, shards: Int) {
        self.name = name
        self.sha256 = sha256
        self.size = size
        self.files = files
        self.excluded = excluded
        self.bytes = bytes
        self.shards = shards
    }
}

/// A weights file the coordinator serves as an artifact.
public struct WeightsInfo: Codable, Sendable, Equatable {
    public var sha256: String
    public var size: Int64

    public init(sha256: String, size: Int64) {
        self.sha256 = sha256
        self.size = size
    }
}

// MARK: - Heartbeat

/// `POST /v1/jobs/{id}/heartbeat` body: progress and the loss points since the last one.
public struct HeartbeatRequest: Codable, Sendable, Equatable {
    public var token: String
    /// Steps completed.
    public var step: Int
    public var imagesDone: Int
    public var imagesPerS: Double?
    public var stepsTotal: Int?
    public var imagesTotal: Int?
    public var lossPoints: [LossPoint]
    /// The loss network this attempt trains with, e.g. `vgg16 sha256:397923af…` or
    /// `random-vgg seed 0` (stored with the job; `--random-vgg` is thereby on record).
    public var lossNetwork: String?
    /// Validation points not yet acknowledged (one per checkpoint).
    public var validation: [ValidationPoint]
    /// The style weight chosen for `"style_weight": "auto"`, once chosen.
    public var styleWeight: Double?
    /// The model a warm start (`"init"`) began from.
    public var warmStart: WarmStartReport?

    public init(token: String, step: Int, imagesDone: Int, imagesPerS: Double? = nil,
                stepsTotal: Int? = nil, imagesTotal: Int? = nil, lossPoints: [LossPoint] = [],
                lossNetwork: String? = nil, validation: [ValidationPoint] = [],
                styleWeight: Double? = nil, warmStart: WarmStartReport? = nil) {
        self.styleWeight = styleWeight
        self.warmStart = warmStart
        self.validation = validation
        self.lossNetwork = lossNetwork
        self.token = token
        self.step = step
        self.imagesDone = imagesDone
        self.imagesPerS = imagesPerS
        self.stepsTotal = stepsTotal
        self.imagesTotal = imagesTotal
        self.lossPoints = lossPoints
    }

    enum CodingKeys: String, CodingKey {
        case token, step
        case imagesDone = "images_done"
        case imagesPerS = "images_per_s"
        case stepsTotal = "steps_total"
        case imagesTotal = "images_total"
        case lossPoints = "loss_points"
        case lossNetwork = "loss_network"
        case validation
        case styleWeight = "style_weight"
        case warmStart = "warm_start"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        token = try c.decode(String.self, forKey: .token)
        step = try c.decode(Int.self, forKey: .step)
        imagesDone = try c.decode(Int.self, forKey: .imagesDone)
        imagesPerS = try c.decodeIfPresent(Double.self, forKey: .imagesPerS)
        stepsTotal = try c.decodeIfPresent(Int.self, forKey: .stepsTotal)
        imagesTotal = try c.decodeIfPresent(Int.self, forKey: .imagesTotal)
        lossPoints = try c.decodeIfPresent([LossPoint].self, forKey: .lossPoints) ?? []
        lossNetwork = try c.decodeIfPresent(String.self, forKey: .lossNetwork)
        validation = try c.decodeIfPresent([ValidationPoint].self, forKey: .validation) ?? []
        styleWeight = try c.decodeIfPresent(Double.self, forKey: .styleWeight)
        warmStart = try c.decodeIfPresent(WarmStartReport.self, forKey: .warmStart)
    }

    public var progress: JobProgress {
        JobProgress(step: step, imagesDone: imagesDone, imagesPerS: imagesPerS,
                    stepsTotal: stepsTotal, imagesTotal: imagesTotal)
    }
}

/// The answer to a heartbeat.
public enum HeartbeatResponse: Codable, Sendable, Equatable {
    /// Keep training; the lease now runs until `expiresAt`.
    case `continue`(expiresAt: Date)
    /// The job was cancelled: stop it and report nothing more.
    case cancel

    enum CodingKeys: String, CodingKey {
        case action
        case leaseExpiresAt = "lease_expires_at"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .action) {
        case "continue": self = .continue(expiresAt: try c.decode(Date.self, forKey: .leaseExpiresAt))
        case "cancel": self = .cancel
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .action, in: c,
                                                   debugDescription: "unknown heartbeat action \"\(other)\"")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .continue(let expiresAt):
            try c.encode("continue", forKey: .action)
            try c.encode(expiresAt, forKey: .leaseExpiresAt)
        case .cancel:
            try c.encode("cancel", forKey: .action)
        }
    }
}

// MARK: - Ending a lease

/// `POST /v1/jobs/{id}/complete` body.
public struct CompleteRequest: Codable, Sendable {
    public var token: String
    public var modelSHA256: String
    public var step: Int?
    public var imagesDone: Int?
    public var lossPoints: [LossPoint]?
    /// The last validation points (the final one at the end of training).
    public var validation: [ValidationPoint]?
    /// Set when early stopping ended the job at `step`: the model is the checkpoint of this step's.
    public var bestStep: Int?

    public init(token: String, modelSHA256: String, step: Int? = nil, imagesDone: Int? = nil,
                lossPoints: [LossPoint]? = nil, validation: [ValidationPoint]? = nil, bestStep: Int? = nil) {
        self.validation = validation
        self.bestStep = bestStep
        self.token = token
        self.modelSHA256 = modelSHA256
        self.step = step
        self.imagesDone = imagesDone
        self.lossPoints = lossPoints
    }

    enum CodingKeys: String, CodingKey {
        case token
        case modelSHA256 = "model_sha256"
        case step
        case imagesDone = "images_done"
        case lossPoints = "loss_points"
        case validation
        case bestStep = "best_step"
    }
}

/// `POST /v1/jobs/{id}/fail` body.
public struct FailRequest: Codable, Sendable {
    public var token: String
    public var reason: String
    public var retryable: Bool

    public init(token: String, reason: String, retryable: Bool) {
        self.token = token
        self.reason = reason
        self.retryable = retryable
    }
}

/// `POST /v1/jobs/{id}/release` body.
public struct ReleaseRequest: Codable, Sendable {
    public var token: String
    public var reason: String?

    public init(token: String, reason: String?) {
        self.token = token
        self.reason = reason
    }
}

/// `POST /v1/jobs` body.
public struct SubmitRequest: Codable, Sendable {
    public var jobs: [JobConfig]
    public var force: Bool?

    public init(jobs: [JobConfig], force: Bool?) {
        self.jobs = jobs
        self.force = force
    }
}

/// The answer to an artifact, checkpoint or model upload.
public struct UploadResponse: Codable, Sendable, Equatable {
    public var sha256: String
    public var size: Int64
    /// The checkpoint's step (checkpoint uploads only).
    public var step: Int?

    public init(sha256: String, size: Int64, step: Int?) {
        self.sha256 = sha256
        self.size = size
        self.step = step
    }
}

// MARK: - Headers

/// The API's own HTTP header names.
public enum APIHeader {
    /// SHA-256 (lowercase hex) of an uploaded or downloaded body.
    public static let contentSHA256 = "X-Content-SHA256"
    /// The lease token of a checkpoint or model upload.
    public static let leaseToken = "X-Lease-Token"
    /// Images seen when a checkpoint was taken.
    public static let imagesSeen = "X-Images-Seen"
    /// The step of an uploaded or downloaded preview.
    public static let step = "X-Step"
    /// An error answer's message, also in a header: a `HEAD` answer has no body to carry it.
    public static let error = "X-Error"
}
