import Foundation
import XCTest

/// `orchestrator bench-coordinator`: the numbers of issue 12 (heartbeat latency and requests/s
/// with and without TLS, with worker tokens) come from real requests, none failing.
final class BenchCoordinatorTests: XCTestCase {
    func testBenchRunsPlainAndOverTLSWithWorkerTokens() throws {
        let bin = try Cluster.binDirectory()
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("bench-coordinator-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: logs) }
        for extra in [[], ["--tls", "--worker-tokens"]] {
            let r = try runCommand(bin.appendingPathComponent("orchestrator"),
                                   ["bench-coordinator", "--workers", "3", "--jobs", "6", "--duration", "1", "--json"] + extra,
                                   environment: ProcessInfo.processInfo.environment, logDir: logs, timeout: 120)
            XCTAssertEqual(r.status, 0, r.stderr)
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any], r.stdout)
            XCTAssertEqual(object["tls"] as? Bool, !extra.isEmpty)
            XCTAssertEqual(object["worker_tokens"] as? Bool, !extra.isEmpty)
            XCTAssertEqual(object["errors"] as? Int, 0, r.stdout)
            XCTAssertEqual((object["coordinator"] as? String)?.hasPrefix("https://"), !extra.isEmpty)
            let heartbeats = try XCTUnwrap(object["heartbeat"] as? [String: Any])
            XCTAssertGreaterThan(heartbeats["count"] as? Int ?? 0, 0, r.stdout)
            XCTAssertGreaterThan(heartbeats["p99_ms"] as? Double ?? 0, 0, r.stdout)
        }
    }
}
