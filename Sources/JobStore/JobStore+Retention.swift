import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Retention

/// What `pruneCheckpoints` dropped, and what the rows reference afterwards.
public struct RetentionResult: Sendable, Equatable {
    /// The checkpoint rows deleted (in a dry run: that would be), by job then step.
    public var dropped: [CheckpointRecord]
    /// Every artifact digest a row references once they are gone: the checkpoints kept, each
    /// job's model and latest preview, the style image of every job, whatever its state, the
    /// pinned artifacts, and the manifests and shards of the served datasets and of the
    /// versions jobs that can still train pin.
    public var referenced: Set<String>
    /// The dataset versions dropped (in a dry run: that would be): neither served nor pinned
    /// by a queued, running or failed job.
    public var droppedDatasets: [DatasetVersion] = []
}

extension JobStore {
    /// Deletes the checkpoint rows no job needs, and the dataset versions no job that can
    /// still train pins and the coordinator no longer serves, in one write transaction, and
    /// returns them with the digests still referenced:
    /// - a queued or running job keeps its latest `keepLatest` checkpoints (by step; its
    ///   `latestCheckpointID`, the one a lease resumes from, always among them), and the
    ///   checkpoint of its best validation step (early stopping's model, issue 14);
    /// - a failed or cancelled job keeps its latest checkpoint only, so that `retryJob` queues
    ///   it to resume from there;
    /// - a succeeded job keeps its latest checkpoint only: its final weights and Adam state,
    ///   which `promoteJob` continues from (its model is the result).
    /// The files stay: deleting them is the coordinator's garbage collector's part.
    /// - Parameter dryRun: change nothing; answer what would be dropped.
    /// - Throws: `invalidConfig` when `keepLatest` is below 1.
    @discardableResult
    public func pruneCheckpoints(keepLatest: Int, dryRun: Bool = false) async throws -> RetentionResult {
        guard keepLatest >= 1 else {
            throw StoreError.invalidConfig(reason: "checkpoints to keep per job must be at least 1, got \(keepLatest)")
        }
        if dryRun {
            return try await read("pruneCheckpoints") { db in
                let dropped = try Self.checkpointsToDrop(db, keepLatest: keepLatest)
                let pinned = try Self.datasetsPinnedByLiveJobs(db)
                let datasets = try DatasetVersion.filter(DatasetVersion.Columns.servedPosition == nil).fetchAll(db)
                    .filter { !pinned.contains($0.sha256) }
                return RetentionResult(dropped: dropped, referenced: try Self.referencedArtifacts(db, except: dropped),
                                       droppedDatasets: datasets)
            }
        }
        return try await write("pruneCheckpoints") { db, _ in
            let dropped = try Self.checkpointsToDrop(db, keepLatest: keepLatest)
            for batch in stride(from: 0, to: dropped.count, by: 500) {
                let ids = dropped[batch..<min(batch + 500, dropped.count)].map(\.id)
                try CheckpointRecord.filter(ids.contains(CheckpointRecord.Columns.id)).deleteAll(db)
            }
            let datasets = try Self.dropUnpinnedDatasetVersions(db, pinned: try Self.datasetsPinnedByLiveJobs(db))
            return RetentionResult(dropped: dropped, referenced: try Self.referencedArtifacts(db, except: []),
                                   droppedDatasets: datasets)
        }
    }

    /// Every artifact digest a row references: checkpoints, models, latest previews and the
    /// style images of all jobs, pinned artifacts, and the manifests and shards of the served
    /// datasets and of the dataset versions that queued, running or failed jobs pin.
    public func referencedArtifacts() async throws -> Set<String> {
        try await read("referencedArtifacts") { db in try Self.referencedArtifacts(db, except: []) }
    }

    // MARK: - Inside a transaction

    /// The rows `pruneCheckpoints` deletes, by job then step.
    static func checkpointsToDrop(_ db: Database, keepLatest: Int) throws -> [CheckpointRecord] {
        try CheckpointRecord.fetchAll(db, sql: """
            SELECT id, job_id, step, images_seen, sha256, size, path, created_at FROM (
                SELECT c.*, j.state AS job_state, j.latest_checkpoint_id AS latest_id,
                       ROW_NUMBER() OVER (PARTITION BY c.job_id ORDER BY c.step DESC) AS newest_rank,
                       \(bestValidationStepSQL(jobColumn: "c.job_id")) AS best_step
                FROM checkpoints c JOIN jobs j ON j.id = c.job_id)
            WHERE id IS NOT latest_id
              AND (job_state IN ('succeeded', 'failed', 'cancelled') OR (newest_rank > ? AND step IS NOT best_step))
            ORDER BY job_id, step
            """, arguments: [keepLatest])
    }

    /// The digests referenced by rows, leaving out the checkpoints `except`.
    static func referencedArtifacts(_ db: Database, except dropped: [CheckpointRecord]) throws -> Set<String> {
        let droppedIDs = Set(dropped.map(\.id))
        var out = Set<String>()
        for row in try Row.fetchAll(db, sql: "SELECT id, sha256 FROM checkpoints") where !droppedIDs.contains(row["id"]) {
            out.insert(row["sha256"])
        }
        for job in try Job.fetchAll(db) {
            out.insert(job.config.styleSHA256)
            if let model = job.modelSHA256 { out.insert(model) }
            if let preview = job.previewSHA256 { out.insert(preview) }
        }
        for row in try Row.fetchAll(db, sql: "SELECT sha256 FROM pinned_artifacts") { out.insert(row["sha256"]) }
        out.formUnion(try datasetArtifacts(db, pinned: try datasetsPinnedByLiveJobs(db)))
        return out
    }
}
