import Foundation
import XCTest

/// The coordinator SIGKILLed mid-run and restarted on the same state dir and port: the workers
/// keep training, keep their unsent reports, and deliver them when it is back.
final class CoordinatorRestartTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        super.tearDown()
    }

    func testCoordinatorKilledAndRestartedLosesAndDuplicatesNothing() throws {
        // The lease outlives the outage, so the workers' leases survive it.
        let cluster = try Cluster(leaseTimeout: 15)
        self.cluster = cluster
        let steps = 16
        let config = try cluster.writeConfig(
            styles: (1...4).map { (name: "s\($0)", imageSeed: UInt64(30 + $0), extra: [:]) }, steps: steps)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let before = try cluster.status()
        XCTAssertEqual(before.count, 4)
        let w1 = try cluster.startWorker("w1")
        let w2 = try cluster.startWorker("w2")

        let midRun = waitUntil(timeout: 60) {
            let rows = (try? cluster.status()) ?? []
            return rows.contains { $0.state == "running" && $0.step >= 4 }
        }
        XCTAssertTrue(midRun, "no job reached step 4")
        let coordinator = try XCTUnwrap(cluster.coordinator)
        coordinator.kill(SIGKILL)
        XCTAssertNotNil(coordinator.waitForExit(timeout: 10))
        // Longer than the client's connect timeout, so the workers do see it unreachable.
        Thread.sleep(forTimeInterval: 6)
        try cluster.startCoordinator(label: "coordinator-restarted")
        try cluster.waitForCoordinator()

        let rows = try cluster.waitForAllFinished(timeout: 180)
        print("orchestrator status after the coordinator restart:\n\(try cluster.statusText())")
        XCTAssertEqual(rows.count, 4, "no job duplicated or lost")
        XCTAssertEqual(rows.map(\.id).sorted(), before.map(\.id).sorted())
        XCTAssertEqual(Set(rows.map(\.name)).count, 4)
        XCTAssertTrue(rows.allSatisfy { $0.state == "succeeded" }, "\(rows)")
        let sawOutage = [w1, w2].contains { $0.stderr.contains("coordinator unreachable: retrying in") }
        XCTAssertTrue(sawOutage, "no worker noticed the outage:\n\(w1.stderr)\n\(w2.stderr)")
        for w in [w1, w2] {
            // Backoff: a streak starts at 0.5 s ± 25 % jitter and never waits more than 10 s.
            let delays = retryDelays(in: w.stderr)
            if let first = delays.first { XCTAssertEqual(first, 0.5, accuracy: 0.13, "\(delays)") }
            XCTAssertTrue(delays.allSatisfy { $0 <= 10 }, "\(delays)")
        }
        let out = try cluster.fetchAll()
        for job in rows { _ = try checkFetched(job, in: out, steps: steps, logDir: cluster.logDir) }
    }

    /// Issue 11, finding 6: an outage longer than the lease used to expire every lease at the
    /// restart, charge an attempt and throw the work since the last checkpoint away ("three
    /// maintenance restarts fail every running job"). Now the restarted coordinator gives each
    /// running lease a full period of grace, the workers (whose retries never wait longer than
    /// a third of the lease) are heard again within it, and nothing is charged or lost.
    func testAnOutageLongerThanTheLeaseChargesNoAttempt() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        let steps = 40
        let config = try cluster.writeConfig(styles: [("x", 81, [:]), ("y", 82, [:])], steps: steps)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let workers = [try cluster.startWorker("w1"), try cluster.startWorker("w2")]
        let bothRunning = waitUntil(timeout: 60) {
            let rows = (try? cluster.status()) ?? []
            return rows.count == 2 && rows.allSatisfy { $0.state == "running" && $0.step >= 4 }
        }
        XCTAssertTrue(bothRunning, "both jobs should be past their first checkpoint")
        let coordinator = try XCTUnwrap(cluster.coordinator)
        coordinator.kill(SIGKILL)
        XCTAssertNotNil(coordinator.waitForExit(timeout: 10))
        Thread.sleep(forTimeInterval: 5)
        try cluster.startCoordinator(label: "coordinator-restarted")
        try cluster.waitForCoordinator()

        let rows = try cluster.waitForAllFinished(timeout: 180)
        print("orchestrator status after an outage longer than the lease:\n\(try cluster.statusText())")
        XCTAssertEqual(rows.count, 2)
        let logs = workers.map(\.stderr).joined(separator: "\n")
        XCTAssertTrue(logs.contains("coordinator unreachable: retrying in"), "the workers saw the outage")
        XCTAssertFalse(logs.contains("dropped: stale lease"), logs)
        let restartedLog = cluster.coordinator?.stderr ?? ""
        XCTAssertTrue(restartedLog.contains("2 running lease(s) given a full lease period of grace"), restartedLog)
        let out = try cluster.fetchAll()
        for job in rows {
            XCTAssertEqual(job.state, "succeeded")
            XCTAssertEqual(job.attempt, 1, "\(job.name): the outage was not charged to the worker")
            XCTAssertEqual(job.resumedFromStep, 0, "\(job.name): trained through without a resume")
            _ = try checkFetched(job, in: out, steps: steps, logDir: cluster.logDir)
        }
    }
}

/// The delays of the worker's `coordinator unreachable: retrying in X s` lines, in order.
func retryDelays(in log: String) -> [Double] {
    let marker = "coordinator unreachable: retrying in "
    return log.split(separator: "\n").compactMap { line in
        guard let r = line.range(of: marker) else { return nil }
        return Double(line[r.upperBound...].prefix { $0.isNumber || $0 == "." })
    }
}
