import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Sampled loss curves

extension JobStore {
    /// At most `count` loss points of each job, chosen in SQLite so that lists and charts never
    /// load whole curves: a job with n ≤ `count` points gets them all; otherwise the points at
    /// the indices ⌊i·(n−1)/(count−1)⌋, i = 0…count−1, in step order — exactly `count` points,
    /// evenly spaced, the first and the last included (the choice `JobStatus.sample` and the
    /// dashboard's `downsample` make on a whole curve).
    ///
    /// Index k (0-based) is one of those when some integer i has i·(n−1)/(count−1) in
    /// [k, k+1), i.e. when ⌈k·(count−1)/(n−1)⌉·(n−1) < (k+1)·(count−1); since n > count the
    /// map from i to k is one-to-one.
    /// - Parameters:
    ///   - count: at least 2.
    ///   - jobIDs: the jobs to sample; nil for every job.
    /// - Returns: each job's points in step order; a job without points is absent.
    public func sampledLossPoints(count: Int, jobIDs: [Int64]? = nil) async throws -> [Int64: [LossPoint]] {
        precondition(count >= 2, "a sample needs at least the first and the last point")
        if jobIDs?.isEmpty == true { return [:] }
        let filter = jobIDs.map { ids in "WHERE job_id IN (\(ids.map { _ in "?" }.joined(separator: ",")))" } ?? ""
        let arguments = StatementArguments(jobIDs ?? []) + [count, count - 1, count - 1]
        return try await read("sampledLossPoints") { db in
            let rows = try LossPointRecord.fetchAll(db, sql: """
                SELECT job_id, step, images, content, style, total FROM (
                    SELECT *, ROW_NUMBER() OVER (PARTITION BY job_id ORDER BY step) - 1 AS k,
                              COUNT(*) OVER (PARTITION BY job_id) - 1 AS last
                    FROM loss_points \(filter))
                WHERE last < ?
                   OR ((k * ? + last - 1) / last) * last < (k + 1) * ?
                ORDER BY job_id, step
                """, arguments: arguments)
            var out: [Int64: [LossPoint]] = [:]
            for row in rows { out[row.jobID, default: []].append(row.point) }
            return out
        }
    }
}
