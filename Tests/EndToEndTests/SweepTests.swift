import Foundation
import XCTest

/// Issue 14, part 1, as a user runs it: `submit --dry-run` lists a sweep's jobs without any
/// coordinator; submitted, they train, and `status` shows them together with their params.
final class SweepTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    func testASweepIsListedWithoutACoordinatorThenTrainsAsAGroup() throws {
        let cluster = try Cluster(leaseTimeout: 5)
        self.cluster = cluster
        let config = try cluster.writeConfig(styles: [("wave", 91, ["style_weight": ["sweep": [1e4, 3e4]], "lr": ["sweep": [0.001, 0.002]]]),
                                                      ("solo", 92, [:])], steps: 2)
        // Nothing listens: --dry-run must not need the coordinator
        let dry = try cluster.cli(["submit", config.path, "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        for line in ["wave-1  wave   lr=0.001 style_weight=10000", "wave-4  wave   lr=0.002 style_weight=30000",
                     "5 jobs (1 sweep) would be created; nothing was sent"] {
            XCTAssertTrue(dry.stdout.contains(line), "\(line) in:\n\(dry.stdout)")
        }
        let json = try cluster.cli(["submit", config.path, "--dry-run", "--json"])
        let jobs = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [[String: Any]], json.stdout)
        XCTAssertEqual(jobs.map { $0["name"] as? String }, ["wave-1", "wave-2", "wave-3", "wave-4", "solo"])
        XCTAssertEqual(jobs[2]["params"] as? [String: Double], ["lr": 0.002, "style_weight": 1e4])
        XCTAssertEqual(try cluster.cli(["submit", config.path, "--json"]).status == 0, false, "--json needs --dry-run")

        // Submitted and trained, the jobs carry their group and params
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        _ = try cluster.startWorker("w")
        let rows = try cluster.waitForAllFinished(timeout: 180)
        XCTAssertEqual(rows.map(\.state), Array(repeating: "succeeded", count: 5))
        let status = try cluster.cli(["status", "--json"])
        let listed = try XCTUnwrap((try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["jobs"] as? [[String: Any]])
        XCTAssertEqual(listed.map { $0["group"] as? String }, ["wave", "wave", "wave", "wave", nil])
        XCTAssertEqual(listed[3]["params"] as? [String: Double], ["lr": 0.002, "style_weight": 3e4])
        let table = try cluster.statusText()
        XCTAssertTrue(table.contains("wave (sweep of lr, style_weight: 4 jobs, 4 succeeded)"), table)
        XCTAssertTrue(table.contains("  wave-3"), table)
        XCTAssertTrue(table.contains("lr=0.002 style_weight=10000"), table)
    }
}
