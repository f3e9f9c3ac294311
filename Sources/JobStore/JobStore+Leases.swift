import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Leasing and expiry

extension JobStore {
    /// Hands the highest-priority, oldest queued job to `worker`, after expiring overdue
    /// leases, in one transaction. The job becomes running under a new random token until
    /// `now + leaseDuration` (the store's default if nil); its progress restarts from its
    /// latest checkpoint (`resumedFromStep`, `step` and `imagesDone` are the checkpoint's, 0
    /// without one) and loss points after that step, left by an abandoned attempt, are
    /// dropped. Also upserts the worker's row (only when it gets a job). Returns nil when
    /// nothing is queued. `credentialID` is the worker token asking (nil for the admin token),
    /// recorded in the job and as the token's last use.
    public func leaseNextJob(worker: String, host: String, threads: Int,
                             leaseDuration: TimeInterval? = nil, credentialID: Int64? = nil) async throws -> Lease? {
        if let problem = JobConfig.nameProblem(worker) {
            throw StoreError.invalidConfig(reason: "worker name: \(problem)")
        }
        let duration = leaseDuration ?? self.leaseDuration
        guard duration.isFinite, duration > 0 else {
            throw StoreError.invalidConfig(reason: "lease duration must be positive, got \(duration)")
        }
        return try await write("leaseNextJob") { db, now in
            _ = try Self.expireDue(db, now: now)
            if let credentialID {
                try db.execute(sql: "UPDATE credentials SET last_used_at = ? WHERE id = ?",
                               arguments: [now.timeIntervalSince1970, credentialID])
            }
            guard var job = try Job.filter(Job.Columns.state == JobState.queued)
                .order(Job.Columns.priority.desc, Job.Columns.id).fetchOne(db) else {
                // A worker that gets nothing gets no row (and so no metrics series) either;
                // one already known is seen again.
                try db.execute(sql: "UPDATE workers SET last_seen = ? WHERE name = ?",
                               arguments: [now.timeIntervalSince1970, worker])
                return nil
            }
            try Self.touchWorker(db, name: worker, host: host, threads: threads, now: now)
            let checkpoint = try job.latestCheckpointID.flatMap { try CheckpointRecord.fetchOne(db, key: $0) }
            let resume = checkpoint?.step ?? 0
            let token = Self.newToken()
            let expiry = now.addingTimeInterval(duration)
            job.state = .running
            job.leaseOwner = worker
            job.leaseToken = token
            job.leaseCredentialID = credentialID
            job.leaseExpiresAt = expiry
            job.leaseSeconds = duration
            job.resumedFromStep = resume
            job.step = resume
            job.imagesDone = checkpoint?.imagesSeen ?? 0
            job.imagesPerS = nil
            job.startedAt = now
            job.updatedAt = now
            try job.update(db)
            try LossPointRecord.filter(LossPointRecord.Columns.jobID == job.id)
                .filter(LossPointRecord.Columns.step > resume).deleteAll(db)
            // Points past the resume step belong to steps this attempt trains again.
            try ValidationPointRecord.filter(ValidationPointRecord.Columns.jobID == job.id)
                .filter(ValidationPointRecord.Columns.step > resume).deleteAll(db)
            try db.execute(sql: "UPDATE workers SET current_job_id = ? WHERE name = ?",
                           arguments: [job.id, worker])
            let start = resume > 0 ? "resuming from the checkpoint at step \(resume)" : "starting at step 0"
            try Self.recordEvent(db, job: job.id, at: now, kind: .leased, from: .queued, to: .running,
                                 reason: "attempt \(job.attempt) of \(job.maxAttempts), \(start)",
                                 worker: worker)
            return Lease(job: job, token: token, expiresAt: expiry, checkpoint: checkpoint,
                         validation: try Self.validationPoints(db, jobID: job.id), best: try Self.bestCheckpoint(db, jobID: job.id),
                         initCandidates: checkpoint == nil ? try Self.initCandidates(db, for: job) : [])
        }
    }

    /// Ends every lease whose expiry is before now: the job goes back to the queue with
    /// attempt + 1, or fails ("lease expired on attempt N of N") if that was its last attempt.
    /// Leasing and every report also do this first, so calling it is only needed to keep the
    /// table current while no worker talks to the coordinator.
    @discardableResult
    public func expireLeases() async throws -> [ExpiredLease] {
        try await write("expireLeases") { db, now in try Self.expireDue(db, now: now) }
    }

    // MARK: - Inside a transaction

    static func expireDue(_ db: Database, now: Date) throws -> [ExpiredLease] {
        let due = try Job.filter(Job.Columns.state == JobState.running)
            .filter(Job.Columns.leaseExpiresAt < now.timeIntervalSince1970)
            .order(Job.Columns.id).fetchAll(db)
        return try due.map { job in
            let seen = try job.leaseOwner.flatMap { try WorkerRecord.fetchOne(db, key: $0) }?.lastSeen
            let ago = seen.map { "last seen \(iso($0)), \(Int((now.timeIntervalSince($0)).rounded()))s ago" }
            let requeue = "lease expired (worker \(job.leaseOwner ?? "?") \(ago ?? "never seen"))"
            let final = "lease expired on attempt \(job.attempt) of \(job.maxAttempts)"
            let ended = try endAttempt(db, job, now: now, kind: .expired,
                                       requeueReason: requeue, finalReason: final)
            return ExpiredLease(jobID: job.id, name: job.name, worker: job.leaseOwner,
                                attempt: job.attempt, newState: ended.state,
                                reason: ended.state == .failed ? final : requeue)
        }
    }

    /// Ends a running job's attempt as a failure that may be retried: queued with attempt + 1,
    /// or failed with `finalReason` when it was the last attempt.
    static func endAttempt(_ db: Database, _ job: Job, now: Date, kind: EventKind,
                           requeueReason: String, finalReason: String) throws -> Job {
        var job = job
        let worker = job.leaseOwner
        if job.attempt >= job.maxAttempts {
            job.state = .failed
            job.failureReason = finalReason
            job.finishedAt = now
            job.leaseExpiresAt = nil  // token and owner stay: the last holder gets an exact refusal
        } else {
            job.state = .queued
            job.attempt += 1
            job.clearLease()
        }
        job.imagesPerS = nil
        job.updatedAt = now
        try job.update(db)
        try detachWorker(db, jobID: job.id)
        try recordEvent(db, job: job.id, at: now, kind: kind, from: .running, to: job.state,
                        reason: job.state == .failed ? finalReason : requeueReason, worker: worker)
        return job
    }

    /// Checks that `token` holds the running job `jobID`, after expiring overdue leases (so a
    /// report arriving after its lease expired is refused and the job is requeued). Returns
    /// the refusal as a failure, so the caller can commit the expiry and then throw it.
    static func fence(_ db: Database, jobID: Int64, token: String, now: Date) throws -> Result<Job, StoreError> {
        guard let before = try Job.fetchOne(db, key: jobID) else { return .failure(.notFound(jobID: jobID)) }
        _ = try expireDue(db, now: now)
        let job = try fetchJob(db, jobID)
        if before.state == .running, constantTimeEqual(before.leaseToken, token), job.state != .running {
            let at = before.leaseExpiresAt.map(iso) ?? "?"
            return .failure(.staleLease(jobID: jobID, reason:
                "lease expired at \(at); job is now \(job.state.rawValue) (attempt \(job.attempt))"))
        }
        guard constantTimeEqual(job.leaseToken, token) else {
            let holder = job.state == .running ? ", leased to \(job.leaseOwner ?? "?")" : ""
            return .failure(.staleLease(jobID: jobID, reason:
                "token does not hold the job's current lease (job is \(job.state.rawValue)\(holder))"))
        }
        guard job.state == .running else {
            return .failure(.staleLease(jobID: jobID, reason: "job is \(job.state.rawValue), no longer running"))
        }
        return .success(job)
    }

    static func iso(_ date: Date) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: date)
    }
}
