import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Previews (fenced)

extension JobStore {
    /// Records an uploaded preview (a PNG in the artifact store, rendered by the worker through
    /// the checkpoint of `step`) as the job's latest, replacing the previous one, and appends a
    /// `previewed` event — one write transaction, fenced like every report under a lease.
    ///
    /// The latest upload by the current lease holder wins: a new attempt's first preview
    /// replaces one left by an abandoned attempt even at a lower step.
    /// - Returns: the job as recorded.
    /// - Throws: `staleLease`, `notFound`, `invalidReport` (bad digest, negative step, or a step
    ///   before the one this attempt resumed from).
    @discardableResult
    public func recordPreview(jobID: Int64, token: String, step: Int, sha256: String) async throws -> Job {
        var problems: [String] = []
        if step < 0 { problems.append("step must be >= 0, got \(step)") }
        if !JobConfig.isSHA256(sha256) { problems.append("sha256 is not 64 lowercase hex digits") }
        if !problems.isEmpty {
            throw StoreError.invalidReport(jobID: jobID, reason: problems.joined(separator: "; "))
        }
        return try await writeCommitting("recordPreview") { db, now in
            var job: Job
            switch try Self.fence(db, jobID: jobID, token: token, now: now) {
            case .success(let fenced): job = fenced
            case .failure(let refusal): return .failure(refusal)
            }
            if step < job.resumedFromStep {
                return .failure(.invalidReport(jobID: jobID, reason:
                    "preview step \(step) is before step \(job.resumedFromStep) this attempt resumed from"))
            }
            if let refusal = Self.pastTheEnd([step], job: job) { return .failure(refusal) }
            job.previewSHA256 = sha256
            job.previewStep = step
            job.updatedAt = now
            try job.update(db)
            try Self.recordEvent(db, job: jobID, at: now, kind: .previewed, from: .running, to: .running,
                                 reason: "preview at step \(step), sha256 \(sha256.prefix(12))",
                                 worker: job.leaseOwner)
            return .success(job)
        }
    }
}
