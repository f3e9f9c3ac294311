@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Downloads resume: `Range` on artifacts and models (206, 416), and what was sent is counted
/// by kind in `nst_served_bytes_total`.
final class RangeDownloadTests: XCTestCase {
    func testRangesOfAStoredFile() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let data = Data((0..<1000).map { UInt8(truncatingIfNeeded: $0 * 7) })
            let sha = try await client.putArtifact(data)
            func get(_ range: String?) async throws -> TestResponse {
                var h = headers()
                if let range { h[.range] = range }
                return try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: h)
            }
            let whole = try await get(nil)
            XCTAssertEqual(whole.status, .ok)
            XCTAssertEqual(whole.headers[.acceptRanges], "bytes")
            XCTAssertEqual(Data(buffer: whole.body), data)
            for (range, slice, contentRange) in [("bytes=100-199", 100..<200, "bytes 100-199/1000"),
                                                 ("bytes=900-", 900..<1000, "bytes 900-999/1000"),
                                                 ("bytes=-10", 990..<1000, "bytes 990-999/1000"),
                                                 ("bytes=990-5000", 990..<1000, "bytes 990-999/1000"),
                                                 ("bytes=0-0", 0..<1, "bytes 0-0/1000")] {
                let r = try await get(range)
                XCTAssertEqual(r.status, .partialContent, range)
                XCTAssertEqual(r.headers[.contentRange], contentRange, range)
                XCTAssertEqual(Data(buffer: r.body), data[slice], range)
            }
            let past = try await get("bytes=1000-")
            XCTAssertEqual(past.status, .rangeNotSatisfiable)
            XCTAssertEqual(past.headers[.contentRange], "bytes */1000")
            // What this server does not do in one answer is ignored: the whole file
            for odd in ["bytes=0-1,5-6", "items=0-1", "bytes=5-1", "bytes=x-y", "bytes=-0", "bytes=-1x"] {
                let r = try await get(odd)
                XCTAssertEqual(r.status, .ok, odd)
                XCTAssertEqual(Data(buffer: r.body), data, odd)
            }
        }
    }

    func testParsingEdges() {
        XCTAssertEqual(ByteRange.parse("bytes=0-", size: 0), .unsatisfiable)
        XCTAssertEqual(ByteRange.parse("bytes=-5", size: 3), .part(0...2))
        XCTAssertEqual(ByteRange.parse("bytes=9223372036854775806-", size: 10), .unsatisfiable)
        XCTAssertEqual(ByteRange.parse("bytes=0-99999999999999999999", size: 10), .whole)
        XCTAssertEqual(ByteRange.parse(nil, size: 10), .whole)
    }

    func testServedBytesAreCountedByKind() async throws {
        let weights = Data(repeating: 9, count: 300)
        let h = try Harness { $0.lossNetwork = WeightsInfo(sha256: sha256Hex(weights), size: 300) }
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let weightsSHA = try await client.putArtifact(weights)
            let style = makePNG(width: 8, height: 8)
            let styleSHA = try await client.putArtifact(style)
            _ = try await client.submit(["a"], style: styleSHA)
            let lease = try await client.lease()
            let checkpoint = Data(repeating: 4, count: 50)
            _ = try await client.putCheckpoint(job: lease.jobID, step: 1, images: 1, data: checkpoint, leaseToken: lease.token)
            for sha in [weightsSHA, styleSHA, sha256Hex(checkpoint)] {
                _ = try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: headers())
            }
            var ranged = headers()
            ranged[.range] = "bytes=0-99"
            _ = try await client.execute(uri: "/v1/artifacts/\(weightsSHA)", method: .get, headers: ranged)
            let metrics = String(buffer: try await client.send(.get, "/metrics").body)
            func value(_ kind: String) -> String? {
                metrics.split(separator: "\n").first { $0.hasPrefix("nst_served_bytes_total{kind=\"\(kind)\"}") }
                    .map { String($0.split(separator: " ").last ?? "") }
            }
            XCTAssertEqual(value("weights"), "400")
            XCTAssertEqual(value("style"), "\(style.count)")
            XCTAssertEqual(value("checkpoint"), "50")
            XCTAssertEqual(value("dataset"), "0")
        }
    }
}
