import Foundation
import XCTest

/// A coordinator and two workers on loopback train four tiny styles to the end.
final class LoopbackRunTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        super.tearDown()
    }

    func testFourStylesTwoWorkersAllSucceedAndFetch() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        let steps = 10
        let config = try cluster.writeConfig(
            styles: (1...4).map { (name: "style\($0)", imageSeed: UInt64(100 + $0), extra: [:]) }, steps: steps)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let queued = try cluster.status()
        XCTAssertEqual(queued.map(\.name).sorted(), ["style1", "style2", "style3", "style4"])

        let w1 = try cluster.startWorker("w1")
        let w2 = try cluster.startWorker("w2")
        let rows = try cluster.waitForAllFinished(timeout: 120)
        let text = try cluster.statusText()
        print("orchestrator status after the loopback run:\n\(text)")

        XCTAssertEqual(rows.count, 4)
        XCTAssertEqual(Set(rows.map(\.id)), Set(queued.map(\.id)), "no job created or lost")
        XCTAssertTrue(rows.allSatisfy { $0.state == "succeeded" && $0.attempt == 1 && $0.resumedFromStep == 0 },
                      "\(rows)")
        XCTAssertEqual(Set(rows.compactMap(\.worker)), ["w1", "w2"], "both workers trained")
        XCTAssertTrue(text.contains("style1") && text.contains("succeeded"), text)

        let out = try cluster.fetchAll()
        for job in rows { _ = try checkFetched(job, in: out, steps: steps, logDir: cluster.logDir) }
        let curves = try rows.map { try readLosses(out.appendingPathComponent("\($0.name).losses.csv")) }
        XCTAssertNotEqual(curves[0].map(\.total), curves[1].map(\.total), "different styles give different losses")

        for worker in [w1, w2] {
            XCTAssertTrue(worker.isRunning, "\(worker.label) keeps polling for work")
            XCTAssertTrue(worker.stderr.contains(": checkpoint step "), "no checkpoint uploaded: \(worker.stderr)")
            XCTAssertTrue(worker.stderr.contains("completed"), worker.stderr)
        }
    }
}
