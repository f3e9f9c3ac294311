import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

final class BadInputTests: XCTestCase {
    // MARK: - Checksums

    func testWrongChecksumIsRefusedAndPreviousCheckpointStaysLatestAndIntact() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()
            // Given a checkpoint at step 2
            let good = Data((0..<3000).map { UInt8($0 % 199) })
            let ok = try await client.putCheckpoint(job: 1, step: 2, images: 2, data: good, leaseToken: lease.token)
            XCTAssertEqual(ok.status, .created)
            let filesBefore = h.files()

            // When a checkpoint for step 4 arrives whose bytes do not hash to its header
            let bad = Data((0..<3000).map { UInt8($0 % 197) })
            let r = try await client.putCheckpoint(job: 1, step: 4, images: 4, data: bad, leaseToken: lease.token,
                                                   claimedSHA: sha256Hex(Data("something else".utf8)))

            // Then it is refused, nothing is kept, and step 2 is still the latest, intact
            XCTAssertEqual(r.status, .badRequest)
            XCTAssertTrue(errorText(r).hasPrefix("checksum mismatch: expected "), errorText(r))
            XCTAssertEqual(h.files(), filesBefore)
            XCTAssertEqual(h.tmpFiles(), [])
            let latest = try await h.store.latestCheckpoint(jobID: 1)
            XCTAssertEqual(latest?.step, 2)
            XCTAssertEqual(latest?.sha256, sha256Hex(good))
            XCTAssertEqual(latest?.path, "artifacts/\(sha256Hex(good).prefix(2))/\(sha256Hex(good))")
            XCTAssertEqual(try Data(contentsOf: h.dir.appendingPathComponent(latest!.path)), good)
            let v1 = try await h.store.checkpoints(jobID: 1).count
            XCTAssertEqual(v1, 1)

            // and an artifact upload with a wrong digest is refused too
            let put = try await client.execute(uri: "/v1/artifacts/\(sha256Hex(good))", method: .put, headers: headers(),
                                               body: ByteBuffer(bytes: bad))
            XCTAssertEqual(put.status, .badRequest)
            XCTAssertEqual(try Data(contentsOf: h.artifactURL(sha256Hex(good))), good)
        }
    }

    // MARK: - Sizes

    func testOversizedBodiesAre413AndMissingLengthIs411() async throws {
        let h = try Harness(maxUploadBytes: 1000, maxJSONBytes: 2000)
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let big = Data(repeating: 7, count: 1500)
            let put = try await client.execute(uri: "/v1/artifacts/\(sha256Hex(big))", method: .put, headers: headers(),
                                               body: ByteBuffer(bytes: big))
            XCTAssertEqual(put.status, .contentTooLarge)
            XCTAssertTrue(errorText(put).contains("exceeds the limit of 1000 bytes"), errorText(put))
            let noLength = try await client.execute(uri: "/v1/artifacts/\(sha256Hex(Data()))", method: .put, headers: headers())
            XCTAssertEqual(noLength.status, .lengthRequired)
            let json = "{\"jobs\": [], \"pad\": \"" + String(repeating: "x", count: 3000) + "\"}"
            let post = try await client.send(.post, "/v1/jobs", json: json)
            XCTAssertEqual(post.status, .contentTooLarge)
            XCTAssertEqual(h.files(), [])
            let v2 = try await h.store.jobs().count
            XCTAssertEqual(v2, 0)
        }
    }

    // MARK: - Malformed requests

    func testMalformedJSONAndUnknownJobsAndInvalidConfigs() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            let malformed = try await client.send(.post, "/v1/jobs", json: #"{"jobs": [{"name": "a",]}"#)
            XCTAssertEqual(malformed.status, .badRequest)
            XCTAssertTrue(errorText(malformed).hasPrefix("malformed JSON body"), errorText(malformed))
            let missing = try await client.send(.post, "/v1/lease", json: #"{"worker": "w"}"#)
            XCTAssertEqual(missing.status, .badRequest)
            XCTAssertTrue(errorText(missing).contains("missing key \"host\""), errorText(missing))
            let wrongType = try await client.send(.post, "/v1/jobs/1/heartbeat", json: #"{"token": "t", "step": "two", "images_done": 1}"#)
            XCTAssertEqual(wrongType.status, .badRequest)
            XCTAssertTrue(errorText(wrongType).contains("step"), errorText(wrongType))

            for uri in ["/v1/jobs/999", "/v1/jobs/999/losses", "/v1/jobs/999/model"] {
                let r = try await client.send(.get, uri)
                XCTAssertEqual(r.status, .notFound, uri)
            }
            let v3 = errorText(try await client.send(.get, "/v1/jobs/999"))
            XCTAssertEqual(v3, "job 999 not found")
            let hb = try await client.send(.post, "/v1/jobs/999/heartbeat", body: HeartbeatRequest(token: "t", step: 1, imagesDone: 1))
            XCTAssertEqual(hb.status, .notFound)
            let v4 = try await client.send(.post, "/v1/jobs/999/cancel").status
            XCTAssertEqual(v4, .notFound)
            let v5 = try await client.send(.get, "/v1/jobs/abc").status
            XCTAssertEqual(v5, .badRequest)
            let v6 = try await client.send(.get, "/v1/jobs/-1").status
            XCTAssertEqual(v6, .badRequest)
            let v7 = try await client.send(.get, "/v1/nothing-here").status
            XCTAssertEqual(v7, .notFound)

            // a config that names an unknown style image, or an invalid one: nothing created
            let unknown = JobConfig(name: "a", styleSHA256: String(repeating: "0", count: 64))
            let r1 = try await client.send(.post, "/v1/jobs", body: ["jobs": [unknown]])
            XCTAssertEqual(r1.status, .badRequest)
            XCTAssertTrue(errorText(r1).contains("is not in the artifact store"), errorText(r1))
            let bad = [JobConfig(name: "../evil", styleSHA256: style), JobConfig(name: "ok", styleSHA256: style, imageSize: -3)]
            let r2 = try await client.send(.post, "/v1/jobs", body: ["jobs": bad])
            XCTAssertEqual(r2.status, .badRequest)
            XCTAssertTrue(errorText(r2).contains("name:"), errorText(r2))
            XCTAssertTrue(errorText(r2).contains("image_size: must be from 8 to 2048, got -3"), errorText(r2))
            let v8 = try await h.store.jobs().count
            XCTAssertEqual(v8, 0)
            let badWorker = try await client.send(.post, "/v1/lease", json: #"{"worker": "../w", "host": "h", "threads": 1}"#)
            XCTAssertEqual(badWorker.status, .badRequest)
        }
    }

    // MARK: - Path traversal

    func testPathTraversalNeverTouchesTheFileSystem() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let outside = h.dir.deletingLastPathComponent().appendingPathComponent("evil-\(UUID().uuidString)")
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()
            let before = h.files()
            let body = ByteBuffer(string: "evil")
            let cases: [(HTTPRequest.Method, String)] = [
                (.get, "/v1/artifacts/../../etc/passwd"),
                (.get, "/v1/artifacts/..%2F..%2Fetc%2Fpasswd"),
                (.get, "/v1/artifacts/" + String(repeating: "g", count: 64)),
                (.get, "/v1/artifacts/" + style.uppercased()),
                (.put, "/v1/artifacts/../../\(outside.lastPathComponent)"),
                (.put, "/v1/artifacts/..%2F..%2F\(outside.lastPathComponent)"),
                (.put, "/v1/jobs/1/checkpoints/..%2F..%2Fx"),
                (.put, "/v1/jobs/..%2F1/model"),
            ]
            for (method, uri) in cases {
                var extra: [HTTPField.Name: String] = [.init("X-Lease-Token")!: lease.token, .init("X-Images-Seen")!: "1",
                                                        .init("X-Content-SHA256")!: "../../etc/passwd"]
                if uri.contains("checkpoints") { extra[.init("X-Content-SHA256")!] = sha256Hex(Data("evil".utf8)) }
                let r = try await client.execute(uri: uri, method: method, headers: headers(token: Harness.token, extra),
                                                 body: method == .put ? body : nil)
                XCTAssertTrue([400, 404].contains(r.status.code), "\(uri): \(r.status)")
                XCTAssertFalse(String(buffer: r.body).contains("root:"), uri)
            }
            // a model upload whose digest header is a path
            let model = try await client.execute(uri: "/v1/jobs/1/model", method: .put,
                                                 headers: headers(token: Harness.token, [.init("X-Lease-Token")!: lease.token,
                                                                                         .init("X-Content-SHA256")!: "../../../tmp/x"]),
                                                 body: body)
            XCTAssertEqual(model.status, .badRequest)
            XCTAssertEqual(h.files(), before)
            XCTAssertEqual(h.tmpFiles(), [])
            XCTAssertFalse(FileManager.default.fileExists(atPath: outside.path))
        }
    }
}
