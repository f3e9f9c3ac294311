import Foundation

// MARK: - Coding

/// The JSON coders of the API: snake_case keys are spelled out by each type's `CodingKeys`;
/// times are seconds since 1970.
public enum APICoding {
    /// Sorted keys, times as seconds since 1970.
    public static func encoder(pretty: Bool = false) -> JSONEncoder {
        let e = JSONEncoder()
        e.dateEncodingStrategy = .secondsSince1970
        e.outputFormatting = pretty ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    /// Times as seconds since 1970.
    public static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.dateDecodingStrategy = .secondsSince1970
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }
}

// MARK: - JobStatus

/// One job as `GET /v1/jobs` and `orchestrator status --json` show it. Every key is always
/// present; unknown values are `null`.
public struct JobStatus: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var state: JobState
    public var attempt: Int
    public var maxAttempts: Int
    /// Steps done.
    public var step: Int
    public var stepsTotal: Int?
    public var imagesDone: Int
    public var imagesTotal: Int?
    /// The worker holding (or last holding) the lease.
    public var worker: String?
    /// The step the current attempt started from (0 for a fresh start).
    public var resumedFromStep: Int
    /// The latest loss point's losses.
    public var content: Double?
    public var style: Double?
    public var total: Double?
    public var imagesPerS: Double?
    /// Seconds left at the current speed, when known.
    public var etaS: Double?
    /// Up to 40 total losses sampled evenly over the curve, for sparklines.
    public var recentTotals: [Double]
    public var failureReason: String?
    public var modelSHA256: String?
    /// The step of the latest preview (`GET /v1/jobs/{id}/preview`), nil when there is none.
    public var previewStep: Int?
    public var createdAt: Date
    public var updatedAt: Date
    /// The dataset the job trains on and its manifest's digest (nil: the workers' own folders).
    public var dataset: String?
    public var datasetSHA256: String?
    /// The loss network the latest attempt reported (`HeartbeatRequest.lossNetwork`).
    public var lossNetwork: String?
    /// A sweep's style and this job's swept values (`JobConfig.group`, `params`).
    public var group: String?
    public var params: [String: Double]?
    /// Why a succeeded job stopped before its budget (`early-stopped at step N`).
    public var stopReason: String?
    /// `"style_weight": "auto"`: the ratio asked for, and the weight the worker chose (nil until
    /// it has), which training uses instead of the config's `style_weight`.
    public var styleRatio: Double?
    public var chosenStyleWeight: Double?
    /// The job's `"init"` (`nearest` or `job:ID`), the job whose model it started from, and
    /// how that was chosen (`job 3 (wave): Gram distance 0.214, nearest of 4`).
    public var initFrom: String?
    public var warmStartJob: Int64?
    public var warmStart: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case id, name, state, attempt
        case maxAttempts = "max_attempts"
        case step
        case stepsTotal = "steps_total"
        case imagesDone = "images_done"
        case imagesTotal = "images_total"
        case worker
        case resumedFromStep = "resumed_from_step"
        case content, style, total
        case imagesPerS = "images_per_s"
        case etaS = "eta_s"
        case recentTotals = "recent_totals"
        case failureReason = "failure_reason"
        case modelSHA256 = "model_sha256"
        case previewStep = "preview_step"
        case createdAt = "created_at"
        case updatedAt = "updated_at"
        case dataset
        case datasetSHA256 = "dataset_sha256"
        case lossNetwork = "loss_network"
        case group, params
        case stopReason = "stop_reason"
        case styleRatio = "style_ratio"
        case chosenStyleWeight = "chosen_style_weight"
        case initFrom = "init"
        case warmStartJob = "warm_start_job"
        case warmStart = "warm_start"
    }

    /// Writes every key, `null` for unknown values (scripts may index any key).
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(id, forKey: .id)
        try c.encode(name, forKey: .name)
        try c.encode(state, forKey: .state)
        try c.encode(attempt, forKey: .attempt)
        try c.encode(maxAttempts, forKey: .maxAttempts)
        try c.encode(step, forKey: .step)
        try c.encode(stepsTotal, forKey: .stepsTotal)
        try c.encode(imagesDone, forKey: .imagesDone)
        try c.encode(imagesTotal, forKey: .imagesTotal)
        try c.encode(worker, forKey: .worker)
        try c.encode(resumedFromStep, forKey: .resumedFromStep)
        try c.encode(content, forKey: .content)
        try c.encode(style, forKey: .style)
        try c.encode(total, forKey: .total)
        try c.encode(imagesPerS, forKey: .imagesPerS)
        try c.encode(etaS, forKey: .etaS)
        try c.encode(recentTotals, forKey: .recentTotals)
        try c.encode(failureReason, forKey: .failureReason)
        try c.encode(modelSHA256, forKey: .modelSHA256)
        try c.encode(previewStep, forKey: .previewStep)
        try c.encode(createdAt, forKey: .createdAt)
        try c.encode(updatedAt, forKey: .updatedAt)
        try c.encode(dataset, forKey: .dataset)
        try c.encode(datasetSHA256, forKey: .datasetSHA256)
        try c.encode(lossNetwork, forKey: .lossNetwork)
        try c.encode(group, forKey: .group)
        try c.encode(params, forKey: .params)
        try c.encode(stopReason, forKey: .stopReason)
        try c.encode(styleRatio, forKey: .styleRatio)
        try c.encode(chosenStyleWeight, forKey: .chosenStyleWeight)
        try c.encode(initFrom, forKey: .initFrom)
        try c.encode(warmStartJob, forKey: .warmStartJob)
        try c.encode(warmStart, forKey: .warmStart)
    }

    public init(id: Int64, name: String, state: JobState, attempt: Int, maxAttempts: Int, step: Int,
                stepsTotal: Int?, imagesDone: Int, imagesTotal: Int?, worker: String?, resumedFromStep: Int,
                content: Double?, style: Double?, total: Double?, imagesPerS: Double?, etaS: Double?,
                recentTotals: [Double], failureReason: String?, modelSHA256: String?, previewStep: Int?,
                createdAt: Date, updatedAt: Date, dataset: String? = nil, datasetSHA256: String? = nil,
                lossNetwork: String? = nil, group: String? = nil, params: [String: Double]? = nil,
                stopReason: String? = nil, styleRatio: Double? = nil, chosenStyleWeight: Double? = nil,
                initFrom: String? = nil, warmStartJob: Int64? = nil, warmStart: String? = nil) {
        self.styleRatio = styleRatio
        self.chosenStyleWeight = chosenStyleWeight
        self.initFrom = initFrom
        self.warmStartJob = warmStartJob
        self.warmStart = warmStart
        self.group = group
        self.params = params
        self.stopReason = stopReason
        self.dataset = dataset
        self.datasetSHA256 = datasetSHA256
        self.lossNetwork = lossNetwork
        self.id = id
        self.name = name
        self.state = state
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.step = step
        self.stepsTotal = stepsTotal
        self.imagesDone = imagesDone
        self.imagesTotal = imagesTotal
        self.worker = worker
        self.resumedFromStep = resumedFromStep
        self.content = content
        self.style = style
        self.total = total
        self.imagesPerS = imagesPerS
        self.etaS = etaS
        self.recentTotals = recentTotals
        self.failureReason = failureReason
        self.modelSHA256 = modelSHA256
        self.previewStep = previewStep
        self.createdAt = createdAt
        self.updatedAt = updatedAt
    }
}

extension JobStatus {
    /// What the job chose for itself, one line each (status and the dashboard): an auto style
    /// weight (`style_weight auto (ratio 1): 12345`, or `…: chosen at the first step`) and a
    /// warm start (`init nearest: job 3 (wave): Gram distance 0.214, nearest of 4`).
    public var choices: [String] {
        var out: [String] = []
        if let ratio = styleRatio {
            out.append("style_weight auto (ratio \(String(format: "%g", ratio))): "
                       + (chosenStyleWeight.map { String(format: "%.6g", $0) } ?? "chosen at the first step"))
        }
        if let source = initFrom {
            out.append("init \(source): " + (warmStart ?? (state == .queued ? "chosen when leased" : "fresh initialisation")))
        }
        return out
    }
}

// MARK: - Job lists and details

/// `GET /v1/jobs`: every job and the totals per state.
public struct JobsResponse: Codable, Sendable, Equatable {
    public var jobs: [JobStatus]
    public var totals: Totals

    public init(jobs: [JobStatus], totals: Totals) {
        self.jobs = jobs
        self.totals = totals
    }

    /// Number of jobs per state, and the summed speed of running jobs.
    public struct Totals: Codable, Sendable, Equatable {
        public var queued: Int
        public var running: Int
        public var succeeded: Int
        public var failed: Int
        public var cancelled: Int
        public var imagesPerS: Double

        public init(queued: Int, running: Int, succeeded: Int, failed: Int, cancelled: Int, imagesPerS: Double) {
            self.queued = queued
            self.running = running
            self.succeeded = succeeded
            self.failed = failed
            self.cancelled = cancelled
            self.imagesPerS = imagesPerS
        }

        enum CodingKeys: String, CodingKey {
            case queued, running, succeeded, failed, cancelled
            case imagesPerS = "images_per_s"
        }
    }
}

/// A stored checkpoint as the API shows it (and as a lease hands it to a worker).
public struct CheckpointInfo: Codable, Sendable, Equatable {
    /// Steps completed when it was taken; a resumed attempt's first step is `step + 1`.
    public var step: Int
    public var imagesSeen: Int
    /// Fetch it with `GET /v1/artifacts/{sha256}`.
    public var sha256: String
    public var size: Int64

    public init(step: Int, imagesSeen: Int, sha256: String, size: Int64) {
        self.step = step
        self.imagesSeen = imagesSeen
        self.sha256 = sha256
        self.size = size
    }

    enum CodingKeys: String, CodingKey {
        case step
        case imagesSeen = "images_seen"
        case sha256, size
    }
}

/// One entry of a job's audit trail.
public struct EventInfo: Codable, Sendable, Equatable {
    public var at: Date
    public var kind: String
    public var fromState: JobState?
    public var toState: JobState?
    public var reason: String?
    public var worker: String?

    public init(at: Date, kind: String, fromState: JobState?, toState: JobState?, reason: String?, worker: String?) {
        self.at = at
        self.kind = kind
        self.fromState = fromState
        self.toState = toState
        self.reason = reason
        self.worker = worker
    }

    enum CodingKeys: String, CodingKey {
        case at, kind
        case fromState = "from_state"
        case toState = "to_state"
        case reason, worker
    }
}

/// `GET /v1/jobs/{id}`.
public struct JobDetail: Codable, Sendable, Equatable {
    public var job: JobStatus
    public var config: JobConfig
    public var checkpoints: [CheckpointInfo]
    public var events: [EventInfo]
    /// The job's validation points, by step.
    public var validation: [ValidationPoint]

    public init(job: JobStatus, config: JobConfig, checkpoints: [CheckpointInfo], events: [EventInfo],
                validation: [ValidationPoint] = []) {
        self.validation = validation
        self.job = job
        self.config = config
        self.checkpoints = checkpoints
        self.events = events
    }
}

/// `POST /v1/jobs`'s answer: ids created, names skipped because queued or running.
public struct SubmitResponse: Codable, Sendable, Equatable {
    public var created: [Int64]
    public var skipped: [String]

    public init(created: [Int64], skipped: [String]) {
        self.created = created
        self.skipped = skipped
    }
}

// MARK: - Small answers

/// `GET /healthz`.
public struct Health: Codable, Sendable, Equatable {
    public var ok: Bool
    public var version: Int

    public init(ok: Bool, version: Int) {
        self.ok = ok
        self.version = version
    }
}

/// `GET /v1/jobs/{id}/losses`.
public struct LossesResponse: Codable, Sendable, Equatable {
    public var points: [LossPoint]

    public init(points: [LossPoint]) { self.points = points }
}

/// `POST /v1/jobs/cancel-all`.
public struct CancelAllResponse: Codable, Sendable, Equatable {
    public var cancelled: [Int64]

    public init(cancelled: [Int64]) { self.cancelled = cancelled }
}

// MARK: - Loss CSV

/// The loss curve as CSV: header `step,images,content,style,total`, one row per point.
public enum LossCSV {
    public static let header = "step,images,content,style,total"

    /// `points` as CSV text ending with a newline.
    public static func render(_ points: [LossPoint]) -> String {
        var out = header + "\n"
        for p in points {
            out += "\(p.step),\(p.images),\(p.content),\(p.style),\(p.total)\n"
        }
        return out
    }
}

// MARK: - Stylize

/// One style's output in `POST /v1/stylize`: its PNG, or why its model could not be used.
public struct StylizeResult: Codable, Sendable, Equatable {
    public var name: String
    public var jobID: Int64
    public var pngBase64: String?
    public var error: String?

    public init(name: String, jobID: Int64, pngBase64: String? = nil, error: String? = nil) {
        self.name = name
        self.jobID = jobID
        self.pngBase64 = pngBase64
        self.error = error
    }

    enum CodingKeys: String, CodingKey {
        case name
        case jobID = "job_id"
        case pngBase64 = "png_base64"
        case error
    }
}

/// `POST /v1/stylize` without `?model=`: the photo as the models saw it, and every style's output.
public struct StylizeResponse: Codable, Sendable, Equatable {
    public var contentPNGBase64: String
    public var results: [StylizeResult]

    public init(contentPNGBase64: String, results: [StylizeResult]) {
        self.contentPNGBase64 = contentPNGBase64
        self.results = results
    }

    enum CodingKeys: String, CodingKey {
        case contentPNGBase64 = "content_png_base64"
        case results
    }
}

// MARK: - Promote

/// `POST /v1/jobs/{id}/promote`: continue a succeeded job's final weights and Adam state to a
/// longer budget (`steps` or `epochs`, one of them) as a new job named `name` (default
/// `<name>-promoted`). Answers the new job's `JobStatus`.
public struct PromoteRequest: Codable, Sendable, Equatable {
    public var name: String?
    public var steps: Int?
    public var epochs: Int?

    public init(name: String? = nil, steps: Int? = nil, epochs: Int? = nil) {
        self.name = name
        self.steps = steps
        self.epochs = epochs
    }
}
