import Foundation
import XCTest

/// Issue 14, parts 6 and 7 with real processes: an auto style weight chosen by the worker and
/// recorded, and warm starts (`"init": "job:ID"` and `"nearest"`) that start exactly from the
/// chosen job's model.
final class WarmStartTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    /// `status --json` fields of these parts.
    struct Choice: Decodable {
        var id: Int64
        var name: String
        var styleRatio: Double?
        var chosenStyleWeight: Double?
        var `init`: String?
        var warmStartJob: Int64?
        var warmStart: String?
    }

    func choices(_ cluster: Cluster) throws -> [String: Choice] {
        struct Doc: Decodable { var jobs: [Choice] }
        let r = try cluster.cli(["status", "--json"])
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        return Dictionary(uniqueKeysWithValues: try decoder.decode(Doc.self, from: Data(r.stdout.utf8)).jobs.map { ($0.name, $0) })
    }

    func testAutoWeightAndWarmStartsFromAJobAndFromTheNearestStyle() throws {
        let cluster = try Cluster(leaseTimeout: 5)
        self.cluster = cluster
        // Two finished styles to start from (style images of seeds 21 and 22)
        let first = try cluster.writeConfig(styles: [("wave", 21, ["priority": 2]), ("ink", 22, ["priority": 1])], steps: 6)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(first)
        let worker = try cluster.startWorker("w")
        XCTAssertEqual(try cluster.waitForAllFinished(timeout: 120).map(\.state), ["succeeded", "succeeded"], worker.stderr)

        // A job may not start from one that does not exist; nothing is created
        let missing = try cluster.writeConfig(styles: [("nothing", 21, ["init": "job:99"])], steps: 4, file: "missing.json")
        let refused = try cluster.cli(["submit", missing.path])
        XCTAssertNotEqual(refused.status, 0)
        XCTAssertTrue(refused.stderr.contains("init: there is no job 99"), refused.stderr)
        XCTAssertEqual(try cluster.status().count, 2)

        // When an auto-weight job, a job starting from job 1 and one starting from the nearest
        // style (the image of "ink"; the newest finished job of each style image is a candidate: 2) are trained
        let second = try cluster.writeConfig(styles: [
            ("auto", 21, ["style_weight": "auto", "style_ratio": 2, "priority": 3]),
            ("direct", 21, ["init": "job:1", "priority": 2]),
            ("near", 22, ["init": "nearest", "priority": 1]),
        ], steps: 4, file: "second.json")
        // (the dry run shows what each job will do)
        let dry = try cluster.cli(["submit", second.path, "--dry-run"])
        XCTAssertEqual(dry.status, 0, dry.stderr)
        let rows = dry.stdout.split(separator: "\n")
        XCTAssertTrue(rows.contains { $0.hasPrefix("auto ") && $0.contains("auto (ratio 2)") }, dry.stdout)
        XCTAssertTrue(rows.contains { $0.hasPrefix("direct ") && $0.hasSuffix("job:1") }, dry.stdout)
        XCTAssertTrue(rows.contains { $0.hasPrefix("near ") && $0.hasSuffix("nearest") }, dry.stdout)
        try cluster.submit(second)
        let finished = try cluster.waitForAllFinished(timeout: 120)
        XCTAssertEqual(finished.map(\.state), Array(repeating: "succeeded", count: 5), worker.stderr)
        let jobs = try choices(cluster)
        let out = try cluster.fetchAll()

        // Then the auto job's first step has its weighted style term twice its content term,
        // with the weight it recorded
        let auto = try XCTUnwrap(jobs["auto"])
        XCTAssertEqual(auto.styleRatio, 2)
        let weight = try XCTUnwrap(auto.chosenStyleWeight)
        let autoLosses = try readLosses(out.appendingPathComponent("auto.losses.csv"))
        XCTAssertEqual(autoLosses[0].style / autoLosses[0].content, 2, accuracy: 1e-3)
        XCTAssertTrue(worker.stderr.contains("style weight auto"), worker.stderr)
        XCTAssertTrue(try cluster.statusText().contains("style_weight auto (ratio 2): \(String(format: "%.6g", weight))"))

        // And the direct job started from job 1's model: its first step's losses are those of
        // `orchestrator train --init` from that model on the same data
        XCTAssertEqual(jobs["direct"]?.warmStartJob, 1)
        XCTAssertEqual(jobs["direct"]?.warmStart, "job 1 (wave)")
        let log = cluster.root.appendingPathComponent("direct-local.csv")
        let style = cluster.root.appendingPathComponent("styles/style-21.png")
        let local = try runCommand(cluster.orchestrator, [
            "train", "--style", style.path, "--dataset", cluster.datasetDir.path, "--out", cluster.root.appendingPathComponent("x.safetensors").path,
            "--random-vgg", "--image-size", "32", "--style-size", "32", "--batch-size", "2", "--steps", "1", "--threads", "1",
            "--init", out.appendingPathComponent("wave.safetensors").path, "--loss-log", log.path,
        ], environment: cluster.environment, logDir: cluster.logDir)
        XCTAssertEqual(local.status, 0, local.stderr)
        let expected = try readLosses(log)[0]
        let direct = try readLosses(out.appendingPathComponent("direct.losses.csv"))[0]
        XCTAssertEqual(direct.total, expected.total, accuracy: 1e-5 * expected.total)
        let scratch = try readLosses(out.appendingPathComponent("wave.losses.csv"))[0]
        XCTAssertNotEqual(direct.total, scratch.total, accuracy: 1e-6 * scratch.total, "not a fresh initialisation")

        // And the nearest job found the style with its own image: distance 0, among the 2 style images finished
        let near = try XCTUnwrap(jobs["near"])
        XCTAssertEqual(near.warmStartJob, 2)
        XCTAssertEqual(near.warmStart, "job 2 (ink): Gram distance 0, nearest of 2")
        XCTAssertTrue(worker.stderr.contains("warm start from job 2 (ink), Gram distance 0, nearest of 2"), worker.stderr)
    }
}
