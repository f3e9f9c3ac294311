@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import Logging
import XCTest

/// `GET /v1/jobs` and the dashboard read loss curves sampled in SQL; what they show is what
/// sampling the whole curves gave.
final class LossSamplingRouteTests: XCTestCase {
    /// A loss point whose total is not monotonic (so the sample's choice shows).
    static func point(_ i: Int) -> LossPoint {
        let x = Double(i)
        let total: Double = 4e5 / (x + 2) + Double(i % 7)
        return LossPoint(step: i + 1, images: 4 * (i + 1), content: 1e5 / (x + 2), style: 3e5 / (x + 3), total: total)
    }

    func testListAndDashboardShowWhatWholeCurvesGave() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given jobs with 1000, 401, 41 and 3 loss points, and one with none
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["long", "chart", "mid", "short", "empty"], style: style, steps: 1000)
            for (id, n) in [(1, 1000), (2, 401), (3, 41), (4, 3)] {
                let lease = try await client.lease(worker: "w\(id)")
                XCTAssertEqual(lease.jobID, Int64(id))
                let points = (0..<n).map(Self.point)
                _ = try await h.store.heartbeat(jobID: Int64(id), token: lease.token,
                                                progress: JobProgress(step: n, imagesDone: 4 * n), lossPoints: points)
            }

            // When the jobs are listed
            let listed = try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs")).jobs

            // Then each job's recent_totals is the sample of its whole curve, and its latest losses are the last point's
            XCTAssertEqual(listed.map(\.recentTotals.count), [40, 40, 40, 3, 0])
            for job in listed {
                let all = try await h.store.lossPoints(jobID: job.id)
                XCTAssertEqual(job.recentTotals, JobStatus.sample(all.map(\.total), count: 40), job.name)
                XCTAssertEqual(job.total, all.last?.total)
            }

            // When the dashboard gathers its input
            let core = CoordinatorCore(store: h.store, artifacts: ArtifactStore(config: h.config), config: h.config,
                                       logger: Logger(label: "test"), metrics: CoordinatorMetrics())
            let now = Date()
            let sampled = try await DashboardController(core: core, auth: nil).input(now: now)

            // Then it holds at most 400 points per chart, and renders the page that whole curves rendered
            XCTAssertEqual([1, 2, 3, 4, 5].map { sampled.losses[$0]?.count ?? 0 }, [400, 400, 41, 3, 0])
            var statuses: [JobStatus] = []
            var curves: [Int64: [LossPoint]] = [:]
            for summary in try await h.store.jobs() {
                let all = try await h.store.lossPoints(jobID: summary.job.id)
                statuses.append(JobStatus(job: summary.job, latest: summary.latestLoss, totals: all.map(\.total)))
                curves[summary.job.id] = all
            }
            let whole = DashboardPage.Input(jobs: statuses, losses: curves, now: now)
            XCTAssertEqual(DashboardPage.render(sampled), DashboardPage.render(whole))
            XCTAssertEqual(sampled.jobs, whole.jobs)
        }
    }
}
