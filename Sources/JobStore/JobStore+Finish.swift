import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Ending a lease (fenced)

extension JobStore {
    /// Marks the job succeeded with its final model, optionally recording the last progress
    /// and loss points in the same transaction. Repeating the call with the same token and
    /// model (a retry after a lost response) returns the job unchanged.
    /// - Throws: `staleLease`, `notFound`, `invalidReport`.
    @discardableResult
    public func completeJob(jobID: Int64, token: String, modelSHA256: String, modelSize: Int64,
                            finalProgress: JobProgress? = nil, lossPoints: [LossPoint] = [],
                            validation: [ValidationPoint] = [], bestStep: Int? = nil) async throws -> Job {
        guard JobConfig.isSHA256(modelSHA256), modelSize >= 0 else {
            throw StoreError.invalidReport(jobID: jobID, reason:
                "model digest must be 64 lowercase hex digits and its size >= 0")
        }
        if let finalProgress { try Self.check(finalProgress, jobID: jobID) }
        try Self.check(lossPoints, jobID: jobID)
        try Self.check(validation, jobID: jobID)
        if let bestStep, !(0...JobLimits.maxCount).contains(bestStep) {
            throw StoreError.invalidReport(jobID: jobID, reason: "best_step must be from 0 to \(JobLimits.maxCount), got \(bestStep)")
        }
        return try await writeCommitting("completeJob") { db, now in
            if let done = try Job.fetchOne(db, key: jobID), done.state == .succeeded,
               constantTimeEqual(done.leaseToken, token), done.modelSHA256 == modelSHA256 {
                return .success(done)
            }
            var job: Job
            switch try Self.fence(db, jobID: jobID, token: token, now: now) {
            case .success(let fenced): job = fenced
            case .failure(let refusal): return .failure(refusal)
            }
            if let refusal = Self.pastTheEnd((finalProgress.map { [$0.step] } ?? []) + lossPoints.map(\.step)
                                                + validation.map(\.step), job: job,
                                             reportedTotal: finalProgress?.stepsTotal) {
                return .failure(refusal)
            }
            if let finalProgress { Self.apply(finalProgress, to: &job) }
            if let bestStep {
                guard bestStep <= job.step else {
                    return .failure(.invalidReport(jobID: jobID, reason: "best_step \(bestStep) is after the last step \(job.step)"))
                }
                job.stopReason = "early-stopped at step \(job.step) (best step \(bestStep))"
            }
            job.state = .succeeded
            job.modelSHA256 = modelSHA256
            job.modelSize = modelSize
            job.leaseExpiresAt = nil
            job.finishedAt = now
            job.updatedAt = now
            try job.update(db)
            try Self.insert(lossPoints, jobID: jobID, db)
            try Self.insert(validation, jobID: jobID, db)
            try Self.detachWorker(db, jobID: jobID)
            try Self.recordEvent(db, job: jobID, at: now, kind: .completed, from: .running, to: .succeeded,
                                 reason: (job.stopReason.map { "\($0), " } ?? "") + "model sha256 \(modelSHA256.prefix(12)), \(modelSize) bytes",
                                 worker: job.leaseOwner)
            return .success(job)
        }
    }

    /// Reports that training failed. Retryable (e.g. the worker's disk filled up): like a lease
    /// expiry — queued with attempt + 1, or failed with "REASON (attempt N of N)" at the last
    /// attempt. Not retryable (e.g. the loss became NaN): failed at once with `reason`.
    /// - Throws: `staleLease`, `notFound`.
    @discardableResult
    public func failJob(jobID: Int64, token: String, reason: String, retryable: Bool) async throws -> Job {
        let reason = Sanitize.oneLine(reason)
        return try await writeCommitting("failJob") { db, now in
            var job: Job
            switch try Self.fence(db, jobID: jobID, token: token, now: now) {
            case .success(let fenced): job = fenced
            case .failure(let refusal): return .failure(refusal)
            }
            if retryable {
                let final = "\(reason) (attempt \(job.attempt) of \(job.maxAttempts))"
                return .success(try Self.endAttempt(db, job, now: now, kind: .failed,
                                                    requeueReason: final, finalReason: final))
            }
            job.state = .failed
            job.failureReason = reason
            job.leaseExpiresAt = nil
            job.imagesPerS = nil
            job.finishedAt = now
            job.updatedAt = now
            try job.update(db)
            try Self.detachWorker(db, jobID: jobID)
            try Self.recordEvent(db, job: jobID, at: now, kind: .failed, from: .running, to: .failed,
                                 reason: reason, worker: job.leaseOwner)
            return .success(job)
        }
    }

    /// Hands the job back (a worker stopping gracefully after uploading a checkpoint): queued
    /// again with the same attempt, since this is not a failure; the lease is cleared.
    /// - Throws: `staleLease`, `notFound`.
    @discardableResult
    public func releaseJob(jobID: Int64, token: String, reason: String = "released by worker") async throws -> Job {
        let reason = Sanitize.oneLine(reason)
        return try await writeCommitting("releaseJob") { db, now in
            var job: Job
            switch try Self.fence(db, jobID: jobID, token: token, now: now) {
            case .success(let fenced): job = fenced
            case .failure(let refusal): return .failure(refusal)
            }
            let worker = job.leaseOwner
            job.state = .queued
            job.clearLease()
            job.imagesPerS = nil
            job.updatedAt = now
            try job.update(db)
            try Self.detachWorker(db, jobID: jobID)
            try Self.recordEvent(db, job: jobID, at: now, kind: .released, from: .running, to: .queued,
                                 reason: reason, worker: worker)
            return .success(job)
        }
    }

    // MARK: - Report helpers

    static func check(_ progress: JobProgress, jobID: Int64) throws {
        var problems: [String] = []
        let limit = JobLimits.maxCount
        if !(0...limit).contains(progress.step) { problems.append("step must be from 0 to \(limit), got \(progress.step)") }
        if !(0...limit).contains(progress.imagesDone) {
            problems.append("images_done must be from 0 to \(limit), got \(progress.imagesDone)")
        }
        if let speed = progress.imagesPerS, !(speed.isFinite && speed >= 0) {
            problems.append("images_per_s must be a finite number >= 0, got \(speed)")
        }
        if let total = progress.stepsTotal, !(1...limit).contains(total) {
            problems.append("steps_total must be from 1 to \(limit), got \(total)")
        }
        if let total = progress.imagesTotal, !(1...limit).contains(total) {
            problems.append("images_total must be from 1 to \(limit), got \(total)")
        }
        if !problems.isEmpty {
            throw StoreError.invalidReport(jobID: jobID, reason: problems.joined(separator: "; "))
        }
    }

    static func check(_ points: [LossPoint], jobID: Int64) throws {
        for p in points {
            let range = 0...JobLimits.maxCount
            guard range.contains(p.step), range.contains(p.images), p.content.isFinite, p.style.isFinite, p.total.isFinite else {
                throw StoreError.invalidReport(jobID: jobID, reason:
                    "loss point at step \(p.step): step and images must be from 0 to \(JobLimits.maxCount) and losses finite "
                    + "(content \(p.content), style \(p.style), total \(p.total))")
            }
        }
    }

    /// A refusal if `steps` (a report's step and its loss points' steps) go past the job's last
    /// step: the config's `steps`, else the total the worker reported (now or before). Nothing
    /// past the end can be recorded, so no later attempt resumes or draws from there.
    static func pastTheEnd(_ steps: [Int], job: Job, reportedTotal: Int? = nil) -> StoreError? {
        guard let last = job.config.plannedSteps ?? reportedTotal ?? job.stepsTotal,
              let beyond = steps.first(where: { $0 > last }) else { return nil }
        return .invalidReport(jobID: job.id, reason: "step \(beyond) is past the job's last step \(last)")
    }

    /// Applies reported progress unless it is older than what is recorded.
    static func apply(_ progress: JobProgress, to job: inout Job) {
        guard progress.step >= job.step else { return }
        job.step = progress.step
        job.imagesDone = progress.imagesDone
        job.imagesPerS = progress.imagesPerS ?? job.imagesPerS
        job.stepsTotal = progress.stepsTotal ?? job.stepsTotal
        job.imagesTotal = progress.imagesTotal ?? job.imagesTotal
    }

    /// Upserts loss points: a step already recorded is replaced.
    static func insert(_ points: [LossPoint], jobID: Int64, _ db: Database) throws {
        for p in points { try LossPointRecord(jobID: jobID, p).insert(db) }
    }
}
