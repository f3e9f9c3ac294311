import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Errors

/// Everything the store can refuse, with the context needed to answer a client
/// (the HTTP layer maps `notFound` → 404, `staleLease` → 409, `invalidTransition` and
/// `datasetVersionGone` → 409, `invalidConfig` / `invalidReport` / `invalidDataset` → 400,
/// `database` → 500).
public enum StoreError: Error, CustomStringConvertible {
    /// No job has this id.
    case notFound(jobID: Int64)
    /// A report or upload under a lease token that no longer holds the job (fencing), or for a
    /// job that is no longer running.
    case staleLease(jobID: Int64, reason: String)
    /// The requested state change is not allowed from the job's current state.
    case invalidTransition(jobID: Int64, from: JobState, to: JobState)
    /// A submitted job configuration is invalid; `reason` lists every problem found.
    case invalidConfig(reason: String)
    /// A report from a worker carries impossible values (negative step, non-finite loss…).
    case invalidReport(jobID: Int64, reason: String)
    /// No credential has this id.
    case credentialNotFound(id: Int64)
    /// Datasets to register (`registerDatasets`) are inconsistent: a bad name or digest, a name
    /// twice, shards that do not match the count.
    case invalidDataset(reason: String)
    /// A job pins a dataset version the store no longer keeps (it was neither served nor pinned
    /// by a job that could still train, and the garbage collector let it go): retrying it would
    /// train on other data.
    case datasetVersionGone(jobID: Int64, dataset: String, sha256: String)
    /// SQLite (or the file system under it) failed during `operation`.
    case database(operation: String, underlying: any Error)

    /// True for a write refused because the disk, or SQLite's size limit, is full (SQLITE_FULL,
    /// or an I/O error that carried ENOSPC/EDQUOT): answered as 507, and a reason for grace.
    public var isStorageFull: Bool {
        guard case .database(_, let underlying) = self, let error = underlying as? DatabaseError else { return false }
        if error.resultCode == .SQLITE_FULL { return true }
        if error.resultCode == .SQLITE_IOERR {
            let text = "\(error)".lowercased()
            return text.contains("no space") || text.contains("quota")
        }
        return false
    }

    public var description: String {
        switch self {
        case .notFound(let jobID):
            return "job \(jobID) not found"
        case .staleLease(let jobID, let reason):
            return "stale lease for job \(jobID): \(reason)"
        case .invalidTransition(let jobID, let from, let to):
            return "job \(jobID) cannot go from \(from.rawValue) to \(to.rawValue)"
        case .invalidConfig(let reason):
            return "invalid job config: \(reason)"
        case .credentialNotFound(let id):
            return "no token with id \(id) (orchestrator token list shows them)"
        case .invalidDataset(let reason):
            return "invalid dataset: \(reason)"
        case .datasetVersionGone(let jobID, let dataset, let sha256):
            return "job \(jobID) trains on version \(sha256.prefix(12)) of dataset \"\(dataset)\", which is no longer kept "
                + "(no job that could still train pinned it, and it is not the served version); submit the style again "
                + "to train on the dataset's current version"
        case .invalidReport(let jobID, let reason):
            return "invalid report for job \(jobID): \(reason)"
        case .database(let operation, let underlying):
            return "database error during \(operation): \(underlying)"
        }
    }
}
