import APIClient
import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// `PUT` and `GET /v1/jobs/{id}/preview`.
final class PreviewRouteTests: XCTestCase {
    func testUploadThenDownloadTheLatestPreview() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given a running job and a second one without a preview
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["mosaic", "dots"], style: style)
            let lease = try await client.lease()
            let none = try await client.execute(uri: "/v1/jobs/1/preview", method: .get, headers: headers())
            XCTAssertEqual(none.status, .notFound)
            XCTAssertEqual(errorText(none), "job 1 (mosaic) has no preview yet")

            // When its worker uploads two previews
            let first = makePNG(width: 16, height: 16, seed: 1)
            let r1 = try await client.putPreview(job: 1, step: 2, data: first, leaseToken: lease.token)
            XCTAssertEqual(r1.status, .created, String(buffer: r1.body))
            let answer = try decode(UploadResponse.self, r1)
            XCTAssertEqual([answer.sha256, "\(answer.size)", "\(answer.step ?? -1)"], [sha256Hex(first), "\(first.count)", "2"])
            let second = makePNG(width: 24, height: 24, seed: 2)
            let r2 = try await client.putPreview(job: 1, step: 4, data: second, leaseToken: lease.token)
            XCTAssertEqual(r2.status, .created, String(buffer: r2.body))

            // Then GET answers the latest, as a PNG with its step
            let get = try await client.execute(uri: "/v1/jobs/1/preview", method: .get, headers: headers())
            XCTAssertEqual(get.status, .ok)
            XCTAssertEqual(Data(buffer: get.body), second)
            XCTAssertEqual(get.headers[.contentType], "image/png")
            XCTAssertEqual(get.headers[.contentLength], "\(second.count)")
            XCTAssertEqual(get.headers[.init("X-Step")!], "4")
            XCTAssertEqual(get.headers[.eTag], "\"\(sha256Hex(second))\"")
            // an unchanged preview is not sent again
            let again = try await client.execute(uri: "/v1/jobs/1/preview", method: .get,
                                                 headers: headers(token: Harness.token, [.ifNoneMatch: "\"\(sha256Hex(second))\""]))
            XCTAssertEqual(again.status, .notModified)
            XCTAssertEqual(again.body.readableBytes, 0)
            // the job says which step its preview shows, the audit trail has both, the dashboard links it
            let status = try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs")).jobs
            XCTAssertEqual(status.map(\.previewStep), [4, nil])
            let detail = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/1"))
            XCTAssertEqual(detail.events.map(\.kind), ["submitted", "leased", "previewed", "previewed"])
            let page = String(buffer: try await client.execute(uri: "/", method: .get, headers: headers()).body)
            XCTAssertTrue(page.contains("<img src=\"/v1/jobs/1/preview?step=4\" alt=\"preview of mosaic at step 4\">"))
            XCTAssertEqual(count("<img ", in: page), 1)
            XCTAssertTrue(page.contains("1 of 2"))
            XCTAssertEqual(try Data(contentsOf: h.artifactURL(sha256Hex(first))), first)
        }
    }

    func testStaleTokenIs409AndStoresNothing() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            // Given w1's lease expired and w2 holds the job
            let old = try await client.lease(worker: "w1")
            h.clock.advance(by: 61)
            _ = try await client.lease(worker: "w2")
            let filesBefore = h.files()

            // When w1 uploads a preview, Then 409 before a byte is stored
            let r = try await client.putPreview(job: 1, step: 3, data: makePNG(width: 8, height: 8, seed: 5), leaseToken: old.token)
            XCTAssertEqual(r.status, .conflict)
            XCTAssertTrue(errorText(r).contains("lease token is not the job's current one"), errorText(r))
            XCTAssertEqual(h.files(), filesBefore)
            let job = try await h.store.job(id: 1)
            XCTAssertNil(job?.previewSHA256)
            // and on a job that is not running
            _ = try await client.send(.post, "/v1/jobs/1/cancel")
            let cancelled = try await client.putPreview(job: 1, step: 3, data: makePNG(width: 8, height: 8), leaseToken: old.token)
            XCTAssertEqual(cancelled.status, .conflict)
        }
    }

    func testBadUploadsAre400And413AndStoreNothing() async throws {
        let h = try Harness(maxUploadBytes: 64 << 20)
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["dots"], style: style)
            let lease = try await client.lease()
            let filesBefore = h.files()
            let png = makePNG(width: 8, height: 8, seed: 3)

            // wrong checksum
            let wrong = try await client.putPreview(job: 1, step: 1, data: png, leaseToken: lease.token,
                                                    claimedSHA: sha256Hex(Data("other".utf8)))
            XCTAssertEqual(wrong.status, .badRequest)
            XCTAssertTrue(errorText(wrong).hasPrefix("checksum mismatch"), errorText(wrong))
            // not a PNG (a GIF, a JPEG header, a body too short to tell)
            for body in [Data("GIF89a".utf8) + Data(repeating: 7, count: 100), Data([0xFF, 0xD8, 0xFF, 0xE0]) + Data(count: 64),
                         Data(png.prefix(10))] {
                let r = try await client.putPreview(job: 1, step: 1, data: body, leaseToken: lease.token)
                XCTAssertEqual(r.status, .badRequest)
                XCTAssertTrue(errorText(r).hasPrefix("a preview must be a PNG image"), errorText(r))
            }
            // missing or bad X-Step
            for step in [nil, "-1", "x"] as [String?] {
                var fields = headers(token: Harness.token, [.init("X-Lease-Token")!: lease.token, .init("X-Content-SHA256")!: sha256Hex(png)])
                if let step { fields[.init("X-Step")!] = step }
                let r = try await client.execute(uri: "/v1/jobs/1/preview", method: .put, headers: fields, body: ByteBuffer(bytes: png))
                XCTAssertEqual(r.status, .badRequest)
                XCTAssertEqual(errorText(r), "X-Step must be a non-negative integer")
            }
            // above 8 MiB, although the general upload limit is 64 MiB
            let big = png + Data(count: (8 << 20) + 1 - png.count)
            let tooBig = try await client.putPreview(job: 1, step: 1, data: big, leaseToken: lease.token)
            XCTAssertEqual(tooBig.status, .contentTooLarge)

            XCTAssertEqual(h.files(), filesBefore)
            XCTAssertEqual(h.tmpFiles(), [])
            let job = try await h.store.job(id: 1)
            XCTAssertNil(job?.previewSHA256)
        }
    }

    // MARK: - Over TCP

    func testClientUploadsPreviewsOverTCP() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let work = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: work) }
        try await h.app().test(.live) { tc in
            let client = try CoordinatorClient(address: "127.0.0.1:\(tc.port!)", token: Harness.token, timeout: .seconds(10))
            do {
                let styleFile = work.appendingPathComponent("style.png")
                try makePNG(width: 8, height: 8).write(to: styleFile)
                let (style, _) = try await client.uploadArtifact(file: styleFile)
                _ = try await client.submit([JobConfig(name: "waves", styleSHA256: style, imageSize: 32, batchSize: 1, steps: 5)])
                let lease = try await XCTUnwrapAsync(try await client.lease(worker: "w1", host: "box", threads: 1))

                let file = work.appendingPathComponent("preview.png")
                let png = makePNG(width: 64, height: 48, seed: 8)
                try png.write(to: file)
                let sha = try await client.uploadPreview(jobID: lease.jobID, token: lease.token, step: 5, file: file)
                XCTAssertEqual(sha, sha256Hex(png))
                let job = try await h.store.job(id: lease.jobID)
                XCTAssertEqual(job?.previewSHA256, sha)
                XCTAssertEqual(job?.previewStep, 5)
                XCTAssertEqual(try Data(contentsOf: h.artifactURL(sha)), png)

                let text = work.appendingPathComponent("notes.png")
                try Data("not an image at all".utf8).write(to: text)
                do {
                    try await client.uploadPreview(jobID: lease.jobID, token: lease.token, step: 5, file: text)
                    XCTFail("a text file was accepted as a preview")
                } catch let error as ClientError {
                    guard case .http(400, let message) = error else { return XCTFail("\(error)") }
                    XCTAssertTrue(message.contains("must be a PNG"), message)
                }
                do {
                    try await client.uploadPreview(jobID: lease.jobID, token: "0123456789abcdef0123456789abcdef", step: 5, file: file)
                    XCTFail("a stale token was accepted")
                } catch let error as ClientError {
                    XCTAssertTrue(error.isStaleLease, "\(error)")
                }
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }
}

extension TestClientProtocol {
    /// Uploads a preview under `leaseToken`.
    func putPreview(job: Int64, step: Int, data: Data, leaseToken: String, claimedSHA: String? = nil) async throws -> TestResponse {
        try await execute(uri: "/v1/jobs/\(job)/preview", method: .put,
                          headers: headers(token: Harness.token, [.init("X-Lease-Token")!: leaseToken,
                                                                  .init("X-Content-SHA256")!: claimedSHA ?? sha256Hex(data),
                                                                  .init("X-Step")!: "\(step)"]),
                          body: ByteBuffer(bytes: data))
    }
}
