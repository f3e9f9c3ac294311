import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Promote

extension JobStore {
    /// Queues a new job that continues the succeeded job `id` — its final weights and Adam state,
    /// its parameters, its data — to a longer budget (`steps`, or `epochs`), named `name`
    /// (default `<name>-promoted`). The new job starts from a copy of the source's final
    /// checkpoint row (the same artifact), with the source's loss and validation points up to
    /// that step, so its lease resumes there and its curve is the one a single longer run has.
    /// - Throws: `notFound`; `invalidTransition` unless the source succeeded with its final
    ///   checkpoint kept (jobs from before final checkpoints were uploaded have none);
    ///   `invalidConfig` for a budget not beyond the checkpoint, a bad or live name, or a
    ///   dataset version no longer kept.
    public func promoteJob(id: Int64, name: String? = nil, steps: Int? = nil, epochs: Int? = nil) async throws -> Job {
        try await write("promoteJob") { db, now in
            let source = try Self.fetchJob(db, id)
            guard source.state == .succeeded else {
                throw StoreError.invalidTransition(jobID: id, from: source.state, to: .queued)
            }
            guard let checkpoint = try source.latestCheckpointID.flatMap({ try CheckpointRecord.fetchOne(db, key: $0) }),
                  checkpoint.step == source.step else {
                throw StoreError.invalidConfig(reason: "job \(id) (\(source.name)) kept no final checkpoint to continue from "
                                               + "(its weights and Adam state): train it again, then promote")
            }
            var config = source.config
            config.name = name ?? "\(source.name)-promoted"
            switch (steps, epochs) {
            case (let s?, nil):
                guard s > checkpoint.step else {
                    throw StoreError.invalidConfig(reason: "steps: \(s) is not beyond the \(checkpoint.step) steps job \(id) trained")
                }
                config.steps = s
            case (nil, let e?):
                guard config.steps == nil ? e > config.epochs : true else {
                    throw StoreError.invalidConfig(reason: "epochs: \(e) is not beyond the \(config.epochs) job \(id) trained")
                }
                config.steps = nil
                config.epochs = e
            default:
                throw StoreError.invalidConfig(reason: "give the new budget as steps or as epochs (one of them)")
            }
            let found = config.problems()
            if !found.isEmpty { throw StoreError.invalidConfig(reason: "\(config.name): " + found.joined(separator: "; ")) }
            if try Job.filter(Job.Columns.name == config.name)
                .filter([JobState.queued, JobState.running].contains(Job.Columns.state)).fetchCount(db) > 0 {
                throw StoreError.invalidConfig(reason: "a job named \(config.name) is already queued or running: give --name")
            }
            if let sha = config.datasetSHA256, try DatasetVersion.fetchOne(db, key: sha) == nil {
                throw StoreError.datasetVersionGone(jobID: id, dataset: config.dataset ?? "?", sha256: sha)
            }

            var job = try NewJob(config: config, now: now).insertAndFetch(db, as: Job.self)
            var copy = checkpoint
            copy.jobID = job.id
            try db.execute(sql: """
                INSERT INTO checkpoints (job_id, step, images_seen, sha256, size, path, created_at)
                VALUES (?, ?, ?, ?, ?, ?, ?)
                """, arguments: [copy.jobID, copy.step, copy.imagesSeen, copy.sha256, copy.size, copy.path, now.timeIntervalSince1970])
            job.latestCheckpointID = db.lastInsertedRowID
            job.step = checkpoint.step
            job.imagesDone = checkpoint.imagesSeen
            job.resumedFromStep = checkpoint.step
            try job.update(db)
            try db.execute(sql: """
                INSERT INTO loss_points (job_id, step, images, content, style, total)
                SELECT ?, step, images, content, style, total FROM loss_points WHERE job_id = ? AND step <= ?
                """, arguments: [job.id, id, checkpoint.step])
            try db.execute(sql: """
                INSERT INTO validation_points (job_id, step, content, style, content_weighted, style_weighted)
                SELECT ?, step, content, style, content_weighted, style_weighted FROM validation_points
                WHERE job_id = ? AND step <= ?
                """, arguments: [job.id, id, checkpoint.step])
            let budget = config.steps.map { "\($0) steps" } ?? "\(config.epochs) epochs"
            try Self.recordEvent(db, job: job.id, at: now, kind: .submitted, from: nil, to: .queued,
                                 reason: "promoted from job \(id) (\(source.name)) at step \(checkpoint.step) to \(budget)",
                                 worker: nil)
            return job
        }
    }
}
