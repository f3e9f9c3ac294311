import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Reports under a lease (fenced)

// Every verb here carries the lease token. A token that no longer holds the running job —
// its lease expired, the job was re-leased, released, finished or cancelled — is refused
// with `StoreError.staleLease` and changes nothing, so a worker presumed dead can never
// overwrite its successor's work.

extension JobStore {
    /// The longest `lossNetwork` text a heartbeat may record (longer is cut).
    public static let maxLossNetworkText = 200

    /// Records progress and loss points, and extends the lease by the duration it was granted
    /// with. Loss points replace earlier rows of the same step. Progress older than what is
    /// recorded (a late, out-of-order heartbeat) is ignored; its loss points still count.
    /// `lossNetwork`, when given, replaces the job's `lossNetwork` (one line, at most
    /// `maxLossNetworkText` bytes, control characters escaped). `styleWeight` (an auto style
    /// weight) and `warmStart` are recorded with the job (`applyTrainingChoices`).
    /// - Returns: `.continue(leaseExpiresAt:)`, or `.cancelled` (recording nothing) if the job
    ///   was cancelled while this token held it.
    /// - Throws: `staleLease`, `notFound`, `invalidReport` (negative counts, non-finite losses).
    public func heartbeat(jobID: Int64, token: String, progress: JobProgress,
                          lossPoints: [LossPoint] = [], lossNetwork: String? = nil,
                          validation: [ValidationPoint] = [], styleWeight: Double? = nil,
                          warmStart: WarmStartReport? = nil) async throws -> HeartbeatResult {
        try Self.check(progress, jobID: jobID)
        try Self.check(lossPoints, jobID: jobID)
        try Self.check(validation, jobID: jobID)
        let defaultDuration = leaseDuration
        return try await writeCommitting("heartbeat") { db, now in
            if let job = try Job.fetchOne(db, key: jobID), job.state == .cancelled, constantTimeEqual(job.leaseToken, token) {
                return .success(.cancelled)
            }
            var job: Job
            switch try Self.fence(db, jobID: jobID, token: token, now: now) {
            case .success(let fenced): job = fenced
            case .failure(let refusal): return .failure(refusal)
            }
            if let refusal = Self.pastTheEnd([progress.step] + lossPoints.map(\.step) + validation.map(\.step), job: job,
                                             reportedTotal: progress.stepsTotal) {
                return .failure(refusal)
            }
            if let refusal = try Self.applyTrainingChoices(db, styleWeight: styleWeight, warmStart: warmStart, to: &job) {
                return .failure(refusal)
            }
            Self.apply(progress, to: &job)
            if let lossNetwork { job.lossNetwork = Sanitize.oneLine(lossNetwork, limit: Self.maxLossNetworkText) }
            let expiry = now.addingTimeInterval(job.leaseSeconds ?? defaultDuration)
            job.leaseExpiresAt = expiry
            job.updatedAt = now
            try job.update(db)
            try Self.insert(lossPoints, jobID: jobID, db)
            try Self.insert(validation, jobID: jobID, db)
            try db.execute(sql: "UPDATE workers SET last_seen = ? WHERE name = ?",
                           arguments: [now.timeIntervalSince1970, job.leaseOwner])
            return .success(.continue(leaseExpiresAt: expiry))
        }
    }

    /// Records an uploaded checkpoint (replacing one of the same step) and makes it the job's
    /// latest unless a later step is already recorded.
    /// - Throws: `staleLease`, `notFound`, `invalidReport` (bad digest, negative counts, or a
    ///   step before the one this attempt resumed from).
    @discardableResult
    public func recordCheckpoint(jobID: Int64, token: String, step: Int, imagesSeen: Int,
                                 sha256: String, size: Int64, path: String) async throws -> CheckpointRecord {
        var problems: [String] = []
        if !(0...JobLimits.maxCount).contains(step) { problems.append("step must be from 0 to \(JobLimits.maxCount), got \(step)") }
        if !(0...JobLimits.maxCount).contains(imagesSeen) {
            problems.append("images_seen must be from 0 to \(JobLimits.maxCount), got \(imagesSeen)")
        }
        if !JobConfig.isSHA256(sha256) { problems.append("sha256 is not 64 lowercase hex digits") }
        if size < 0 { problems.append("size must be >= 0, got \(size)") }
        if path.isEmpty { problems.append("path is empty") }
        if !problems.isEmpty {
            throw StoreError.invalidReport(jobID: jobID, reason: problems.joined(separator: "; "))
        }
        return try await writeCommitting("recordCheckpoint") { db, now in
            var job: Job
            switch try Self.fence(db, jobID: jobID, token: token, now: now) {
            case .success(let fenced): job = fenced
            case .failure(let refusal): return .failure(refusal)
            }
            if step < job.resumedFromStep {
                return .failure(.invalidReport(jobID: jobID, reason:
                    "checkpoint step \(step) is before step \(job.resumedFromStep) this attempt resumed from"))
            }
            // A step past the job's end would become the latest checkpoint for good, and every
            // later attempt would resume from it (issue 11, finding 4).
            if let total = job.config.plannedSteps ?? job.stepsTotal, step > total {
                return .failure(.invalidReport(jobID: jobID, reason:
                    "checkpoint step \(step) is past the job's last step \(total)"))
            }
            var draft = NewCheckpoint(jobID: jobID, step: step, imagesSeen: imagesSeen,
                                      sha256: sha256, size: size, path: path, createdAt: now)
            let checkpoint = try draft.upsertAndFetch(db, as: CheckpointRecord.self,
                                                      onConflict: ["job_id", "step"])
            let latestStep = try job.latestCheckpointID
                .flatMap { try CheckpointRecord.fetchOne(db, key: $0) }?.step ?? -1
            if step >= latestStep { job.latestCheckpointID = checkpoint.id }
            job.updatedAt = now
            try job.update(db)
            try Self.recordEvent(db, job: jobID, at: now, kind: .checkpointed, from: .running, to: .running,
                                 reason: "checkpoint at step \(step), \(imagesSeen) images, sha256 \(sha256.prefix(12))",
                                 worker: job.leaseOwner)
            return .success(checkpoint)
        }
    }
}
