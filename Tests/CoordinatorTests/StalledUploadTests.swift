@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// An upload whose client sends part of the body and then nothing is cut after
/// `StoragePolicy.uploadTimeout`, and its temporary file removed at once.
final class StalledUploadTests: XCTestCase {
    func testAStalledUploadIsCutAfterTheTimeoutOverTCP() async throws {
        let f = try StorageFixture { $0.storage.uploadTimeout = .seconds(1) }
        defer { f.cleanUp() }
        try await f.app().test(.live) { client in
            // Given a running job
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()

            // When a client sends a checkpoint's headers and 60000 of its 200000 bytes, then
            // nothing, keeping the connection open
            let full = bytes(200_000, seed: 1)
            let head = "PUT /v1/jobs/1/checkpoints/4 HTTP/1.1\r\nHost: localhost\r\n"
                + "Authorization: Bearer \(Harness.token)\r\nX-Lease-Token: \(lease.token)\r\n"
                + "X-Content-SHA256: \(sha256Hex(full))\r\nX-Images-Seen: 4\r\nContent-Length: \(full.count)\r\n\r\n"
            let fd = try connectLoopback(port: client.port!)
            defer { close(fd) }
            try sendAll(fd, Data(head.utf8) + full.prefix(60_000))
            var streaming = false
            for _ in 0..<200 where !streaming {
                try await Task.sleep(for: .milliseconds(10))
                streaming = !f.harness.tmpFiles().isEmpty
            }
            XCTAssertTrue(streaming, "the upload never reached tmp/")
            let started = ContinuousClock.now

            // Then its temporary file is removed after the 1 s timeout — well before anything else
            // could end the upload (the idle timeout is 75 s) — while the client still waits.
            // The bound is 10 timeouts, so that a slow or busy machine still passes.
            let timeout = f.config.storage.uploadTimeout
            while !f.harness.tmpFiles().isEmpty, ContinuousClock.now - started < timeout * 30 {
                try await Task.sleep(for: .milliseconds(20))
            }
            XCTAssertEqual(f.harness.tmpFiles(), [])
            XCTAssertLessThan(ContinuousClock.now - started, timeout * 10)
            // and the client is answered 408, saying why
            let answer = try readAnswer(fd, timeout: 5)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 408"), answer)
            XCTAssertTrue(answer.contains("upload stalled: nothing received for 1 s after 60000 of 200000 bytes; nothing was kept"), answer)

            // And nothing was recorded, and the coordinator goes on answering
            let rows = try await f.store.checkpoints(jobID: 1).count
            XCTAssertEqual(rows, 0)
            XCTAssertFalse(f.artifactExists(sha256Hex(full)))
            let health = try await client.send(.get, "/healthz").status
            XCTAssertEqual(health, .ok)
        }
    }

    func testIngestCutsABodyThatStopsSending() async throws {
        // Given a store with a 1 s upload timeout
        let f = try StorageFixture { $0.storage.uploadTimeout = .seconds(1) }
        defer { f.cleanUp() }
        let store = ArtifactStore(config: f.config)
        try store.prepare()

        // When a body sends 1000 of its 5000 bytes and then nothing, never ending
        let body = TestBody()
        body.send(bytes(1000, seed: 1))
        let started = ContinuousClock.now
        do {
            _ = try await store.ingest(body.stream, expected: sha256Hex(bytes(5000, seed: 1)), contentLength: 5000, kind: .model)
            XCTFail("a stalled upload was stored")
        } catch let error as APIError {
            // Then it is cut with a 408 after about a second, and its file is gone at once
            XCTAssertEqual(error.status, .requestTimeout)
            XCTAssertEqual(error.message, "upload stalled: nothing received for 1 s after 1000 of 5000 bytes; nothing was kept")
        }
        // Not before the timeout; after it, within 10 timeouts even on a slow or busy machine
        // (the body never ends, so only the timeout can have cut it).
        let elapsed = ContinuousClock.now - started
        let timeout = f.config.storage.uploadTimeout
        XCTAssertGreaterThanOrEqual(elapsed, timeout * 0.9)
        XCTAssertLessThan(elapsed, timeout * 10)
        XCTAssertEqual(f.harness.tmpFiles(), [])
        XCTAssertEqual(store.usage.current.reserved, 0)
        body.finish()
    }

    func testASlowButSteadyUploadIsNotCut() async throws {
        // Given a 1 s timeout and a body that sends a buffer every 0.3 s for 2 s
        let f = try StorageFixture { $0.storage.uploadTimeout = .seconds(1) }
        defer { f.cleanUp() }
        let store = ArtifactStore(config: f.config)
        try store.prepare()
        let data = bytes(7000, seed: 4)
        let body = TestBody()
        let sender = Task {
            for start in stride(from: 0, to: 7000, by: 1000) {
                body.send(data[start..<start + 1000])
                try await Task.sleep(for: .milliseconds(300))
            }
            body.finish()
        }

        // Then it is stored whole
        let size = try await store.ingest(body.stream, expected: sha256Hex(data), contentLength: 7000, kind: .checkpoint)
        try await sender.value
        XCTAssertEqual(size, 7000)
        XCTAssertEqual(try Data(contentsOf: try store.url(for: sha256Hex(data))), data)
    }
}

/// Reads an HTTP answer from `fd` until the connection closes, a whole body has arrived, or
/// `timeout` seconds pass.
func readAnswer(_ fd: Int32, timeout: Double) throws -> String {
    var data = Data()
    let deadline = Date().addingTimeInterval(timeout)
    var buffer = [UInt8](repeating: 0, count: 4096)
    while Date() < deadline {
        var pfd = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&pfd, 1, 100) > 0 else { continue }
        let n = recv(fd, &buffer, buffer.count, 0)
        if n <= 0 { break }
        data.append(contentsOf: buffer[0..<n])
        let text = String(decoding: data, as: UTF8.self)
        if let end = text.range(of: "\r\n\r\n"),
           let lengthLine = text[..<end.lowerBound].split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("content-length:") }),
           let length = Int(lengthLine.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)),
           text.utf8.count - text[..<end.upperBound].utf8.count >= length {
            break
        }
    }
    return String(decoding: data, as: UTF8.self)
}
