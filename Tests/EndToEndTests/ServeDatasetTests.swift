import Foundation
import XCTest

/// Issue 13, part 1, as a user runs it: `orchestrator serve --dataset NAME=DIR` builds the
/// folder's manifest and shards before listening (progress on stderr, a summary line), jobs
/// pin it, and a restart over the unchanged folder reuses the manifest without hashing again.
/// (Submit resolution, leases, GC: `ServedDatasetTests` and `DatasetTests`.)
final class ServeDatasetTests: XCTestCase {
    var cluster: Cluster!

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    /// The summary line `serve` printed for `name`.
    func summary(_ child: ChildProcess, _ name: String) throws -> String {
        try XCTUnwrap(child.stdout.split(separator: "\n").first { $0.hasPrefix("dataset \(name): ") }.map(String.init),
                      "no summary line in: \(child.stdout)")
    }

    /// `orchestrator datasets --json` (`GET /v1/datasets`): the JSON array.
    func servedDatasets() throws -> [[String: Any]] {
        let r = try cluster.cli(["datasets", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
    }

    func testServeBuildsTheDatasetBeforeListeningAndARestartReusesItsManifest() throws {
        cluster = try Cluster()
        // The cluster's 8 synthetic images, and a file that does not decode
        try Data("not a picture".utf8).write(to: cluster.datasetDir.appendingPathComponent("zz-broken.png"))
        cluster.serveArguments = ["--dataset", "tiny=\(cluster.datasetDir.path)"]
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let first = try XCTUnwrap(cluster.coordinator)

        // Then it showed progress, excluded the broken file and summed up
        XCTAssertTrue(first.stderr.contains("dataset tiny: scanning"), first.stderr)
        XCTAssertTrue(first.stderr.contains("dataset tiny: excluded zz-broken.png"), first.stderr)
        let built = try summary(first, "tiny")
        XCTAssertTrue(built.contains(": 8 files ("), built)
        XCTAssertTrue(built.contains("1 excluded, 1 shards (1 written, 0 reused)"), built)
        XCTAssertTrue(built.contains("9 files hashed, 0 from the cache"), built)
        XCTAssertTrue(try cluster.waitForLog(first, containing: "serving dataset tiny").contains("the default"))
        let listed = try servedDatasets()
        XCTAssertEqual(listed.count, 1)
        let digest = try XCTUnwrap(listed.first?["sha256"] as? String)
        XCTAssertEqual(listed.first?["name"] as? String, "tiny")
        XCTAssertEqual(listed.first?["files"] as? Int, 8)
        XCTAssertEqual(listed.first?["excluded"] as? Int, 1)
        XCTAssertTrue(built.contains("manifest \(digest.prefix(12))"), built)

        // And a submitted job pins it: status --json and the table show it
        let config = try cluster.writeConfig(styles: [("pinned", 81, [:])], steps: 2)
        try cluster.submit(config)
        let json = try cluster.cli(["status", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let document = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        let job = try XCTUnwrap((document["jobs"] as? [[String: Any]])?.first)
        XCTAssertEqual(job["dataset"] as? String, "tiny")
        XCTAssertEqual(job["dataset_sha256"] as? String, digest)
        XCTAssertTrue(job.keys.contains("loss_network"), "\(job)")
        XCTAssertTrue(try cluster.statusText().contains("tiny@\(digest.prefix(6))"))

        // When the coordinator restarts over the unchanged folder
        first.kill(SIGTERM)
        XCTAssertNotNil(first.waitForExit(timeout: 30))
        let started = Date()
        try cluster.startCoordinator(label: "coordinator-restarted")
        try cluster.waitForCoordinator()
        let seconds = Date().timeIntervalSince(started)
        let second = try XCTUnwrap(cluster.coordinator)

        // Then nothing was hashed or written again: the same manifest, from the scan cache
        let again = try summary(second, "tiny")
        XCTAssertTrue(again.contains("0 files hashed, 9 from the cache"), again)
        XCTAssertTrue(again.contains("(0 written, 1 reused)"), again)
        XCTAssertTrue(again.contains("manifest \(digest.prefix(12))"), again)
        XCTAssertEqual(try servedDatasets().first?["sha256"] as? String, digest)
        XCTAssertFalse(try cluster.waitForLog(second, containing: "serving dataset tiny").contains("a new version"))
        print("restart with an unchanged dataset: listening after \(String(format: "%.2f", seconds)) s; \(again)")
        let table = try cluster.cli(["datasets"])
        XCTAssertTrue(table.stdout.contains("tiny (default)") && table.stdout.contains(String(digest.prefix(12))), table.stdout)

        // When it restarts with smaller shards: another layout, so another manifest version,
        // with no file hashed again; the queued job keeps the version it pinned
        second.kill(SIGTERM)
        XCTAssertNotNil(second.waitForExit(timeout: 30))
        cluster.serveArguments += ["--dataset-shard-bytes", "4000"]
        try cluster.startCoordinator(label: "coordinator-small-shards")
        try cluster.waitForCoordinator()
        let third = try XCTUnwrap(cluster.coordinator)
        let resharded = try summary(third, "tiny")
        XCTAssertTrue(resharded.contains("0 files hashed"), resharded)
        XCTAssertFalse(resharded.contains(" 1 shards"), resharded)
        let newDigest = try XCTUnwrap(try servedDatasets().first?["sha256"] as? String)
        XCTAssertNotEqual(newDigest, digest)
        XCTAssertTrue(try cluster.waitForLog(third, containing: "serving dataset tiny").contains("a new version"))
        let rows = try JSONSerialization.jsonObject(with: Data(try cluster.cli(["status", "--json"]).stdout.utf8)) as? [String: Any]
        XCTAssertEqual(((rows?["jobs"] as? [[String: Any]])?.first)?["dataset_sha256"] as? String, digest)
    }

    func testBadDatasetArgumentsStopServeBeforeItListens() throws {
        cluster = try Cluster()
        let empty = cluster.root.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try Data("text".utf8).write(to: empty.appendingPathComponent("notes.txt"))
        let cases: [([String], String)] = [
            (["--dataset", "coco"], "expected NAME=DIR"),
            (["--dataset", "a/b=\(cluster.datasetDir.path)"], "the name only letters"),
            (["--dataset", "a=\(cluster.datasetDir.path)", "--dataset", "a=\(empty.path)"], "--dataset a is given twice"),
            (["--dataset", "a=\(cluster.root.path)/missing"], "is not a folder"),
            (["--dataset", "a=\(empty.path)"], "--dataset a:"),
        ]
        for (extra, message) in cases {
            let r = try runCommand(cluster.orchestrator,
                                   ["serve", "--port", "0", "--state-dir", cluster.stateDir.path] + extra,
                                   environment: cluster.environment, logDir: cluster.logDir, timeout: 60)
            XCTAssertNotEqual(r.status, 0, "\(extra)")
            XCTAssertTrue(r.stderr.contains(message), "\(extra): \(r.stderr)")
            XCTAssertFalse(r.stdout.contains("coordinator listening"), "\(extra): \(r.stdout)")
        }
    }
}
