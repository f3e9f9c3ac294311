@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Issue 11: values a worker (or anyone with a token) can send, and values already stored,
/// must not crash the coordinator or wedge a job.
final class HostileValuesTests: XCTestCase {
    private let sha = String(repeating: "ab", count: 32)

    /// Finding 2: a heartbeat with `images_per_s: 1e-300` made the ETA about 10^300 s, and
    /// `Int(s.rounded())` trapped on every later `GET /` (after restarts too).
    func testATinySpeedDoesNotTrapTheDashboard() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 16, height: 16))
            _ = try await client.submit(["slow"], style: style, steps: 100)
            let lease = try await client.lease()
            let beat = HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1, imagesPerS: 1e-300, stepsTotal: 100,
                                        imagesTotal: 100)
            let hb = try await client.send(.post, "/v1/jobs/1/heartbeat", body: beat)
            XCTAssertEqual(hb.status, .ok, String(buffer: hb.body))
            let page = try await client.send(.get, "/")
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(String(buffer: page.body).contains("<td class=\"num\">—</td>"), "the ETA shows as unknown")
            let list = try await client.send(.get, "/v1/jobs")
            XCTAssertEqual(list.status, .ok)
            let eta = try XCTUnwrap(decode(JobsResponse.self, list).jobs.first?.etaS)
            XCTAssertGreaterThan(eta, 1e290)
        }
    }

    /// Finding 2: a loss curve whose steps are near `Int.max` (stored before reports were
    /// bounded) trapped or looped forever drawing the chart's axis.
    func testAStoredStepNearIntMaxStillDraws() {
        let points = [LossPoint(step: Int.max - 4096, images: 1, content: 1, style: 2, total: 3),
                      LossPoint(step: Int.max, images: 2, content: 1, style: 2, total: 3)]
        let status = JobStatus(id: 1, name: "far", state: .running, attempt: 1, maxAttempts: 3, step: Int.max,
                               stepsTotal: Int.max, imagesDone: Int.max, imagesTotal: Int.max, worker: "w\u{1B}[2J",
                               resumedFromStep: 0, content: 1, style: 2, total: 3, imagesPerS: 1e-300, etaS: 1e300,
                               recentTotals: [3, 3], failureReason: nil, modelSHA256: nil, previewStep: nil,
                               createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 0))
        let html = DashboardPage.render(.init(jobs: [status], losses: [1: points], now: Date(timeIntervalSince1970: 0)))
        XCTAssertTrue(html.contains("loss curve"))
        XCTAssertFalse(html.contains("\u{1B}"), "no raw escape character reaches the page")
    }

    /// Reports are bounded: a step or count beyond 2^40 is refused, so no stored value is
    /// near the limits of the arithmetic done on it.
    func testAbsurdProgressIsRefused() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 16, height: 16))
            _ = try await client.submit(["far"], style: style, steps: 100)
            let lease = try await client.lease()
            for beat in [HeartbeatRequest(token: lease.token, step: Int.max, imagesDone: 1),
                         HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1, stepsTotal: Int.max),
                         HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1,
                                          lossPoints: [LossPoint(step: Int.max, images: 1, content: 1, style: 1, total: 2)])] {
                let r = try await client.send(.post, "/v1/jobs/1/heartbeat", body: beat)
                XCTAssertEqual(r.status, .badRequest, String(buffer: r.body))
            }
            let status = try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs")).jobs[0]
            XCTAssertEqual(status.step, 0)
        }
    }

    /// Finding 4: `PUT …/checkpoints/9223372036854775807` became the job's latest checkpoint
    /// and every later attempt resumed past the end.
    func testACheckpointPastTheLastStepIsRefused() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 16, height: 16))
            _ = try await client.submit(["wave"], style: style, steps: 4)
            let lease = try await client.lease()
            let data = Data("checkpoint bytes".utf8)
            let absurd = try await client.putCheckpoint(job: 1, step: 2, images: Int.max, data: data, leaseToken: lease.token)
            XCTAssertEqual(absurd.status, .badRequest, String(buffer: absurd.body))
            for step in [Int.max, 5] {
                let r = try await client.putCheckpoint(job: 1, step: step, images: 1, data: data, leaseToken: lease.token)
                XCTAssertEqual(r.status, .badRequest, "step \(step): \(String(buffer: r.body))")
            }
            let ok = try await client.putCheckpoint(job: 1, step: 2, images: 2, data: data, leaseToken: lease.token)
            XCTAssertEqual(ok.status, .created, String(buffer: ok.body))
            let detail = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/1"))
            XCTAssertEqual(detail.checkpoints.map(\.step), [2])
        }
    }

    /// Found by the fuzz test: losses near Double's maximum made the chart's log ticks stride
    /// towards infinity, and `GET /` never answered while its memory grew.
    func testLossesNearTheTopOfDoubleStillDraw() {
        let points = [LossPoint(step: 1, images: 1, content: 1e308, style: 1e308, total: 1e308),
                      LossPoint(step: 2, images: 2, content: 1, style: 1e-300, total: 1e308)]
        XCTAssertEqual(DashboardPage.logTicks(from: 307.9, to: 308.4), [])
        let html = DashboardPage.lossChart(points)
        XCTAssertTrue(html.hasSuffix("</svg>"))
    }

    /// Found by the fuzz test: previews, heartbeats and `complete` accepted steps past the
    /// job's last one.
    func testReportsPastTheLastStepAreRefused() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 16, height: 16))
            _ = try await client.submit(["wave"], style: style, steps: 4)
            let lease = try await client.lease()
            let png = makePNG(width: 8, height: 8)
            let preview = try await client.execute(uri: "/v1/jobs/1/preview", method: .put,
                                                   headers: headers(token: Harness.token, [.init("X-Lease-Token")!: lease.token,
                                                                                           .init("X-Content-SHA256")!: sha256Hex(png),
                                                                                           .init("X-Step")!: "5"]),
                                                   body: ByteBuffer(bytes: png))
            XCTAssertEqual(preview.status, .badRequest, String(buffer: preview.body))
            let beat = try await client.send(.post, "/v1/jobs/1/heartbeat",
                                             body: HeartbeatRequest(token: lease.token, step: 5, imagesDone: 5))
            XCTAssertEqual(beat.status, .badRequest, String(buffer: beat.body))
            XCTAssertTrue(errorText(beat).contains("step 5 is past the job's last step 4"), errorText(beat))
            let ok = try await client.send(.post, "/v1/jobs/1/heartbeat",
                                           body: HeartbeatRequest(token: lease.token, step: 4, imagesDone: 4))
            XCTAssertEqual(ok.status, .ok)
        }
    }
}
