import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Issue 11, finding 10: idle connections were never closed.
final class IdleTimeoutTests: XCTestCase {
    func testAnIdleConnectionIsClosed() async throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        var config = CoordinatorConfig(host: "127.0.0.1", port: 0, stateDir: dir, token: "t")
        config.idleTimeout = 1
        let store = try JobStore(path: config.databasePath)
        defer { try? store.close() }
        try await buildCoordinator(config, store: store).test(.live) { client in
            let port = try XCTUnwrap(client.port)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(fd) }
            var addr = sockaddr_in()
            addr.sin_family = sa_family_t(AF_INET)
            addr.sin_port = UInt16(port).bigEndian
            addr.sin_addr.s_addr = inet_addr("127.0.0.1")
            let connected = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            XCTAssertEqual(connected, 0)
            // One request, answered; then nothing.
            let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
            _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            var timeout = timeval(tv_sec: 10, tv_usec: 0)
            setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
            let started = Date()
            var buffer = [UInt8](repeating: 0, count: 4096)
            var received = 0
            var closed = false
            while Date().timeIntervalSince(started) < 10 {
                let n = recv(fd, &buffer, buffer.count, 0)
                if n > 0 { received += n; continue }
                closed = n == 0
                break
            }
            let waited = Date().timeIntervalSince(started)
            XCTAssertGreaterThan(received, 0, "the request was answered")
            XCTAssertTrue(closed, "the server closed the idle connection")
            XCTAssertLessThan(waited, 9, "within about the idle timeout (1 s), not at the 10 s receive timeout")
        }
    }
}
