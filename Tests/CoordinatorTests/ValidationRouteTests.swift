import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Validation through the API (issue 14): heartbeats and complete carry points, the job's
/// details show them, a second lease gets the history and the best checkpoint, an early stop's
/// reason is in the status, and the dashboard charts the validation total.
final class ValidationRouteTests: XCTestCase {
    func point(_ step: Int, _ total: Double) -> ValidationPoint {
        ValidationPoint(step: step, content: total / 10, style: total / 100, contentWeighted: total / 4, styleWeighted: 3 * total / 4)
    }

    func testPointsFlowFromHeartbeatsToDetailsLeasesAndTheEarlyStop() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given a job with checkpoints at steps 1 and 2 and a validation point at each
            let style = try await client.putArtifact(makePNG(width: 16, height: 16))
            _ = try await client.submit(["wave"], style: style)
            let first = try await client.lease()
            for step in [1, 2] {
                let cp = try await client.putCheckpoint(job: 1, step: step, images: step, data: Data([UInt8(step)]),
                                                        leaseToken: first.token)
                XCTAssertEqual(cp.status, .created, errorText(cp))
            }
            let beat = HeartbeatRequest(token: first.token, step: 2, imagesDone: 2, validation: [point(1, 8), point(2, 9)])
            let ok = try await client.send(.post, "/v1/jobs/1/heartbeat", body: beat).status
            XCTAssertEqual(ok, .ok)
            // An impossible point is refused
            let bad = HeartbeatRequest(token: first.token, step: 2, imagesDone: 2,
                                       validation: [ValidationPoint(step: 2, content: -1, style: 0, contentWeighted: 0, styleWeighted: 0)])
            let refused = try await client.send(.post, "/v1/jobs/1/heartbeat", body: bad).status
            XCTAssertEqual(refused, .badRequest)
            let detail = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/1"))
            XCTAssertEqual(detail.validation, [point(1, 8), point(2, 9)])

            // When the job is handed back and leased again
            let release = try await client.send(.post, "/v1/jobs/1/release", json: #"{"token": "\#(first.token)"}"#)
            XCTAssertEqual(release.status, .ok, errorText(release))
            let second = try await client.lease(worker: "w2")

            // Then the lease carries the history and the best checkpoint (step 1's)
            XCTAssertEqual(second.checkpoint?.step, 2)
            XCTAssertEqual(second.validation, [point(1, 8), point(2, 9)])
            XCTAssertEqual(second.best?.step, 1)
            XCTAssertEqual(second.best?.sha256, sha256Hex(Data([1])))

            // When it completes early-stopped at step 3 with step 1's model
            let model = Data([9, 9, 9])
            let put = try await client.execute(uri: "/v1/jobs/1/model", method: .put,
                                               headers: headers(token: Harness.token, [.init("X-Lease-Token")!: second.token,
                                                                                       .init("X-Content-SHA256")!: sha256Hex(model)]),
                                               body: ByteBuffer(bytes: model))
            XCTAssertEqual(put.status, .created, errorText(put))
            let complete = CompleteRequest(token: second.token, modelSHA256: sha256Hex(model), step: 3, imagesDone: 3,
                                           validation: [point(3, 10)], bestStep: 1)
            let done = try await client.send(.post, "/v1/jobs/1/complete", body: complete)
            XCTAssertEqual(done.status, .ok, errorText(done))

            // Then it succeeded with the reason, and the details list all three points
            let status = try decode(JobStatus.self, done)
            XCTAssertEqual(status.state, .succeeded)
            XCTAssertEqual(status.stopReason, "early-stopped at step 3 (best step 1)")
            let after = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/1"))
            XCTAssertEqual(after.validation.map(\.step), [1, 2, 3])
            XCTAssertEqual(after.job.stopReason, "early-stopped at step 3 (best step 1)")
        }
    }

    func testTheDashboardChartsTheValidationTotal() {
        let losses = (1...10).map { LossPoint(step: $0, images: $0, content: 5, style: 50 / Double($0), total: 5 + 50 / Double($0)) }
        let job = JobStatus(id: 7, name: "wave", state: .succeeded, attempt: 1, maxAttempts: 3, step: 10, stepsTotal: 10,
                            imagesDone: 10, imagesTotal: 10, worker: nil, resumedFromStep: 0, content: 5, style: 5, total: 10,
                            imagesPerS: nil, etaS: nil, recentTotals: [], failureReason: nil, modelSHA256: nil, previewStep: nil,
                            createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 0),
                            stopReason: "early-stopped at step 10 (best step 5)")
        let page = DashboardPage.render(DashboardPage.Input(jobs: [job], losses: [7: losses],
                                                            validation: [7: [point(5, 20), point(10, 30)]],
                                                            now: Date(timeIntervalSince1970: 0)))
        XCTAssertTrue(page.contains("<polyline class=\"line validation\""), page)
        XCTAssertEqual(page.components(separatedBy: "<circle class=\"validation\"").count - 1, 2)
        XCTAssertTrue(page.contains("validation at step 5: 20"))
        XCTAssertTrue(page.contains("early-stopped at step 10 (best step 5)"))
        // Without points there is no validation line
        let plain = DashboardPage.render(DashboardPage.Input(jobs: [job], losses: [7: losses], now: Date(timeIntervalSince1970: 0)))
        XCTAssertFalse(plain.contains("line validation"))
    }
}
