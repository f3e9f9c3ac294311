import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Uploads cut off midway, over a real socket: the client announces more bytes than it sends
/// and hangs up.
final class CutUploadTests: XCTestCase {
    func testCutCheckpointUploadIsRefusedAndLeavesNothing() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.live) { client in
            // Given a running job with a checkpoint at step 2
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()
            let good = Data((0..<2000).map { UInt8($0 % 101) })
            let ok = try await client.putCheckpoint(job: 1, step: 2, images: 2, data: good, leaseToken: lease.token)
            XCTAssertEqual(ok.status, .created)
            let before = h.files()

            // When a checkpoint of 200000 bytes is cut off after 60000
            let full = Data((0..<200_000).map { UInt8($0 % 239) })
            let head = "PUT /v1/jobs/1/checkpoints/4 HTTP/1.1\r\nHost: localhost\r\n"
                + "Authorization: Bearer \(Harness.token)\r\nX-Lease-Token: \(lease.token)\r\n"
                + "X-Content-SHA256: \(sha256Hex(full))\r\nX-Images-Seen: 4\r\nContent-Length: \(full.count)\r\n\r\n"
            try await cutUpload(port: client.port!, head: head, partial: full.prefix(60_000), harness: h)

            // Then nothing was recorded or kept, and step 2 is still the latest, intact
            XCTAssertEqual(h.tmpFiles(), [])
            XCTAssertEqual(h.files(), before)
            XCTAssertFalse(FileManager.default.fileExists(atPath: h.artifactURL(sha256Hex(full)).path))
            let latest = try await h.store.latestCheckpoint(jobID: 1)
            XCTAssertEqual(latest?.step, 2)
            XCTAssertEqual(try Data(contentsOf: h.artifactURL(sha256Hex(good))), good)
            let v1 = try await h.store.checkpoints(jobID: 1).count
            XCTAssertEqual(v1, 1)
            // and the coordinator still answers
            let v2 = try await client.send(.get, "/healthz").status
            XCTAssertEqual(v2, .ok)
        }
    }

    func testCutArtifactUploadLeavesNoFile() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.live) { client in
            let full = Data((0..<150_000).map { UInt8($0 % 241) })
            let head = "PUT /v1/artifacts/\(sha256Hex(full)) HTTP/1.1\r\nHost: localhost\r\n"
                + "Authorization: Bearer \(Harness.token)\r\nContent-Length: \(full.count)\r\n\r\n"
            try await cutUpload(port: client.port!, head: head, partial: full.prefix(50_000), harness: h)
            XCTAssertEqual(h.tmpFiles(), [])
            XCTAssertEqual(h.files(), [])
        }
    }

    /// Sends `head` and `partial` on a raw socket, waits until the coordinator is streaming the
    /// body to a temporary file, closes the connection, then waits for the temporary file to go.
    func cutUpload(port: Int, head: String, partial: Data, harness h: Harness) async throws {
        let fd = try connectLoopback(port: port)
        try sendAll(fd, Data(head.utf8) + partial)
        var streaming = false
        for _ in 0..<100 where !streaming {
            try await Task.sleep(for: .milliseconds(50))
            streaming = !h.tmpFiles().isEmpty
        }
        XCTAssertTrue(streaming, "the upload never reached tmp/")
        close(fd)
        for _ in 0..<100 where !h.tmpFiles().isEmpty {
            try await Task.sleep(for: .milliseconds(50))
        }
    }
}

// MARK: - Raw sockets

/// A TCP connection to `port` on 127.0.0.1, else on ::1.
func connectLoopback(port: Int) throws -> Int32 {
    let fd4 = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var a4 = sockaddr_in()
    a4.sin_family = sa_family_t(AF_INET)
    a4.sin_port = UInt16(port).bigEndian
    a4.sin_addr.s_addr = inet_addr("127.0.0.1")
    let ok4 = withUnsafePointer(to: &a4) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd4, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 } }
    if ok4 { return fd4 }
    close(fd4)
    let fd6 = socket(AF_INET6, Int32(SOCK_STREAM.rawValue), 0)
    var a6 = sockaddr_in6()
    a6.sin6_family = sa_family_t(AF_INET6)
    a6.sin6_port = UInt16(port).bigEndian
    a6.sin6_addr = in6addr_loopback
    let ok6 = withUnsafePointer(to: &a6) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
        connect(fd6, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) == 0 } }
    if ok6 { return fd6 }
    close(fd6)
    throw POSIXError(.ECONNREFUSED)
}

func sendAll(_ fd: Int32, _ data: Data) throws {
    try data.withUnsafeBytes { raw in
        var offset = 0
        while offset < raw.count {
            let n = send(fd, raw.baseAddress! + offset, raw.count - offset, Int32(MSG_NOSIGNAL))
            if n < 0 { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
            offset += n
        }
    }
}
