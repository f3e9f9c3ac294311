import Foundation
import XCTest

/// Issue 14, part 5: `orchestrator promote JOB --steps N` continues a succeeded job's final
/// weights and Adam state to a longer budget, and the new job's losses are the ones a single
/// run of that length has.
final class PromoteTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    func testAPromotedJobContinuesWithTheLossesOfAnUninterruptedLongerRun() throws {
        let cluster = try Cluster(leaseTimeout: 5)
        self.cluster = cluster
        // A short trial (7 steps: its end is not a checkpoint step) and the same style at full length
        let config = try cluster.writeConfig(styles: [("short", 21, ["steps": 7, "priority": 2]),
                                                      ("long", 21, ["steps": 14, "priority": 1])], steps: 14)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let worker = try cluster.startWorker("w")
        XCTAssertEqual(try cluster.waitForAllFinished(timeout: 120).map(\.state), ["succeeded", "succeeded"], worker.stderr)

        // Refusals first: no budget, a budget not beyond it, a job that did not succeed
        let none = try cluster.cli(["promote", "short"])
        XCTAssertNotEqual(none.status, 0)
        XCTAssertTrue(none.stderr.contains("give --steps or --epochs"), none.stderr)
        let shorter = try cluster.cli(["promote", "short", "--steps", "7"])
        XCTAssertNotEqual(shorter.status, 0)
        XCTAssertTrue(shorter.stderr.contains("steps: 7 is not beyond the 7 steps job 1 trained"), shorter.stderr)

        // When the short one is promoted to 14 steps
        let promoted = try cluster.cli(["promote", "short", "--steps", "14", "--name", "short-long"])
        XCTAssertEqual(promoted.status, 0, promoted.stderr)
        XCTAssertTrue(promoted.stdout.contains("created job 3: short-long, continuing job 1 (short) from step 7 to 14 steps"), promoted.stdout)
        let rows = try cluster.waitForAllFinished(timeout: 120)
        XCTAssertEqual(rows.map(\.state), ["succeeded", "succeeded", "succeeded"], worker.stderr)
        XCTAssertTrue(worker.stderr.contains("resuming job 3 from step 7"), worker.stderr)
        XCTAssertEqual(rows.first { $0.name == "short-long" }?.resumedFromStep, 7)

        // Then its curve is the long run's, step for step: the first 7 points are the short
        // job's, the next 7 continue them
        let out = try cluster.fetchAll()
        let long = try readLosses(out.appendingPathComponent("long.losses.csv"))
        let continued = try readLosses(out.appendingPathComponent("short-long.losses.csv"))
        XCTAssertEqual(continued.map(\.step), Array(1...14))
        for (a, b) in zip(long, continued) {
            XCTAssertEqual(b.total, a.total, accuracy: 1e-5 * abs(a.total), "total loss at step \(a.step)")
        }
        XCTAssertEqual(try Data(contentsOf: out.appendingPathComponent("short-long.safetensors")),
                       try Data(contentsOf: out.appendingPathComponent("long.safetensors")), "the same final weights")
    }
}
