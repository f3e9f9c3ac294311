import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

final class LeaseFlowTests: XCTestCase {
    static let points = (1...4).map { LossPoint(step: $0, images: $0, content: 10 - Double($0), style: 20 - Double($0), total: 30 - 2 * Double($0)) }

    // MARK: - Round trip

    func testSubmitLeaseHeartbeatCheckpointModelCompleteRoundTrip() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given a style image and a job
            let style = try await client.putArtifact(makePNG(width: 16, height: 16))
            let v1 = try await client.submit(["wave"], style: style)
            XCTAssertEqual(v1, [1])
            let empty = try await client.send(.get, "/v1/jobs/1/model")
            XCTAssertEqual(empty.status, .notFound)

            // When a worker leases it, reports, checkpoints, uploads the model and completes
            let lease = try await client.lease()
            XCTAssertEqual(lease.jobID, 1)
            XCTAssertEqual(lease.config.name, "wave")
            XCTAssertEqual(lease.config.styleSHA256, style)
            XCTAssertNil(lease.checkpoint)
            XCTAssertEqual(lease.leaseExpiresAt, h.clock.now().addingTimeInterval(60))
            let v2 = try await client.send(.post, "/v1/lease", json: #"{"worker":"w2","host":"h","threads":1}"#).status
            XCTAssertEqual(v2,
                           .noContent)

            h.clock.advance(by: 10)
            let beat = HeartbeatRequest(token: lease.token, step: 2, imagesDone: 2, imagesPerS: 4, stepsTotal: 4,
                                        imagesTotal: 4, lossPoints: Array(Self.points[0..<2]))
            let hb = try await client.send(.post, "/v1/jobs/1/heartbeat", body: beat)
            XCTAssertEqual(hb.status, .ok)
            XCTAssertEqual(try decode(HeartbeatResponse.self, hb), .continue(expiresAt: h.clock.now().addingTimeInterval(60)))

            let checkpoint = Data((0..<5000).map { UInt8($0 % 251) })
            let cp = try await client.putCheckpoint(job: 1, step: 2, images: 2, data: checkpoint, leaseToken: lease.token)
            XCTAssertEqual(cp.status, .created, errorText(cp))
            XCTAssertEqual(try Data(contentsOf: h.artifactURL(sha256Hex(checkpoint))), checkpoint)

            let status = try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs"))
            XCTAssertEqual(status.totals.running, 1)
            XCTAssertEqual(status.jobs[0].step, 2)
            XCTAssertEqual(status.jobs[0].worker, "w1")
            XCTAssertEqual(status.jobs[0].total, 26)
            XCTAssertEqual(status.jobs[0].etaS, 0.5)
            XCTAssertEqual(status.totals.imagesPerS, 4)

            let model = Data((0..<9000).map { UInt8(($0 * 7) % 256) })
            let modelSHA = sha256Hex(model)
            let put = try await client.execute(uri: "/v1/jobs/1/model", method: .put,
                                               headers: headers(token: Harness.token, [.init("X-Lease-Token")!: lease.token,
                                                                                       .init("X-Content-SHA256")!: modelSHA]),
                                               body: ByteBuffer(bytes: model))
            XCTAssertEqual(put.status, .created, errorText(put))
            let complete = try await client.send(.post, "/v1/jobs/1/complete", json: """
                {"token": "\(lease.token)", "model_sha256": "\(modelSHA)", "step": 4, "images_done": 4,
                 "loss_points": \(String(decoding: try APICoding.encoder().encode(Array(Self.points[2...])), as: UTF8.self))}
                """)
            XCTAssertEqual(complete.status, .ok, errorText(complete))
            let done = try decode(JobStatus.self, complete)
            XCTAssertEqual(done.state, .succeeded)
            XCTAssertEqual(done.modelSHA256, modelSHA)
            XCTAssertEqual(done.step, 4)

            // Then the losses, the model and the details come back intact
            let losses = try await client.send(.get, "/v1/jobs/1/losses")
            XCTAssertEqual(try JSONDecoder().decode([String: [LossPoint]].self, from: Data(buffer: losses.body))["points"],
                           Self.points)
            let csv = try await client.send(.get, "/v1/jobs/1/losses?format=csv")
            XCTAssertEqual(String(buffer: csv.body), LossCSV.render(Self.points))
            XCTAssertTrue(String(buffer: csv.body).hasPrefix("step,images,content,style,total\n1,1,9.0,19.0,28.0\n"))
            let download = try await client.send(.get, "/v1/jobs/1/model")
            XCTAssertEqual(download.status, .ok)
            XCTAssertEqual(Data(buffer: download.body), model)
            XCTAssertEqual(download.headers[.init("X-Content-SHA256")!], modelSHA)
            XCTAssertEqual(sha256Hex(Data(buffer: download.body)), modelSHA)
            let detail = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/1"))
            XCTAssertEqual(detail.checkpoints, [CheckpointInfo(step: 2, imagesSeen: 2, sha256: sha256Hex(checkpoint), size: 5000)])
            XCTAssertEqual(detail.events.map(\.kind), ["submitted", "leased", "checkpointed", "completed"])
            XCTAssertEqual(detail.job.recentTotals, [28, 26, 24, 22])
            let totals = try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs")).totals
            XCTAssertEqual([totals.succeeded, totals.running, totals.queued], [1, 0, 0])
        }
    }

    func testStatusJSONHasEveryContractKeyEvenWhenNull() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["a"], style: style)
            let r = try await client.send(.get, "/v1/jobs")
            let object = try JSONSerialization.jsonObject(with: Data(buffer: r.body)) as! [String: Any]
            let job = (object["jobs"] as! [[String: Any]])[0]
            for key in ["id", "name", "state", "attempt", "step", "steps_total", "images_done", "images_total", "worker",
                        "resumed_from_step", "content", "style", "total", "eta_s", "recent_totals"] {
                XCTAssertTrue(job.keys.contains(key), key)
            }
            XCTAssertTrue(job["content"] is NSNull)
            XCTAssertEqual(job["state"] as? String, "queued")
            XCTAssertEqual((object["totals"] as! [String: Any])["queued"] as? Int, 1)
        }
    }

    // MARK: - Fencing

    func testStaleTokenIsRefusedWith409AndChangesNothing() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            // Given worker 1's lease expired and worker 2 holds the job
            let first = try await client.lease(worker: "w1")
            h.clock.advance(by: 61)
            let second = try await client.lease(worker: "w2")
            XCTAssertEqual(second.attempt, 2)
            let before = try await h.store.job(id: 1)
            let filesBefore = h.files()

            // When worker 1 reports under its old token
            let beat = HeartbeatRequest(token: first.token, step: 3, imagesDone: 3, lossPoints: [Self.points[0]])
            let hb = try await client.send(.post, "/v1/jobs/1/heartbeat", body: beat)
            let data = Data("late checkpoint".utf8)
            let cp = try await client.putCheckpoint(job: 1, step: 3, images: 3, data: data, leaseToken: first.token)
            let model = try await client.execute(uri: "/v1/jobs/1/model", method: .put,
                                                 headers: headers(token: Harness.token, [.init("X-Lease-Token")!: first.token,
                                                                                         .init("X-Content-SHA256")!: sha256Hex(data)]),
                                                 body: ByteBuffer(bytes: data))
            let complete = try await client.send(.post, "/v1/jobs/1/complete",
                                                 json: #"{"token": "\#(first.token)", "model_sha256": "\#(style)"}"#)
            let fail = try await client.send(.post, "/v1/jobs/1/fail",
                                             json: #"{"token": "\#(first.token)", "reason": "x", "retryable": false}"#)

            // Then every report is a 409 and nothing changed
            for r in [hb, cp, model, complete, fail] {
                XCTAssertEqual(r.status, .conflict, errorText(r))
                XCTAssertTrue(errorText(r).contains("stale lease"), errorText(r))
            }
            let after = try await h.store.job(id: 1)
            XCTAssertEqual(after, before)
            XCTAssertEqual(after?.leaseOwner, "w2")
            let v3 = try await h.store.lossPoints(jobID: 1)
            XCTAssertEqual(v3, [])
            let v4 = try await h.store.checkpoints(jobID: 1)
            XCTAssertEqual(v4, [])
            XCTAssertEqual(h.files(), filesBefore)
        }
    }

    func testCancelRunningJobMakesHeartbeatAnswerCancel() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave", "mosaic"], style: style)
            let lease = try await client.lease()
            let cancel = try await client.send(.post, "/v1/jobs/1/cancel")
            XCTAssertEqual(cancel.status, .ok)
            XCTAssertEqual(try decode(JobStatus.self, cancel).state, .cancelled)
            let hb = try await client.send(.post, "/v1/jobs/1/heartbeat", body: HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1))
            XCTAssertEqual(String(buffer: hb.body), #"{"action":"cancel"}"#)
            XCTAssertEqual(try decode(HeartbeatResponse.self, hb), .cancel)
            let cp = try await client.putCheckpoint(job: 1, step: 1, images: 1, data: Data("x".utf8), leaseToken: lease.token)
            XCTAssertEqual(cp.status, .conflict)
            // cancelling again is an invalid transition; retry brings it back
            let v5 = try await client.send(.post, "/v1/jobs/1/cancel").status
            XCTAssertEqual(v5, .conflict)
            let v6 = try decode(JobStatus.self, try await client.send(.post, "/v1/jobs/1/retry")).state
            XCTAssertEqual(v6, .queued)
            let v7 = try await client.send(.post, "/v1/jobs/1/retry").status
            XCTAssertEqual(v7, .conflict)
            let all = try await client.send(.post, "/v1/jobs/cancel-all")
            XCTAssertEqual(String(buffer: all.body), #"{"cancelled":[1,2]}"#)
        }
    }

    func testReaperExpiresLeasesWithoutAnyRequest() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            _ = try await client.lease()
            h.clock.advance(by: 61)
            var job = try await h.store.job(id: 1)
            for _ in 0..<40 where job?.state != .queued {
                try await Task.sleep(for: .milliseconds(100))
                job = try await h.store.job(id: 1)
            }
            XCTAssertEqual(job?.state, .queued)
            XCTAssertEqual(job?.attempt, 2)
        }
    }

    func testReleaseAndFailEndTheLease() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let first = try await client.lease()
            let release = try await client.send(.post, "/v1/jobs/1/release", json: #"{"token": "\#(first.token)", "reason": "SIGTERM"}"#)
            XCTAssertEqual(try decode(JobStatus.self, release).state, .queued)
            XCTAssertEqual(try decode(JobStatus.self, release).attempt, 1)
            let second = try await client.lease()
            let fail = try await client.send(.post, "/v1/jobs/1/fail",
                                             json: #"{"token": "\#(second.token)", "reason": "loss is NaN at step 3", "retryable": false}"#)
            let failed = try decode(JobStatus.self, fail)
            XCTAssertEqual(failed.state, .failed)
            XCTAssertEqual(failed.failureReason, "loss is NaN at step 3")
            // complete needs an uploaded model
            let third = try await client.send(.post, "/v1/jobs/1/complete",
                                              json: #"{"token": "\#(second.token)", "model_sha256": "\#(String(repeating: "a", count: 64))"}"#)
            XCTAssertEqual(third.status, .badRequest)
            XCTAssertTrue(errorText(third).contains("has not been uploaded"), errorText(third))
        }
    }
}
