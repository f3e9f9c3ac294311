import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Submitting, cancelling, retrying

extension JobStore {
    /// Creates one queued job per config, all in one transaction. Every config is validated
    /// first (nothing is created if any is invalid: `StoreError.invalidConfig` lists every
    /// problem as `configs[i]: key: message`). Without `force`, a config whose name matches a
    /// queued or running job — including one created earlier in the same call — is skipped
    /// and reported instead (whatever its dataset: a queued job keeps the data it pinned).
    ///
    /// Datasets are resolved in the same transaction (`resolveDataset`): when the coordinator
    /// serves datasets, each stored config names one (the default when it names none) and pins
    /// a manifest digest (its current one, or a registered version the config gives); when it
    /// serves none, a config that names one is refused.
    public func submitJobs(_ configs: [JobConfig], force: Bool = false) async throws -> SubmitResult {
        let problems = configs.enumerated().flatMap { i, config in
            config.problems().map { "configs[\(i)] (\(config.name)): \($0)" }
        }
        if !problems.isEmpty {
            throw StoreError.invalidConfig(reason: problems.joined(separator: "; "))
        }
        return try await write("submitJobs") { db, now in
            let served = try Self.servedDatasets(db)
            var resolved: [JobConfig] = []
            var problems: [String] = []
            for (i, config) in configs.enumerated() {
                var config = config
                if let problem = try Self.resolveDataset(db, &config, served: served) {
                    problems.append("configs[\(i)] (\(config.name)): \(problem)")
                }
                if let problem = try Self.initProblem(db, config) {
                    problems.append("configs[\(i)] (\(config.name)): \(problem)")
                }
                resolved.append(config)
            }
            if !problems.isEmpty { throw StoreError.invalidConfig(reason: problems.joined(separator: "; ")) }
            var result = SubmitResult(created: [], skipped: [])
            for config in resolved {
                let live = try Job.filter(Job.Columns.name == config.name)
                    .filter([JobState.queued, JobState.running].contains(Job.Columns.state))
                    .order(Job.Columns.id).fetchOne(db)
                if live != nil && !force {
                    result.skipped.append(config.name)
                    continue
                }
                let job = try NewJob(config: config, now: now).insertAndFetch(db, as: Job.self)
                let reason = live.map { "submitted with force while job \($0.id) is \($0.state.rawValue)" }
                try Self.recordEvent(db, job: job.id, at: now, kind: .submitted, from: nil, to: .queued,
                                     reason: reason ?? "submitted", worker: nil)
                result.created.append(job.id)
            }
            return result
        }
    }

    /// Cancels a queued or running job. A running job keeps its lease token, so its worker's
    /// next heartbeat answers `.cancelled`; any other report under it is refused.
    /// - Throws: `notFound`, or `invalidTransition` from any other state (nothing changes).
    @discardableResult
    public func cancelJob(id: Int64, reason: String = "cancelled by request") async throws -> Job {
        try await write("cancelJob") { db, now in
            let job = try Self.fetchJob(db, id)
            guard job.state == .queued || job.state == .running else {
                throw StoreError.invalidTransition(jobID: id, from: job.state, to: .cancelled)
            }
            return try Self.cancel(db, job, reason: reason, now: now)
        }
    }

    /// Cancels every queued and running job in one transaction; returns their ids.
    @discardableResult
    public func cancelAll(reason: String = "cancelled by request (all)") async throws -> [Int64] {
        try await write("cancelAll") { db, now in
            let live = try Job.filter([JobState.queued, JobState.running].contains(Job.Columns.state))
                .order(Job.Columns.id).fetchAll(db)
            return try live.map { try Self.cancel(db, $0, reason: reason, now: now).id }
        }
    }

    /// Puts a failed or cancelled job back in the queue: attempt 1, failure reason cleared,
    /// lease cleared. Its checkpoints are kept, so the next lease resumes from the latest.
    /// - Throws: `notFound`, or `invalidTransition` from any other state, or
    ///   `datasetVersionGone` when the dataset version the job pinned is no longer kept (a
    ///   cancelled job's pin does not keep it); nothing changes.
    @discardableResult
    public func retryJob(id: Int64, reason: String = "retried by request") async throws -> Job {
        try await write("retryJob") { db, now in
            var job = try Self.fetchJob(db, id)
            guard job.state == .failed || job.state == .cancelled else {
                throw StoreError.invalidTransition(jobID: id, from: job.state, to: .queued)
            }
            if let sha = job.config.datasetSHA256, try DatasetVersion.fetchOne(db, key: sha) == nil {
                throw StoreError.datasetVersionGone(jobID: id, dataset: job.config.dataset ?? "?", sha256: sha)
            }
            let from = job.state
            job.state = .queued
            job.attempt = 1
            job.failureReason = nil
            job.finishedAt = nil
            job.clearLease()
            job.updatedAt = now
            try job.update(db)
            try Self.recordEvent(db, job: id, at: now, kind: .retried, from: from, to: .queued,
                                 reason: reason, worker: nil)
            return job
        }
    }

    // MARK: - Inside a transaction

    static func cancel(_ db: Database, _ job: Job, reason: String, now: Date) throws -> Job {
        var job = job
        let from = job.state
        job.state = .cancelled
        job.leaseExpiresAt = nil  // token and owner stay: see `heartbeat`
        job.finishedAt = now
        job.updatedAt = now
        try job.update(db)
        try detachWorker(db, jobID: job.id)
        try recordEvent(db, job: job.id, at: now, kind: .cancelled, from: from, to: .cancelled,
                        reason: reason, worker: from == .running ? job.leaseOwner : nil)
        return job
    }
}

extension Job {
    /// Forgets the lease (the job goes back to the queue).
    mutating func clearLease() {
        leaseOwner = nil
        leaseToken = nil
        leaseExpiresAt = nil
        leaseSeconds = nil
    }
}
