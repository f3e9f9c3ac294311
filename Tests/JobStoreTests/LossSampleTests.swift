import CoordinatorAPI
import GRDB
@testable import JobStore
import XCTest

/// `sampledLossPoints`: the SQL sample is the one `JobStatus.sample` takes from a whole curve,
/// and it stays small for long curves.
final class LossSampleTests: XCTestCase {
    /// The choice `JobStatus.sample` and `DashboardPage.downsample` make (Sources/Coordinator).
    func reference<T>(_ values: [T], count: Int) -> [T] {
        guard values.count > count, count >= 2 else { return values }
        return (0..<count).map { i in values[i * (values.count - 1) / (count - 1)] }
    }

    /// Inserts `n` points (steps 0, 3, 6, …) for job `id` in one statement.
    func insertPoints(_ store: JobStore, job id: Int64, count n: Int) async throws {
        guard n > 0 else { return }
        try await store.dbWriter.write { db in
            try db.execute(sql: """
                WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i + 1 < ?)
                INSERT INTO loss_points (job_id, step, images, content, style, total)
                SELECT ?, i * 3, i * 12, 1.0 / (i + 1), 2.0 / (i + 1), 3.0 / (i + 1) FROM s
                """, arguments: [n, id])
        }
    }

    func testSampleIsJobStatusSampleForEveryCurveLength() async throws {
        // Given one job per curve length, around the sample sizes
        let (store, _, _) = try makeStore(self)
        let lengths = [0, 1, 2, 3, 39, 40, 41, 42, 79, 80, 81, 100, 399, 400, 401, 402, 799, 997, 1000, 1601]
        let ids = try await store.submitJobs(lengths.map { config("curve-\($0)") }).created
        for (id, n) in zip(ids, lengths) { try await insertPoints(store, job: id, count: n) }

        for count in [2, 3, 40, 400] {
            // When every job is sampled in one query
            let samples = try await store.sampledLossPoints(count: count)

            // Then each job's sample is the reference choice from its whole curve
            for (id, n) in zip(ids, lengths) {
                let all = try await store.lossPoints(jobID: id)
                XCTAssertEqual(all.count, n)
                XCTAssertEqual(samples[id] ?? [], reference(all, count: count), "n = \(n), count = \(count)")
                XCTAssertLessThanOrEqual(samples[id]?.count ?? 0, count)
            }
        }
        // And a query for some jobs answers only those
        let some = try await store.sampledLossPoints(count: 40, jobIDs: [ids[5], ids[12]])
        XCTAssertEqual(Set(some.keys), [ids[5], ids[12]])
        let none = try await store.sampledLossPoints(count: 40, jobIDs: [])
        XCTAssertEqual(none.count, 0)
    }

    func testAHundredThousandPointsGiveAtMostTheSampleSize() async throws {
        // Given a job with 100,000 loss points and one with 10
        let (store, _, _) = try makeStore(self)
        let ids = try await store.submitJobs([config("long"), config("short")]).created
        try await insertPoints(store, job: ids[0], count: 100_000)
        try await insertPoints(store, job: ids[1], count: 10)

        for count in [40, 400] {
            // When they are sampled
            let samples = try await store.sampledLossPoints(count: count)

            // Then the long curve gives exactly `count` points, its first and last included,
            // the reference choice; the short one all of its points
            let long = try XCTUnwrap(samples[ids[0]])
            XCTAssertEqual(long.count, count)
            XCTAssertEqual(long.first?.step, 0)
            XCTAssertEqual(long.last?.step, 99_999 * 3)
            let all = try await store.lossPoints(jobID: ids[0])
            XCTAssertEqual(long, reference(all, count: count))
            XCTAssertEqual(samples[ids[1]]?.count, 10)
        }
    }
}
