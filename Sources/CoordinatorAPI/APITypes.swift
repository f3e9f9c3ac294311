import Foundation
import JobStore

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
    }

    /// The status of `job`, with its latest loss point and its loss curve's totals.
    init(job: Job, latest: LossPoint?, totals: [Double]) {
        id = job.id
        name = job.name
        state = job.state
        attempt = job.attempt
        maxAttempts = job.maxAttempts
        step = job.step
        stepsTotal = job.stepsTotal
        imagesDone = job.imagesDone
        imagesTotal = job.imagesTotal
        worker = job.leaseOwner
        resumedFromStep = job.resumedFromStep
        content = latest?.content
        style = latest?.style
        total = latest?.total
        imagesPerS = job.state == .running ? job.imagesPerS : nil
        if job.state == .running, let ips = job.imagesPerS, ips > 0, let all = job.imagesTotal {
            etaS = Double(max(0, all - job.imagesDone)) / ips
        } else {
            etaS = nil
        }
        recentTotals = Self.sample(totals, count: 40)
        failureReason = job.failureReason
        modelSHA256 = job.modelSHA256
        previewStep = job.previewSHA256 == nil ? nil : job.previewStep
        createdAt = job.createdAt
        updatedAt = job.updatedAt
    }

    /// At most `count` values taken at evenly spaced indices, first and last included.
    static func sample(_ values: [Double], count: Int) -> [Double] {
        guard values.count > count, count >= 2 else { return values }
        return (0..<count).map { i in values[i * (values.count - 1) / (count - 1)] }
    }
}

// MARK: - Job lists and details

/// `GET /v1/jobs`: every job and the totals per state.
public struct JobsResponse: Codable, Sendable, Equatable {
    public var jobs: [JobStatus]
    public var totals: Totals

    /// Number of jobs per state, and the summed speed of running jobs.
    public struct Totals: Codable, Sendable, Equatable {
        public var queued: Int
        public var running: Int
        public var succeeded: Int
        public var failed: Int
        public var cancelled: Int
        public var imagesPerS: Double

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

    init(_ record: CheckpointRecord) {
        self.init(step: record.step, imagesSeen: record.imagesSeen, sha256: record.sha256, size: record.size)
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

    init(_ event: JobEvent) {
        at = event.at
        kind = event.kind.rawValue
        fromState = event.fromState
        toState = event.toState
        reason = event.reason
        worker = event.worker
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
}

/// `POST /v1/jobs`'s answer: ids created, names skipped because queued or running.
public struct SubmitResponse: Codable, Sendable, Equatable {
    public var created: [Int64]
    public var skipped: [String]
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
