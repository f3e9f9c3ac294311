import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

final class AuthTests: XCTestCase {
    // MARK: - Bearer token

    func testMissingOrWrongTokenIs401AndHealthzIsOpen() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given a coordinator with a token, when asked without one / with a wrong one
            let none = try await client.send(.get, "/v1/jobs", token: nil)
            XCTAssertEqual(none.status, .unauthorized)
            XCTAssertTrue(errorText(none).contains("missing bearer token"), errorText(none))
            let wrong = try await client.send(.get, "/v1/jobs", token: "s3cret-tokeN")
            XCTAssertEqual(wrong.status, .unauthorized)
            XCTAssertEqual(errorText(wrong), "wrong bearer token")
            let prefix = try await client.send(.get, "/v1/jobs", token: "s3cret")
            XCTAssertEqual(prefix.status, .unauthorized)
            var basic = HTTPFields()
            basic[.authorization] = "Basic czNjcmV0LXRva2Vu"
            let scheme = try await client.execute(uri: "/v1/jobs", method: .get, headers: basic)
            XCTAssertEqual(scheme.status, .unauthorized)
            // an upload without a token stores nothing
            let data = Data("payload".utf8)
            let put = try await client.execute(uri: "/v1/artifacts/\(sha256Hex(data))", method: .put,
                                               body: ByteBuffer(bytes: data))
            XCTAssertEqual(put.status, .unauthorized)
            XCTAssertEqual(h.files(), [])
            // a lease without a token hands nothing out
            _ = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: sha256Hex(makePNG(width: 8, height: 8)))
            let lease = try await client.send(.post, "/v1/lease", json: #"{"worker":"w","host":"h","threads":1}"#, token: "nope")
            XCTAssertEqual(lease.status, .unauthorized)
            let job = try await h.store.job(id: 1)
            XCTAssertEqual(job?.state, .queued)

            // Then /healthz needs no token, and the right token works
            let health = try await client.send(.get, "/healthz", token: nil)
            XCTAssertEqual(health.status, .ok)
            XCTAssertEqual(String(buffer: health.body), #"{"ok":true,"version":1}"#)
            let ok = try await client.send(.get, "/v1/jobs")
            XCTAssertEqual(ok.status, .ok)
            XCTAssertEqual(try decode(JobsResponse.self, ok).jobs.map(\.name), ["wave"])
        }
    }

    func testWithoutConfiguredTokenEverythingIsOpen() async throws {
        let h = try Harness(token: nil)
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let r = try await client.send(.get, "/v1/jobs", token: nil)
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(try decode(JobsResponse.self, r).totals.queued, 0)
        }
    }

    // MARK: - Loopback

    func testLoopbackDetection() {
        for host in ["127.0.0.1", "127.1.2.3", "localhost", "::1", "[::1]", "LOCALHOST"] {
            XCTAssertTrue(CoordinatorConfig.isLoopback(host: host), host)
        }
        for host in ["0.0.0.0", "10.0.0.1", "192.168.1.5", "::", "example.com", "127.0.0", "128.0.0.1", "127.0.0.256"] {
            XCTAssertFalse(CoordinatorConfig.isLoopback(host: host), host)
        }
    }
}
