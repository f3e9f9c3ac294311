import APIClient
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import NIOCore
import XCTest

/// A download cut short keeps what arrived and the next attempt asks only for the rest; a
/// partial file that does not hash right, or a server that sends the whole file again, starts
/// over. The server here is a bare router that cuts its first answer halfway.
final class ResumeDownloadTests: XCTestCase {
    let data = Data((0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 31) })

    /// Serves `data`: cuts the first answer after half (when `cutFirst`), honours `Range: bytes=N-`
    /// (when `ranges`), and records the Range headers it saw.
    func server(cutFirst: Bool, ranges: Bool, seen: Locked<[String?]>) -> some ApplicationProtocol {
        let router = Router()
        let data = self.data
        let calls = Locked(0)
        router.get("/v1/artifacts/:sha") { request, _ -> Response in
            let range = request.headers[.range]
            seen.withLock { $0.append(range) }
            let call = calls.withLock { $0 += 1; return $0 }
            if cutFirst && call == 1 {
                let half = ByteBuffer(bytes: data.prefix(data.count / 2))
                return Response(status: .ok, headers: [.contentLength: "\(data.count)"],
                                body: .init { writer in
                                    try await writer.write(half)
                                    throw CancellationError()  // the connection drops mid-body
                                })
            }
            if ranges, let range, range.hasPrefix("bytes="), let start = Int(range.dropFirst(6).dropLast()) {
                let rest = ByteBuffer(bytes: data[start...])
                return Response(status: .partialContent,
                                headers: [.contentLength: "\(rest.readableBytes)",
                                          .contentRange: "bytes \(start)-\(data.count - 1)/\(data.count)"],
                                body: .init(byteBuffer: rest))
            }
            return Response(status: .ok, headers: [.contentLength: "\(data.count)"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
        }
        return Application(router: router, configuration: .init(address: .hostname("127.0.0.1", port: 0)))
    }

    func testACutDownloadResumesWithARange() async throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let seen = Locked([String?]())
        let sha = FileDigest.sha256(of: data)
        let file = dir.appendingPathComponent("weights")
        try await server(cutFirst: true, ranges: true, seen: seen).test(.live) { tc in
            let client = try CoordinatorClient(address: "127.0.0.1:\(tc.port!)", token: nil, timeout: .seconds(10))
            do {
                _ = try await client.download(artifact: sha, to: file, expectedSize: Int64(self.data.count))
                XCTFail("the first download was cut and must fail")
            } catch let error as ClientError {
                XCTAssertTrue(error.isTransient, "\(error)")
            }
            let partial = CoordinatorClient.partialFile(for: file)
            let kept = try Data(contentsOf: partial)
            XCTAssertGreaterThan(kept.count, 0)
            XCTAssertEqual(kept, self.data.prefix(kept.count), "what arrived is kept")
            XCTAssertFalse(FileManager.default.fileExists(atPath: file.path))

            try await client.download(artifact: sha, to: file, expectedSize: Int64(self.data.count))
            XCTAssertEqual(try Data(contentsOf: file), self.data)
            XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
            XCTAssertEqual(seen.withLock { $0 }, [nil, "bytes=\(kept.count)-"])
            try await client.shutdown()
        }
    }

    func testABadPartialFileOrAWholeAnswerStartsOver() async throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sha = FileDigest.sha256(of: data)
        for ranges in [true, false] {
            let seen = Locked([String?]())
            let file = dir.appendingPathComponent("w-\(ranges)")
            let partial = CoordinatorClient.partialFile(for: file)
            try Data(repeating: 0xEE, count: 1000).write(to: partial)  // not the file's first bytes
            try await server(cutFirst: false, ranges: ranges, seen: seen).test(.live) { tc in
                let client = try CoordinatorClient(address: "127.0.0.1:\(tc.port!)", token: nil, timeout: .seconds(10))
                if ranges {
                    // The kept bytes are wrong: the checksum fails and they are thrown away ...
                    do {
                        try await client.download(artifact: sha, to: file)
                        XCTFail("a wrong partial file must not pass")
                    } catch ClientError.checksumMismatch {}
                    XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
                }
                // ... and the next download is whole (a server ignoring Range: whole at once)
                try await client.download(artifact: sha, to: file)
                XCTAssertEqual(try Data(contentsOf: file), self.data)
                XCTAssertFalse(FileManager.default.fileExists(atPath: partial.path))
                try await client.shutdown()
            }
            XCTAssertEqual(seen.withLock { $0 }, ranges ? ["bytes=1000-", nil] : ["bytes=1000-"])
        }
    }
}

/// A value behind a lock, for what the test server's handlers record.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    init(_ value: Value) { self.value = value }
    func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}
