import AsyncHTTPClient
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import NIOCore
import NIOHTTP1
import NSTModel
import XCTest

/// Validation and early stopping with the real executables (issue 14). The jobs go in through
/// `POST /v1/jobs` (the styles config does not take the keys yet). The cluster's dataset has 8
/// images: 2 are held out.
final class ValidationEndToEndTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: testRun?.hasSucceeded == false)
        super.tearDown()
    }

    func call(_ http: HTTPClient, _ cluster: Cluster, _ method: HTTPMethod, _ path: String, body: Data? = nil) async throws -> (Int, Data) {
        var request = HTTPClientRequest(url: "http://\(cluster.address)\(path)")
        request.method = method
        request.headers.add(name: "Authorization", value: "Bearer \(cluster.token)")
        if let body {
            request.headers.add(name: "Content-Type", value: path.hasPrefix("/v1/artifacts") ? "application/octet-stream" : "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        let response = try await http.execute(request, timeout: .seconds(30))
        return (Int(response.status.code), Data(buffer: try await response.body.collect(upTo: 64 << 20)))
    }

    func testValidationPointsAndAnEarlyStoppedJob() async throws {
        let cluster = try Cluster(leaseTimeout: 5)
        self.cluster = cluster
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let http = HTTPClient.shared  // the process-wide client: nothing to shut down

        // Given a style and two jobs holding out 2 of the 8 images: one runs its 6 steps, the other
        // stops at its second checkpoint (patience 1 and a 99 % improvement asked for)
        let style = try SyntheticImages.contentImage(index: 1, width: 32, height: 32, seed: 61).pngData()
        let styleSHA = sha256Hex(style)
        let (put, _) = try await call(http, cluster, .PUT, "/v1/artifacts/\(styleSHA)", body: style)
        XCTAssertEqual(put, 201)
        let validated = JobConfig(name: "validated", styleSHA256: styleSHA, imageSize: 32, styleSize: 32, batchSize: 2,
                                  steps: 6, checkpointEvery: 2, priority: 2, validationImages: 2)
        let stops = JobConfig(name: "stops", styleSHA256: styleSHA, imageSize: 32, styleSize: 32, batchSize: 2,
                              steps: 40, checkpointEvery: 2, priority: 1, validationImages: 2,
                              earlyStop: EarlyStop(patience: 1, minDelta: 0.99))
        let (submitted, answer) = try await call(http, cluster, .POST, "/v1/jobs",
                                                 body: try APICoding.encoder().encode(["jobs": [validated, stops]]))
        XCTAssertEqual(submitted, 200, String(decoding: answer, as: UTF8.self))

        // When a worker trains them
        let worker = try cluster.startWorker("w")
        let rows = try cluster.waitForAllFinished(timeout: 180)

        // Then the first reports one point per checkpoint and one at the end
        XCTAssertEqual(rows.map(\.state), ["succeeded", "succeeded"], "\(rows)")
        func detail(_ name: String) async throws -> JobDetail {
            let id = try XCTUnwrap(rows.first { $0.name == name }?.id)
            let (status, body) = try await call(http, cluster, .GET, "/v1/jobs/\(id)")
            XCTAssertEqual(status, 200)
            return try APICoding.decoder().decode(JobDetail.self, from: body)
        }
        let full = try await detail("validated")
        XCTAssertEqual(full.validation.map(\.step), [2, 4, 6])
        for p in full.validation {
            XCTAssertGreaterThan(p.content, 0)
            XCTAssertGreaterThan(p.style, 0)
            XCTAssertEqual(p.contentWeighted, 1e5 * p.content, accuracy: 1e-9 * p.contentWeighted)
            XCTAssertEqual(p.styleWeighted, 1e10 * p.style, accuracy: 1e-9 * p.styleWeighted)
        }
        XCTAssertNil(full.job.stopReason)
        XCTAssertTrue(worker.stderr.contains("validating on 2 held-out images"), worker.stderr)

        // and the second ends at step 4 with the reason and its best step, 36 steps early
        let early = try await detail("stops")
        XCTAssertEqual(early.job.step, 4)
        XCTAssertEqual(early.validation.map(\.step), [2, 4])
        let best = early.validation.min { $0.total < $1.total }!.step
        XCTAssertEqual(early.job.stopReason, "early-stopped at step 4 (best step \(best))")
        XCTAssertNotNil(early.job.modelSHA256)
    }
}
