import Foundation
import XCTest

/// Issue 12, part 2: worker tokens with the real CLI, coordinator and worker processes.
final class WorkerTokenTests: XCTestCase {
    var cluster: Cluster!

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    func testAWorkerTrainsWithItsOwnTokenWhichCannotAdministerAndIsRefusedOnceRevoked() throws {
        cluster = try Cluster(leaseTimeout: 5)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()

        // Given a worker token made by the admin, printed once on stdout
        let made = try cluster.cli(["token", "create", "--worker", "--name", "gpu1"])
        XCTAssertEqual(made.status, 0, made.stderr)
        let token = made.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        XCTAssertNotNil(token.range(of: "^nstw_[0-9a-f]{64}$", options: .regularExpression), token)
        XCTAssertTrue(made.stderr.contains("shown this once"), made.stderr)
        let tokenFile = cluster.root.appendingPathComponent("gpu1.token")
        try (token + "\n").write(to: tokenFile, atomically: true, encoding: .utf8)
        let withWorkerToken = cluster.environment.merging(["ORCHESTRATOR_TOKEN": token]) { $1 }

        // When a worker trains with it
        let config = try cluster.writeConfig(styles: [("scoped", 43, [:])], steps: 4)
        try cluster.submit(config)
        try cluster.startWorker("gpu1", extra: ["--token-file", tokenFile.path])
        XCTAssertEqual(try cluster.waitForAllFinished(timeout: 120).map(\.state), ["succeeded"])

        // Then the job is done and the token list shows its use, never the token
        let list = try cluster.cli(["token", "list"])
        XCTAssertEqual(list.status, 0, list.stderr)
        XCTAssertTrue(list.stdout.contains("gpu1"), list.stdout)
        XCTAssertTrue(list.stdout.contains("active"), list.stdout)
        XCTAssertFalse(list.stdout.contains("never"), "the lease is recorded as its last use: \(list.stdout)")
        XCTAssertFalse(list.stdout.contains(token))
        let database = try Data(contentsOf: cluster.stateDir.appendingPathComponent("jobs.sqlite"))
        XCTAssertNil(database.range(of: Data(token.utf8)), "the database keeps only the token's hash")

        // And the worker token cannot administer: status, submit, cancel, tokens → 403 with a message
        for arguments in [["status"], ["cancel", "--all"], ["token", "list"], ["submit", config.path]] {
            let r = try runCommand(cluster.orchestrator, arguments + ["--coordinator", cluster.address],
                                   environment: withWorkerToken, logDir: cluster.logDir, timeout: 30)
            XCTAssertNotEqual(r.status, 0, arguments.joined(separator: " "))
            XCTAssertTrue(r.stderr.contains("HTTP 403"), "\(arguments): \(r.stderr)")
            XCTAssertTrue(r.stderr.contains("worker token 1 (gpu1)"), "\(arguments): \(r.stderr)")
        }

        // When the admin revokes it
        let revoke = try cluster.cli(["token", "revoke", "1"])
        XCTAssertEqual(revoke.status, 0, revoke.stderr)
        XCTAssertTrue(revoke.stdout.contains("revoked worker token 1 (gpu1)"), revoke.stdout)

        // Then a worker with it is refused at once with a clear message, and takes nothing
        let second = try cluster.writeConfig(styles: [("after", 44, [:])], steps: 4)
        try cluster.submit(second)
        let refused = try cluster.startWorker("gpu1-again", extra: ["--token-file", tokenFile.path, "--once"])
        XCTAssertNotNil(refused.waitForExit(timeout: 60), "the worker must exit")
        XCTAssertNotEqual(refused.waitForExit(timeout: 1), 0)
        XCTAssertTrue(refused.stderr.contains("revoked"), refused.stderr)
        XCTAssertEqual(try cluster.status().map(\.state), ["succeeded", "queued"])
        let listed = try cluster.cli(["token", "list"])
        XCTAssertTrue(listed.stdout.contains("revoked"), listed.stdout)
    }
}
