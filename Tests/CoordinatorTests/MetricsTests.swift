import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// `GET /metrics`: Prometheus text from the coordinator's own registry.
final class MetricsTests: XCTestCase {
    func testGaugesAndCountersFollowSubmitLeaseHeartbeatAndExpiry() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given three submitted jobs, one leased by w1 whose heartbeat reports 3.5 images/s
            let stylePNG = makePNG(width: 8, height: 8)
            let style = try await client.putArtifact(stylePNG)
            _ = try await client.submit(["a", "b", "c"], style: style, steps: 10)
            let lease = try await client.lease(worker: "w1")
            let hb = try await client.send(.post, "/v1/jobs/1/heartbeat",
                                           body: HeartbeatRequest(token: lease.token, step: 1, imagesDone: 4, imagesPerS: 3.5))
            XCTAssertEqual(hb.status, .ok)
            let checkpoint = Data(repeating: 1, count: 777)
            let ck = try await client.putCheckpoint(job: 1, step: 1, images: 4, data: checkpoint, leaseToken: lease.token)
            XCTAssertEqual(ck.status, .created)

            // Then a scrape shows them
            let m1 = try await scrape(client)
            XCTAssertEqual(m1[#"nst_jobs{state="queued"}"#], 2)
            XCTAssertEqual(m1[#"nst_jobs{state="running"}"#], 1)
            XCTAssertEqual(m1[#"nst_jobs{state="succeeded"}"#], 0)
            XCTAssertEqual(m1[#"nst_worker_images_per_second{worker="w1"}"#], 3.5)
            XCTAssertEqual(m1["nst_leases_granted_total"], 1)
            XCTAssertEqual(m1["nst_heartbeats_total"], 1)
            XCTAssertEqual(m1["nst_lease_expiries_total"], 0)
            XCTAssertEqual(m1[#"nst_uploaded_bytes_total{kind="artifact"}"#], Double(stylePNG.count))
            XCTAssertEqual(m1[#"nst_uploaded_bytes_total{kind="checkpoint"}"#], 777)
            XCTAssertEqual(m1[#"nst_uploaded_bytes_total{kind="preview"}"#], 0)
            XCTAssertEqual(m1[#"nst_http_requests_total{method="POST",route="/v1/jobs/{id}/heartbeat",status="200"}"#], 1)
            XCTAssertEqual(m1[#"nst_http_requests_total{method="POST",route="/v1/lease",status="200"}"#], 1)

            // When w1's lease expires, w2 leases the job and previews it, and a stale report is refused
            h.clock.advance(by: 61)
            let stale = try await client.send(.post, "/v1/jobs/1/heartbeat",
                                              body: HeartbeatRequest(token: lease.token, step: 2, imagesDone: 8))
            XCTAssertEqual(stale.status, .conflict)
            let second = try await client.lease(worker: "w2")
            let preview = makePNG(width: 12, height: 12, seed: 4)
            let pv = try await client.putPreview(job: second.jobID, step: 1, data: preview, leaseToken: second.token)
            XCTAssertEqual(pv.status, .created)
            let hb2 = try await client.send(.post, "/v1/jobs/\(second.jobID)/heartbeat",
                                            body: HeartbeatRequest(token: second.token, step: 2, imagesDone: 8, imagesPerS: 1.25))
            XCTAssertEqual(hb2.status, .ok)

            // Then the gauges move and the counters increase
            let m2 = try await scrape(client)
            XCTAssertEqual(m2[#"nst_jobs{state="queued"}"#], 2)
            XCTAssertEqual(m2[#"nst_jobs{state="running"}"#], 1)
            XCTAssertEqual(m2[#"nst_worker_images_per_second{worker="w1"}"#], 0)
            XCTAssertEqual(m2[#"nst_worker_images_per_second{worker="w2"}"#], 1.25)
            XCTAssertEqual(m2["nst_lease_expiries_total"], 1)
            XCTAssertEqual(m2["nst_leases_granted_total"], 2)
            XCTAssertEqual(m2["nst_heartbeats_total"], 2)
            XCTAssertEqual(m2[#"nst_uploaded_bytes_total{kind="preview"}"#], Double(preview.count))
            XCTAssertEqual(m2[#"nst_http_requests_total{method="POST",route="/v1/jobs/{id}/heartbeat",status="409"}"#], 1)
            XCTAssertEqual(m2[#"nst_http_requests_total{method="GET",route="/metrics",status="200"}"#], 1)

            // When every job is cancelled, Then the states follow at the next scrape
            _ = try await client.send(.post, "/v1/jobs/cancel-all")
            let m3 = try await scrape(client)
            XCTAssertEqual(m3[#"nst_jobs{state="cancelled"}"#], 3)
            XCTAssertEqual(m3[#"nst_jobs{state="running"}"#], 0)
            XCTAssertEqual(m3[#"nst_worker_images_per_second{worker="w2"}"#], 0)
            XCTAssertEqual(m3["nst_lease_expiries_total"], 1, "an expiry is counted once, however often scraped")
        }
    }

    func testExpositionFormatAndSeparateRegistries() async throws {
        let a = try Harness(), b = try Harness()
        defer { a.cleanUp(); b.cleanUp() }
        try await a.app().test(.router) { client in
            _ = try await client.putArtifact(makePNG(width: 8, height: 8))
            let r = try await client.execute(uri: "/metrics", method: .get, headers: headers())
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.headers[.contentType], "text/plain; version=0.0.4; charset=utf-8")
            let text = String(buffer: r.body)
            XCTAssertTrue(text.contains("# HELP nst_jobs Jobs by state.\n# TYPE nst_jobs gauge\n"), text)
            XCTAssertTrue(text.contains("# TYPE nst_lease_expiries_total counter\n"), text)
            XCTAssertEqual(count("# TYPE ", in: text), count("# HELP ", in: text), "every family has its help")
        }
        // A second coordinator in the same process counts from zero.
        try await b.app().test(.router) { client in
            let m = try await scrape(client)
            XCTAssertEqual(m[#"nst_uploaded_bytes_total{kind="artifact"}"#], 0)
            XCTAssertEqual(m[#"nst_jobs{state="queued"}"#], 0)
        }
    }

    func testMetricsNeedTheTokenUnlessPublic() async throws {
        let closed = try Harness()
        defer { closed.cleanUp() }
        try await closed.app().test(.router) { client in
            let r = try await client.execute(uri: "/metrics", method: .get)
            XCTAssertEqual(r.status, .unauthorized)
            XCTAssertEqual(errorText(r), "missing bearer token (Authorization: Bearer …)")
            let ok = try await client.execute(uri: "/metrics", method: .get, headers: headers())
            XCTAssertEqual(ok.status, .ok)
        }
        let open = try Harness(metricsPublic: true)
        defer { open.cleanUp() }
        try await open.app().test(.router) { client in
            let r = try await client.execute(uri: "/metrics", method: .get)
            XCTAssertEqual(r.status, .ok)
            XCTAssertTrue(String(buffer: r.body).contains("nst_jobs{state=\"queued\"} 0"))
            // only /metrics is open
            let jobs = try await client.execute(uri: "/v1/jobs", method: .get)
            XCTAssertEqual(jobs.status, .unauthorized)
        }
    }
}

// MARK: - Helpers

/// `GET /metrics` as `series → value` (`name{labels}` as exposed).
func scrape(_ client: some TestClientProtocol, file: StaticString = #filePath, line: UInt = #line) async throws -> [String: Double] {
    let r = try await client.execute(uri: "/metrics", method: .get, headers: headers())
    XCTAssertEqual(r.status, .ok, file: file, line: line)
    var out: [String: Double] = [:]
    for row in String(buffer: r.body).split(separator: "\n") where !row.hasPrefix("#") {
        guard let space = row.lastIndex(of: " "), let value = Double(row[row.index(after: space)...]) else {
            XCTFail("malformed line \(row)", file: file, line: line)
            continue
        }
        out[String(row[..<space])] = value
    }
    return out
}
