import APIClient
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

/// Issue 11, finding 12: the client trusted what the server sent — a job named `../../x` was
/// written outside `--out`, and a download was written to disk in full before its hash was
/// checked. A hostile coordinator here is a bare router.
final class DownloadSafetyTests: XCTestCase {
    private let sha = String(repeating: "ab", count: 32)

    private func hostile(declareLength: Bool) -> some ApplicationProtocol {
        let router = Router()
        router.get("/v1/artifacts/:sha") { _, _ -> Response in
            let chunk = ByteBuffer(repeating: 0x41, count: 64 << 10)
            if declareLength {
                return Response(status: .ok, headers: [.contentLength: "\(80 * chunk.readableBytes)"],
                                body: .init { writer in for _ in 0..<80 { try await writer.write(chunk) } })
            }
            return Response(status: .ok, body: .init { writer in for _ in 0..<80 { try await writer.write(chunk) } })
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    func testADownloadLongerThanExpectedIsCutAndLeavesNothing() async throws {
        for declared in [true, false] {
            let dir = try makeTempDir()
            defer { try? FileManager.default.removeItem(at: dir) }
            try await hostile(declareLength: declared).test(.live) { tc in
                let client = try CoordinatorClient(address: "127.0.0.1:\(tc.port!)", token: nil, timeout: .seconds(10))
                await assertClientError(try await client.download(artifact: self.sha, to: dir.appendingPathComponent("ck"),
                                                                  expectedSize: 100_000)) { error in
                    guard case .badResponse(let why) = error else { return XCTFail("\(error)") }
                    XCTAssertTrue(why.contains("100000"), why)
                }
                try await client.shutdown()
            }
            let left = try FileManager.default.contentsOfDirectory(atPath: dir.path)
            XCTAssertEqual(left, [], "declared length \(declared): nothing written")
        }
    }

    func testAJobNameThatIsNotASafeFileNameIsRefused() throws {
        func status(_ name: String) -> JobStatus {
            JobStatus(id: 7, name: name, state: .succeeded, attempt: 1, maxAttempts: 3, step: 1, stepsTotal: 1, imagesDone: 1,
                      imagesTotal: 1, worker: nil, resumedFromStep: 0, content: nil, style: nil, total: nil, imagesPerS: nil,
                      etaS: nil, recentTotals: [], failureReason: nil, modelSHA256: nil, previewStep: nil,
                      createdAt: Date(), updatedAt: Date())
        }
        XCTAssertEqual(try CoordinatorClient.fileStem(for: status("wave-2.b_c")), "wave-2.b_c")
        for name in ["../../x", "/etc/passwd", ".hidden", "a/b", "", "x\u{1B}[2J"] {
            XCTAssertThrowsError(try CoordinatorClient.fileStem(for: status(name)), name) { error in
                XCTAssertTrue("\(error)".contains("not a safe file name"), "\(error)")
            }
        }
    }
}
