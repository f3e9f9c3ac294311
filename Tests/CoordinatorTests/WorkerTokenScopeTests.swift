import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// What a worker token may touch beyond the route table: only its own leases and what they
/// need, never another worker's; revocation; how tokens are kept.
final class WorkerTokenScopeTests: XCTestCase {
    func testAWorkerTokenReachesOnlyItsOwnLeasesAndTheArtifactsTheyNeed() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let a = try await h.store.createWorkerCredential(name: "a").token
            let b = try await h.store.createWorkerCredential(name: "b").token
            let styleA = try await client.putArtifact(makePNG(width: 8, height: 8, seed: 1))
            let styleB = try await client.putArtifact(makePNG(width: 8, height: 8, seed: 2))
            _ = try await client.submit(["for-a"], style: styleA)
            _ = try await client.submit(["for-b"], style: styleB)
            let leaseA = try await client.leaseAs(a)
            let leaseB = try await client.leaseAs(b)
            XCTAssertEqual([leaseA.jobID, leaseB.jobID], [1, 2])
            let checkpointB = Data("b's checkpoint".utf8)
            let put = try await client.upload("/v1/jobs/2/checkpoints/1", checkpointB, as: b, lease: leaseB.token,
                                              extra: ["X-Images-Seen": "1"])
            XCTAssertEqual(put.status, .created)

            // A worker token cannot report on another's job, even with that job's lease token
            let beat = try await client.sendAs(a, .post, "/v1/jobs/2/heartbeat",
                                               body: HeartbeatRequest(token: leaseB.token, step: 1, imagesDone: 1))
            XCTAssertEqual(beat.status, .forbidden)
            XCTAssertEqual(errorText(beat), "worker token 1 (a) does not hold the lease of job 2")
            let fail = try await client.sendAs(a, .post, "/v1/jobs/2/fail",
                                               body: FailRequest(token: leaseB.token, reason: "x", retryable: false))
            XCTAssertEqual(fail.status, .forbidden)
            let bJobState = try await h.store.job(id: 2)?.state
            XCTAssertEqual(bJobState, .running, "b's job is untouched")

            // Nor download another job's style or checkpoints, or anything else
            for sha in [styleB, sha256Hex(checkpointB), sha256Hex(Data("nothing".utf8))] {
                let r = try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: headers(token: a))
                XCTAssertEqual(r.status, .forbidden, sha)
            }
            // Its own job's style and b's checkpoint, to their holders
            let own = try await client.execute(uri: "/v1/artifacts/\(styleA)", method: .get, headers: headers(token: a))
            XCTAssertEqual(own.status, .ok)
            let bOwn = try await client.execute(uri: "/v1/artifacts/\(sha256Hex(checkpointB))", method: .get, headers: headers(token: b))
            XCTAssertEqual(bOwn.status, .ok)

            // Once its job is over, the style is no longer its business
            let release = try await client.sendAs(a, .post, "/v1/jobs/1/release", body: ReleaseRequest(token: leaseA.token, reason: "done"))
            XCTAssertEqual(release.status, .ok)
            let after = try await client.execute(uri: "/v1/artifacts/\(styleA)", method: .get, headers: headers(token: a))
            XCTAssertEqual(after.status, .forbidden)
        }
    }

    func testARevokedTokenIsRefusedOnItsNextRequestAndItsLeaseRunsOutAsUsual() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let made = try await client.send(.post, "/v1/tokens", json: #"{"role":"worker","name":"gpu7"}"#)
            XCTAssertEqual(made.status, .created, String(buffer: made.body))
            let created = try decode(TokenCreated.self, made)
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["run"], style: style)
            let lease = try await client.leaseAs(created.token)
            let ok = try await client.sendAs(created.token, .post, "/v1/jobs/1/heartbeat",
                                             body: HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1))
            XCTAssertEqual(ok.status, .ok)

            // When the admin revokes it
            let revoked = try await client.send(.post, "/v1/tokens/\(created.info.id)/revoke")
            XCTAssertEqual(revoked.status, .ok)
            XCTAssertNotNil(try decode(TokenInfo.self, revoked).revokedAt)

            // Then its next request is refused, saying why
            let beat = try await client.sendAs(created.token, .post, "/v1/jobs/1/heartbeat",
                                               body: HeartbeatRequest(token: lease.token, step: 2, imagesDone: 2))
            XCTAssertEqual(beat.status, .unauthorized)
            XCTAssertTrue(errorText(beat).hasPrefix("worker token 1 (gpu7) was revoked at "), errorText(beat))
            let recordedStep = try await h.store.job(id: 1)?.step
            XCTAssertEqual(recordedStep, 1, "nothing recorded")

            // And its lease runs out as any silent worker's: the job is queued again
            h.clock.advance(by: 61)
            _ = try await h.store.expireLeases()
            let job = try await h.store.job(id: 1)
            XCTAssertEqual(job?.state, .queued)
            XCTAssertEqual(job?.attempt, 2)
            // Revoking again keeps the first time
            let again = try await client.send(.post, "/v1/tokens/\(created.info.id)/revoke")
            XCTAssertEqual(try decode(TokenInfo.self, again).revokedAt, try decode(TokenInfo.self, revoked).revokedAt)
        }
    }

    func testTokensAreListedWithoutSecretsAndBadRequestsChangeNothing() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let made = try decode(TokenCreated.self, try await client.send(.post, "/v1/tokens", json: #"{"role":"worker"}"#))
            XCTAssertEqual(made.info.name, "worker-1", "a default name")
            XCTAssertNotNil(made.token.range(of: "^nstw_[0-9a-f]{64}$", options: .regularExpression), made.token)
            let list = try await client.send(.get, "/v1/tokens")
            let text = String(buffer: list.body)
            XCTAssertFalse(text.contains(made.token))
            XCTAssertFalse(text.contains(String(made.token.dropFirst(5).prefix(16))), "no part of the token")
            XCTAssertEqual(try decode(TokensResponse.self, list).tokens.map(\.name), ["worker-1"])

            let bad: [(String, String, HTTPResponse.Status)] = [
                ("POST", #"{"role":"admin"}"#, .badRequest),
                ("POST", #"{"role":"worker","name":"a\nb"}"#, .badRequest),
                ("POST", #"{"role":"worker","name":"\#(String(repeating: "x", count: 500))"}"#, .badRequest),
                ("POST", #"{"name":"x"}"#, .badRequest),
                ("POST", #"[]"#, .badRequest),
            ]
            for (_, body, status) in bad {
                let r = try await client.send(.post, "/v1/tokens", json: body)
                XCTAssertEqual(r.status, status, body)
            }
            for uri in ["/v1/tokens/99/revoke", "/v1/tokens/-1/revoke"] {
                let r = try await client.send(.post, uri)
                XCTAssertEqual(r.status, .notFound, uri)
            }
            for uri in ["/v1/tokens/x/revoke", "/v1/tokens/99999999999999999999/revoke"] {
                let r = try await client.send(.post, uri)
                XCTAssertEqual(r.status, .badRequest, uri)
            }
            let count = try await h.store.credentials().count
            XCTAssertEqual(count, 1, "nothing else was made")

            // A worker token that is not a real one, however long or odd, is just wrong
            for fake in ["nstw_", "nstw_" + String(repeating: "f", count: 10_000), made.token + "0", made.token.uppercased()] {
                let r = try await client.execute(uri: "/v1/jobs", method: .get, headers: headers(token: fake))
                XCTAssertEqual(r.status, .unauthorized, String(fake.prefix(20)))
            }
        }
    }

    func testEveryWorkerTokenMayDownloadTheServedVGGWeightsAndLeasesNameThem() async throws {
        let weights = Data("vgg16 weights stand-in".utf8)
        let h = try Harness { $0.lossNetwork = WeightsInfo(sha256: sha256Hex(weights), size: Int64(weights.count)) }
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let sha = try await client.putArtifact(weights)
            let worker = try await h.store.createWorkerCredential(name: "bare").token
            // Before it holds any lease
            let get = try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: headers(token: worker))
            XCTAssertEqual(get.status, .ok)
            XCTAssertEqual(Data(buffer: get.body), weights)
            let head = try await client.execute(uri: "/v1/artifacts/\(sha)", method: .head, headers: headers(token: worker))
            XCTAssertEqual(head.status, .forbidden, "only the download")
            _ = try await client.submit(["a"], style: try await client.putArtifact(makePNG(width: 8, height: 8)))
            let lease = try await client.leaseAs(worker)
            XCTAssertEqual(lease.vgg, WeightsInfo(sha256: sha, size: Int64(weights.count)))
        }
    }

    func testWithoutAnAdminTokenWorkerTokensAreRefusedAsMeaningless() async throws {
        let h = try Harness(token: nil)
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let r = try await client.send(.post, "/v1/tokens", json: #"{"role":"worker"}"#, token: nil)
            XCTAssertEqual(r.status, .conflict)
            XCTAssertTrue(errorText(r).contains("without a token"), errorText(r))
            let made = try await h.store.credentials().count
            XCTAssertEqual(made, 0)
        }
    }
}
