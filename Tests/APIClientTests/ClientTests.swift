import APIClient
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import XCTest

final class ClientTests: XCTestCase {
    // MARK: - Over real TCP

    func testClientRoundTripOverTCP() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        let work = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: work) }
        try await h.app().test(.live) { tc in
            let client = try CoordinatorClient(address: "localhost:\(tc.port!)", token: Harness.token, timeout: .seconds(10))
            do {
                let v1 = try await client.health()
                XCTAssertTrue(v1)
                // style image upload, content-addressed
                let styleFile = work.appendingPathComponent("wave.png")
                try makePNG(width: 24, height: 24, seed: 9).write(to: styleFile)
                let v2 = try await client.hasArtifact(sha256: sha256Hex(try Data(contentsOf: styleFile)))
                XCTAssertFalse(v2)
                let (styleSHA, styleSize) = try await client.uploadArtifact(file: styleFile)
                XCTAssertEqual(styleSHA, sha256Hex(try Data(contentsOf: styleFile)))
                XCTAssertEqual(styleSize, Int64(try Data(contentsOf: styleFile).count))
                let v3 = try await client.hasArtifact(sha256: styleSHA)
                XCTAssertTrue(v3)

                let config = JobConfig(name: "wave", styleSHA256: styleSHA, imageSize: 32, batchSize: 1, steps: 3)
                let v4 = try await client.submit([config]).created
                XCTAssertEqual(v4, [1])
                let v5 = try await client.submit([config]).skipped
                XCTAssertEqual(v5, ["wave"])
                let v6 = try await client.submit([config], force: true).created
                XCTAssertEqual(v6, [2])
                let v7 = try await client.cancel(id: 2).state
                XCTAssertEqual(v7, .cancelled)

                // a worker's life
                let lease = try await XCTUnwrapAsync(try await client.lease(worker: "w1", host: "box", threads: 2))
                XCTAssertEqual(lease.config, config)
                let v8 = try await client.lease(worker: "w2", host: "box", threads: 2)
                XCTAssertNil(v8)
                let points = (1...3).map { LossPoint(step: $0, images: $0, content: 1.5 / Double($0), style: 2.25, total: 3.75 + Double($0)) }
                let answer = try await client.heartbeat(jobID: 1, HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1,
                                                                                   imagesPerS: 2, lossPoints: [points[0]]))
                guard case .continue = answer else { return XCTFail("expected continue, got \(answer)") }

                let checkpointFile = work.appendingPathComponent("ckpt")
                let checkpoint = Data((0..<70000).map { UInt8($0 % 253) })
                try checkpoint.write(to: checkpointFile)
                let ckptSHA = try await client.uploadCheckpoint(jobID: 1, token: lease.token, step: 1, imagesSeen: 1, file: checkpointFile)
                XCTAssertEqual(ckptSHA, sha256Hex(checkpoint))
                let fetched = work.appendingPathComponent("fetched-ckpt")
                try await client.download(artifact: ckptSHA, to: fetched)
                XCTAssertEqual(try Data(contentsOf: fetched), checkpoint)

                let modelFile = work.appendingPathComponent("model.safetensors")
                let model = Data((0..<50000).map { UInt8(($0 * 31) % 256) })
                try model.write(to: modelFile)
                let modelSHA = try await client.uploadModel(jobID: 1, token: lease.token, file: modelFile)
                let done = try await client.complete(jobID: 1, token: lease.token, modelSHA256: modelSHA, step: 3, imagesDone: 3,
                                                     lossPoints: Array(points[1...]))
                XCTAssertEqual(done.state, .succeeded)

                let v9 = try await client.losses(id: 1)
                XCTAssertEqual(v9, points)
                let v10 = try await client.lossesCSV(id: 1)
                XCTAssertEqual(v10, LossCSV.render(points))
                let out = work.appendingPathComponent("wave.safetensors")
                let v11 = try await client.downloadModel(id: 1, to: out)
                XCTAssertEqual(v11, modelSHA)
                XCTAssertEqual(try Data(contentsOf: out), model)
                let detail = try await client.job(id: 1)
                XCTAssertEqual(detail.checkpoints.map(\.sha256), [ckptSHA])
                let jobs = try await client.jobs()
                XCTAssertEqual(jobs.jobs.map(\.state), [.succeeded, .cancelled])
                XCTAssertEqual(jobs.totals.succeeded, 1)

                // typed errors
                await assertClientError(try await client.heartbeat(jobID: 1, HeartbeatRequest(token: lease.token, step: 3, imagesDone: 3))) {
                    XCTAssertTrue($0.isStaleLease, "\($0)")
                    XCTAssertFalse($0.isTransient)
                }
                await assertClientError(try await client.job(id: 42)) {
                    XCTAssertEqual($0, .http(status: 404, message: "job 42 not found"))
                    XCTAssertEqual($0.description, "job 42 not found (HTTP 404)")
                }
                await assertClientError(try await client.downloadModel(id: 2, to: work.appendingPathComponent("x"))) {
                    guard case .http(404, _) = $0 else { return XCTFail("\($0)") }
                }
                await assertClientError(try await client.retry(id: 1)) { XCTAssertEqual($0.isStaleLease, true) }
                // refusals of streamed uploads arrive as answers, not as dropped connections
                let big = work.appendingPathComponent("big")
                try Data(repeating: 3, count: 3 << 20).write(to: big)
                await assertClientError(try await client.uploadCheckpoint(jobID: 1, token: lease.token, step: 3, imagesSeen: 3, file: big)) {
                    XCTAssertTrue($0.isStaleLease, "\($0)")
                }
                await assertClientError(try await client.uploadArtifact(file: big)) {
                    guard case .http(413, let message) = $0 else { return XCTFail("\($0)") }
                    XCTAssertTrue(message.contains("exceeds the limit"), message)
                }
                let stillHealthy = try await client.health()
                XCTAssertTrue(stillHealthy)

                // a download whose stored bytes were corrupted is refused and leaves nothing
                try Data("tampered".utf8).write(to: h.artifactURL(ckptSHA))
                await assertClientError(try await client.download(artifact: ckptSHA, to: fetched)) {
                    XCTAssertEqual($0, .checksumMismatch(expected: ckptSHA, actual: sha256Hex(Data("tampered".utf8))))
                }
                XCTAssertEqual(try Data(contentsOf: fetched), checkpoint)
                XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: work.path).filter { $0.hasPrefix(".") }, [])

                let wrong = try CoordinatorClient(address: "http://localhost:\(tc.port!)/", token: "wrong")
                await assertClientError(try await wrong.jobs()) {
                    XCTAssertEqual($0, .http(status: 401, message: "wrong bearer token"))
                    XCTAssertFalse($0.isTransient)
                }
                let v12 = try await wrong.health()
                XCTAssertTrue(v12)
                try await wrong.shutdown()
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    func testUnreachableCoordinatorIsATransientOneLineError() async throws {
        let port = try freePort()
        let client = try CoordinatorClient(address: "127.0.0.1:\(port)", token: nil, timeout: .seconds(5))
        await assertClientError(try await client.jobs()) {
            XCTAssertEqual($0, .unreachable("cannot reach the coordinator at 127.0.0.1:\(port): connection refused"))
            XCTAssertTrue($0.isTransient)
        }
        try await client.shutdown()
    }

    // MARK: - Addresses

    func testAddressParsing() throws {
        let cases: [(String, String, Int, String)] = [
            ("127.0.0.1:7000", "127.0.0.1", 7000, "http://127.0.0.1:7000"),
            ("http://coord.lan:7100/", "coord.lan", 7100, "http://coord.lan:7100"),
            ("[::1]:7000", "::1", 7000, "http://[::1]:7000"),
            ("[fe80::1]", "fe80::1", 7000, "http://[fe80::1]:7000"),
            ("::1", "::1", 7000, "http://[::1]:7000"),
            ("10.0.0.2", "10.0.0.2", 7000, "http://10.0.0.2:7000"),
            ("https://coord.lan:7443", "coord.lan", 7443, "https://coord.lan:7443"),
            ("HTTPS://[::1]:7443/", "::1", 7443, "https://[::1]:7443"),
        ]
        for (text, host, port, url) in cases {
            let a = try CoordinatorAddress(parsing: text)
            XCTAssertEqual(a.host, host, text)
            XCTAssertEqual(a.port, port, text)
            XCTAssertEqual(a.baseURL, url, text)
        }
        for bad in ["", ":7000", "host:0", "host:70000", "host:abc", "https://host:0", "[::1", "[::1]x", "host:7000/v1", "a b:1"] {
            XCTAssertThrowsError(try CoordinatorAddress(parsing: bad), bad) { error in
                XCTAssertTrue("\(error)".hasPrefix("invalid coordinator address"), "\(error)")
            }
        }
    }
}

// MARK: - Helpers

/// Asserts that `body` throws a `ClientError` and checks it.
func assertClientError<T>(_ body: @autoclosure () async throws -> T, file: StaticString = #filePath, line: UInt = #line,
                          _ check: (ClientError) -> Void) async {
    do {
        let value = try await body()
        XCTFail("expected a ClientError, got \(value)", file: file, line: line)
    } catch let error as ClientError {
        check(error)
    } catch {
        XCTFail("expected a ClientError, got \(type(of: error)): \(error)", file: file, line: line)
    }
}

/// A loopback port nothing listens on (bound, then released).
func freePort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw POSIXError(.EADDRINUSE) }
    return Int(UInt16(bigEndian: addr.sin_port))
}
