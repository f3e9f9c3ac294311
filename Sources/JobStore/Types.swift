import CoordinatorAPI
import Foundation

// MARK: - Verb inputs and results

/// What `submitJobs` did.
public struct SubmitResult: Sendable, Equatable {
    /// Ids of the jobs created, in the order of the submitted configs.
    public var created: [Int64]
    /// Names skipped because a job of that name is queued or running (only without `force`).
    public var skipped: [String]
}

/// A job handed to a worker.
public struct Lease: Sendable, Equatable {
    /// The job as it is now (running, leased to the worker).
    public var job: Job
    /// Must accompany every report and upload for this job.
    public var token: String
    public var expiresAt: Date
    /// The checkpoint to resume from (the job's latest), nil for a fresh start.
    public var checkpoint: CheckpointRecord?
    /// The job's validation points up to the resume step, and its best checkpoint by them.
    public var validation: [ValidationPoint] = []
    public var best: CheckpointRecord?
    /// A fresh start with `"init"`: the finished models it may start from (`initCandidates`).
    public var initCandidates: [InitCandidate] = []
}

/// The answer to a heartbeat.
public enum HeartbeatResult: Sendable, Equatable {
    /// Keep training; the lease now runs until `leaseExpiresAt`.
    case `continue`(leaseExpiresAt: Date)
    /// The job was cancelled while this lease held it: stop, report nothing more.
    case cancelled
}

/// One lease that `expireLeases()` ended.
public struct ExpiredLease: Sendable, Equatable {
    public var jobID: Int64
    public var name: String
    /// The worker that held the lease.
    public var worker: String?
    /// The attempt that expired.
    public var attempt: Int
    /// `.queued` (attempt + 1) or `.failed` (that was the last attempt).
    public var newState: JobState
    public var reason: String
}

/// A job with its latest loss point, as `jobs()` lists them.
public struct JobSummary: Sendable, Equatable {
    public var job: Job
    /// The loss point with the highest step, if any.
    public var latestLoss: LossPoint?
}
