import Foundation
import XCTest

/// `orchestrator gc` and serve's storage flags, as a user runs them: the real executable on a
/// state directory a real coordinator created.
final class GCCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-gc-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    private func orchestrator(_ args: [String]) throws -> CommandResult {
        try runCommand(TrainCommandTests.binary, args, environment: ProcessInfo.processInfo.environment, logDir: dir)
    }

    /// Writes `bytes` bytes at `url`, modified `hours` ago.
    private func file(_ url: URL, bytes: Int, hours: Double) throws {
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(repeating: 7, count: bytes).write(to: url)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-hours * 3600)], ofItemAtPath: url.path)
    }

    func testGCReportsThenFreesWhatNoJobReferences() throws {
        // Given a state directory made by `serve` with the storage flags
        let state = dir.appendingPathComponent("state")
        let port = try freeTCPPort()
        let serve = try ChildProcess(
            label: "serve", executable: TrainCommandTests.binary,
            arguments: ["serve", "--port", String(port), "--state-dir", state.path, "--keep-checkpoints", "3",
                        "--gc-interval", "0", "--max-store-bytes", "64M", "--upload-timeout", "30"],
            environment: ProcessInfo.processInfo.environment, logDir: dir)
        let up = waitUntil(timeout: 30) { serve.stdout.contains("coordinator listening on") }
        serve.kill(SIGTERM)
        if serve.waitForExit(timeout: 10) == nil { serve.killAndReap() }
        XCTAssertTrue(up, serve.stderr)
        // and in it a style image no job uses (two hours old), a young one, and an upload abandoned in tmp/
        let old = String(repeating: "ab", count: 32), young = String(repeating: "cd", count: 32)
        try file(state.appendingPathComponent("artifacts/ab/\(old)"), bytes: 3000, hours: 2)
        try file(state.appendingPathComponent("artifacts/cd/\(young)"), bytes: 100, hours: 0)
        try file(state.appendingPathComponent("tmp/upload-1"), bytes: 500, hours: 2)

        // When gc runs with --dry-run
        let dry = try orchestrator(["gc", "--state-dir", state.path, "--dry-run"])

        // Then it says what it would free and frees nothing
        XCTAssertEqual(dry.status, 0, dry.stderr)
        XCTAssertTrue(dry.stdout.hasPrefix("would free 2 files, 3.4 KiB (1 unreferenced artifact 2.9 KiB, 1 abandoned upload 500 bytes)"),
                      dry.stdout)
        XCTAssertTrue(dry.stdout.contains("unreferenced artifacts"), dry.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: state.appendingPathComponent("artifacts/ab/\(old)").path))

        // When gc runs
        let real = try orchestrator(["gc", "--state-dir", state.path])

        // Then it frees them, and keeps the young file
        XCTAssertEqual(real.status, 0, real.stderr)
        XCTAssertTrue(real.stdout.hasPrefix("freed 2 files, 3.4 KiB"), real.stdout)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state.appendingPathComponent("artifacts/ab/\(old)").path))
        XCTAssertFalse(FileManager.default.fileExists(atPath: state.appendingPathComponent("tmp/upload-1").path))
        XCTAssertTrue(FileManager.default.fileExists(atPath: state.appendingPathComponent("artifacts/cd/\(young)").path))
    }

    func testBadArgumentsExitNonZeroWithOneLine() throws {
        let missing = try orchestrator(["gc", "--state-dir", dir.appendingPathComponent("nowhere").path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("no coordinator state in"), missing.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: dir.appendingPathComponent("nowhere").path), "gc creates nothing")

        let zero = try orchestrator(["gc", "--state-dir", dir.path, "--keep-checkpoints", "0"])
        XCTAssertNotEqual(zero.status, 0)
        XCTAssertTrue(zero.stderr.contains("--keep-checkpoints must be at least 1"), zero.stderr)

        for (flag, value, message) in [("--upload-timeout", "3600", "--upload-timeout must be positive and below"),
                                       ("--max-store-bytes", "12X", "--max-store-bytes"),
                                       ("--gc-interval", "-1", "--gc-interval must be from 0 to")] {
            let r = try orchestrator(["serve", "--state-dir", dir.path, "\(flag)=\(value)"])
            XCTAssertNotEqual(r.status, 0, flag)
            XCTAssertTrue(r.stderr.contains(message), r.stderr)
        }
    }
}
