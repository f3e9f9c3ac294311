import Foundation
import XCTest

/// The worker's rules, each with real processes: a graceful SIGTERM hands the job back after a
/// checkpoint; a cancelled job is dropped at once; a non-finite loss fails the job for good.
final class WorkerRulesTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        super.tearDown()
    }

    func testSIGTERMUploadsACheckpointReleasesTheJobAndExitsZero() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        let steps = 30
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(styles: [("gentle", 51, [:])], steps: steps))

        let first = try cluster.startWorker("first")
        let id = try leasedJobID(cluster.waitForLog(first, containing: "leased job "))
        _ = try cluster.waitForLog(first, containing: "job \(id): checkpoint step ")
        first.kill(SIGTERM)
        XCTAssertEqual(first.waitForExit(timeout: 30), 0, first.stderr)
        let released = try XCTUnwrap(first.stderr.split(separator: "\n").first { $0.contains("released at step") },
                                     first.stderr)
        let step = try XCTUnwrap(Int(released.split(separator: " ").last ?? ""))
        XCTAssertEqual(lastUploadedCheckpoint(in: first.stderr, job: id), step, "the hand-back checkpoint is at the released step")
        let queued = try XCTUnwrap(cluster.status().first { $0.id == id })
        XCTAssertEqual(queued.state, "queued")
        XCTAssertEqual(queued.attempt, 1, "a hand-back is not a failed attempt")

        let second = try cluster.startWorker("second", extra: ["--once"])
        XCTAssertEqual(second.waitForExit(timeout: 120), 0, second.stderr)
        XCTAssertTrue(second.stderr.contains("resuming job \(id) from step \(step) (next step \(step + 1))"), second.stderr)
        let done = try XCTUnwrap(cluster.status().first { $0.id == id })
        XCTAssertEqual(done.resumedFromStep, step)
        XCTAssertEqual(done.attempt, 1)
        _ = try checkFetched(done, in: try cluster.fetchAll(), steps: steps, logDir: cluster.logDir)

        // --once with nothing queued exits 0 at once.
        let idle = try cluster.startWorker("idle", extra: ["--once"])
        XCTAssertEqual(idle.waitForExit(timeout: 30), 0, idle.stderr)
        XCTAssertTrue(idle.stderr.contains("no job queued"), idle.stderr)
    }

    func testCancelledJobIsDroppedAtOnceAndTheWorkerMovesOn() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let config = try cluster.writeConfig(
            styles: [("long", 61, ["steps": 400, "priority": 1]), ("short", 62, [:])], steps: 6)
        try cluster.submit(config)
        let worker = try cluster.startWorker("w")
        let id = try leasedJobID(cluster.waitForLog(worker, containing: "leased job "))
        XCTAssertTrue(waitUntil(timeout: 60) { ((try? cluster.status()) ?? []).contains { $0.id == id && $0.step >= 4 } })
        let r = try cluster.cli(["cancel", String(id)])
        XCTAssertEqual(r.status, 0, r.stderr)
        // The heartbeat answers "cancel"; an upload racing the cancel gets 409 instead. Either way
        // the worker stops the job at once and reports nothing more for it.
        let dropped = try cluster.waitForLog(worker, containing: "job \(id) \"long\": dropped: ", timeout: 30)
        XCTAssertTrue(dropped.hasSuffix("dropped: cancelled") || dropped.contains("dropped: stale lease"), dropped)
        let rows = try cluster.waitForAllFinished(timeout: 60)
        let long = try XCTUnwrap(rows.first { $0.id == id })
        XCTAssertEqual(long.state, "cancelled")
        XCTAssertLessThan(long.step, 400)
        XCTAssertEqual(rows.first { $0.name == "short" }?.state, "succeeded", "the worker moved on to the next job")
        XCTAssertTrue(worker.isRunning)
        XCTAssertFalse(worker.stderr.contains("\"long\" completed"), worker.stderr)
    }

    func testNonFiniteLossFailsTheJobWithoutRetry() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        // lr 1e30 blows the weights up after the first update: the loss is NaN at step 2.
        let config = try cluster.writeConfig(
            styles: [("diverges", 71, ["lr": 1e30, "priority": 1]), ("fine", 72, [:])], steps: 6)
        try cluster.submit(config)
        let worker = try cluster.startWorker("w")
        let rows = try cluster.waitForAllFinished(timeout: 60)
        let bad = try XCTUnwrap(rows.first { $0.name == "diverges" })
        XCTAssertEqual(bad.state, "failed")
        XCTAssertEqual(bad.attempt, 1, "a non-finite loss is not retried")
        XCTAssertTrue(bad.failureReason?.contains("loss is not finite at step 2") == true, "\(bad)")
        XCTAssertEqual(rows.first { $0.name == "fine" }?.state, "succeeded")
        XCTAssertTrue(worker.stderr.contains("reported failed (not retryable)"), worker.stderr)
    }
}
