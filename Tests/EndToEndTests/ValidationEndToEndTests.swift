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

    /// A resumed attempt whose best checkpoint is older than the one it resumes from downloads
    /// it (the lease's `"best"`), and when early stopping ends the job its model is that
    /// checkpoint's weights. The first attempt is played by the test over HTTP, with real
    /// checkpoints from `orchestrator train` and a step-2 validation point made to be the best.
    func testAResumedAttemptEndsWithAnEarlierAttemptsBestCheckpoint() async throws {
        let cluster = try Cluster(leaseTimeout: 5)
        self.cluster = cluster
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let http = HTTPClient.shared

        // Real checkpoints at steps 2 and 4 of the job's own training
        let styleFile = cluster.root.appendingPathComponent("style.png")
        let style = try SyntheticImages.contentImage(index: 1, width: 32, height: 32, seed: 62).pngData()
        try style.write(to: styleFile)
        let checkpoints = cluster.root.appendingPathComponent("ck")
        let train = try runCommand(cluster.orchestrator, [
            "train", "--style", styleFile.path, "--dataset", cluster.datasetDir.path, "--out", cluster.root.appendingPathComponent("m.safetensors").path,
            "--random-vgg", "--image-size", "32", "--style-size", "32", "--batch-size", "2", "--steps", "4", "--threads", "1",
            "--validation-images", "2", "--checkpoint-every", "2", "--checkpoint-dir", checkpoints.path,
        ], environment: cluster.environment, logDir: cluster.logDir)
        XCTAssertEqual(train.status, 0, train.stderr)

        let styleSHA = sha256Hex(style)
        let (put, _) = try await call(http, cluster, .PUT, "/v1/artifacts/\(styleSHA)", body: style)
        XCTAssertEqual(put, 201)
        let job = JobConfig(name: "best-earlier", styleSHA256: styleSHA, imageSize: 32, styleSize: 32, batchSize: 2,
                            steps: 40, checkpointEvery: 2, validationImages: 2, earlyStop: EarlyStop(patience: 2, minDelta: 0.99))
        let (submitted, answer) = try await call(http, cluster, .POST, "/v1/jobs", body: try APICoding.encoder().encode(["jobs": [job]]))
        XCTAssertEqual(submitted, 200, String(decoding: answer, as: UTF8.self))

        // Given a first attempt that uploaded both checkpoints, reported step 2 as by far the
        // best validation point, and handed the job back
        let (leased, leaseBody) = try await call(http, cluster, .POST, "/v1/lease",
                                                 body: try APICoding.encoder().encode(LeaseRequest(worker: "first", host: "h", threads: 1)))
        XCTAssertEqual(leased, 200)
        let lease = try APICoding.decoder().decode(LeaseResponse.self, from: leaseBody)
        var shas: [Int: String] = [:]
        for step in [2, 4] {
            let body = try Data(contentsOf: checkpoints.appendingPathComponent(String(format: "step-%06d.safetensors", step)))
            shas[step] = sha256Hex(body)
            var request = HTTPClientRequest(url: "http://\(cluster.address)/v1/jobs/\(lease.jobID)/checkpoints/\(step)")
            request.method = .PUT
            request.headers.add(name: "Authorization", value: "Bearer \(cluster.token)")
            request.headers.add(name: APIHeader.leaseToken, value: lease.token)
            request.headers.add(name: APIHeader.contentSHA256, value: shas[step]!)
            request.headers.add(name: APIHeader.imagesSeen, value: "\(2 * step)")
            request.headers.add(name: "Content-Length", value: "\(body.count)")
            request.body = .bytes(ByteBuffer(bytes: body))
            let response = try await http.execute(request, timeout: .seconds(30))
            XCTAssertEqual(response.status.code, 201)
        }
        let beat = HeartbeatRequest(token: lease.token, step: 4, imagesDone: 8, validation: [
            ValidationPoint(step: 2, content: 1e-5, style: 1e-10, contentWeighted: 1, styleWeighted: 1),
            ValidationPoint(step: 4, content: 1, style: 1, contentWeighted: 1e5, styleWeighted: 1e10),
        ])
        let (beaten, _) = try await call(http, cluster, .POST, "/v1/jobs/\(lease.jobID)/heartbeat", body: try APICoding.encoder().encode(beat))
        XCTAssertEqual(beaten, 200)
        let (released, _) = try await call(http, cluster, .POST, "/v1/jobs/\(lease.jobID)/release",
                                           body: try APICoding.encoder().encode(ReleaseRequest(token: lease.token, reason: "test")))
        XCTAssertEqual(released, 200)

        // When a worker takes it: it resumes from step 4 and its next point (step 6) is the third
        let worker = try cluster.startWorker("w")
        let rows = try cluster.waitForAllFinished(timeout: 120)

        // Then it downloaded the step-2 checkpoint, stopped at step 6 with step 2 as the best, and
        // the model is exactly that checkpoint's network
        XCTAssertEqual(rows.map(\.state), ["succeeded"], worker.stderr)
        XCTAssertTrue(worker.stderr.contains("resuming job \(lease.jobID) from step 4"), worker.stderr)
        let (status, detailBody) = try await call(http, cluster, .GET, "/v1/jobs/\(lease.jobID)")
        XCTAssertEqual(status, 200)
        let detail = try APICoding.decoder().decode(JobDetail.self, from: detailBody)
        XCTAssertEqual(detail.job.stopReason, "early-stopped at step 6 (best step 2)")
        let (got, modelBody) = try await call(http, cluster, .GET, "/v1/artifacts/\(try XCTUnwrap(detail.job.modelSHA256))")
        XCTAssertEqual(got, 200)
        let model = try SafeTensors.read(data: modelBody, file: "model")
        let best = try SafeTensors.read(contentsOf: checkpoints.appendingPathComponent("step-000002.safetensors"))
        let later = try SafeTensors.read(contentsOf: checkpoints.appendingPathComponent("step-000004.safetensors"))
        XCTAssertFalse(model.tensors.isEmpty)
        var differsFromStep4 = false
        for (name, tensor) in model.tensors {
            let expected = try XCTUnwrap(best.tensors[name], name)
            XCTAssertEqual(Array(UnsafeBufferPointer(start: tensor.data, count: tensor.count)),
                           Array(UnsafeBufferPointer(start: expected.data, count: expected.count)), name)
            let other = try XCTUnwrap(later.tensors[name], name)
            if Array(UnsafeBufferPointer(start: tensor.data, count: tensor.count))
                != Array(UnsafeBufferPointer(start: other.data, count: other.count)) { differsFromStep4 = true }
        }
        XCTAssertTrue(differsFromStep4, "the step-4 weights are not the model")
    }
}
