import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import JobStore
import XCTest

/// Issue 11, finding 3: a "poison" job (sizes no machine can train) crashed every worker that
/// leased it, in turn. The worker checks the leased config against the same limits, fails the
/// job without retry naming the values, and goes on with the next job.
final class HostileLeaseTests: XCTestCase {
    static let workerBinary = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug/worker")

    func testAWorkerRefusesAPoisonJobAndTrainsTheNext() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.workerBinary.path), "build the worker first")
        let h = try Harness(maxUploadBytes: 64 << 20)
        defer { h.cleanUp() }
        let work = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: work) }
        let dataset = work.appendingPathComponent("dataset")
        try FileManager.default.createDirectory(at: dataset, withIntermediateDirectories: true)
        for i in 0..<4 { try makePNG(width: 32, height: 32, seed: UInt8(i)).write(to: dataset.appendingPathComponent("\(i).png")) }

        try await h.app().test(.live) { client in
            let style = try await client.putArtifact(makePNG(width: 32, height: 32, seed: 9))
            let ids = try await client.submit(["poison", "fine"], style: style, steps: 4)
            // The poison job's config as a compromised or buggy coordinator would hand it out
            // (written past the store's checks).
            let poison = #"{"name":"poison","style_sha256":"\#(style)","image_size":2147483648,"style_size":4,"#
                + #""batch_size":1000000,"steps":4,"max_attempts":3}"#
            try await h.store.dbWriter.write { db in
                try db.execute(sql: "UPDATE jobs SET config_json = ?, priority = 10 WHERE id = ?", arguments: [poison, ids[0]])
            }

            let (worker, text) = try await Self.runWorker(port: client.port!, store: h.store, work: work,
                                                          extra: ["--dataset", dataset.path])
            defer { if worker.isRunning { worker.terminate(); worker.waitUntilExit() } }
            XCTAssertTrue(worker.isRunning, "the worker is still running after the poison job: \(text)")
            let failed = try await h.store.job(id: ids[0])
            let reason = failed?.failureReason ?? ""
            XCTAssertEqual(failed?.attempt, 1, "not retried: every worker would refuse it")
            XCTAssertTrue(reason.hasPrefix("leased config refused by the worker: "), reason)
            for key in ["image_size: must be from 8 to 2048, got 2147483648", "style_size", "batch_size"] {
                XCTAssertTrue(reason.contains(key), "\(key) in \(reason)")
            }
        }
    }

    /// Issue 13: the coordinator is not trusted with the dataset either. A manifest whose bytes
    /// hash right but do not add up (its totals claim Int64.max bytes) is refused by the worker
    /// with the reason; the job fails without retry (no worker could train it), and the worker,
    /// still up, trains the next job from a good dataset.
    func testAWorkerRefusesAManifestThatDoesNotAddUpAndTrainsTheNextJob() async throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.workerBinary.path), "build the worker first")
        var badSHA = ""
        let h = try await Harness.serving(maxUploadBytes: 64 << 20) { artifacts in
            let images = (0..<4).map { makePNG(width: 32, height: 32, seed: UInt8($0)) }
            let good = try writeServedDataset(name: "good", shards: [Array(images[0..<2]), Array(images[2..<4])], into: artifacts)
            let made = try writeServedDataset(name: "bad", shards: [images], into: artifacts)
            let url = artifacts.appendingPathComponent("\(made.ref.sha256.prefix(2))/\(made.ref.sha256)")
            var manifest = try JSONDecoder().decode(DatasetManifest.self, from: Data(contentsOf: url))
            manifest.totals.bytes = Int64.max
            let json = try manifest.canonicalJSON()
            badSHA = try storeArtifact(json, in: artifacts)
            var bad = made
            bad.ref.sha256 = badSHA
            bad.ref.size = Int64(json.count)
            return [good, bad]
        }
        defer { h.cleanUp() }
        let work = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: work) }
        let bad = badSHA

        try await h.app().test(.live) { client in
            let style = try await client.putArtifact(makePNG(width: 32, height: 32, seed: 9))
            let ids = try await client.submit(["poisoned", "fine"], style: style, steps: 4)
            try await h.store.dbWriter.write { db in
                let config = JobConfig(name: "poisoned", styleSHA256: style, imageSize: 32, styleSize: 32, batchSize: 1,
                                       steps: 4, dataset: "bad", datasetSHA256: bad)
                let json = String(decoding: try JSONEncoder().encode(config), as: UTF8.self)
                try db.execute(sql: "UPDATE jobs SET config_json = ?, priority = 10 WHERE id = ?", arguments: [json, ids[0]])
            }

            let (worker, text) = try await Self.runWorker(port: client.port!, store: h.store, work: work,
                                                          extra: ["--cache-dir", work.appendingPathComponent("cache").path])
            defer { if worker.isRunning { worker.terminate(); worker.waitUntilExit() } }
            XCTAssertTrue(worker.isRunning, "the worker is still running: \(text)")
            let poisoned = try await h.store.job(id: ids[0])
            XCTAssertEqual(poisoned?.attempt, 1, "not retried: every worker would refuse it")
            let reason = poisoned?.failureReason ?? ""
            XCTAssertTrue(reason.contains("is not usable: invalid dataset manifest"), reason)
            XCTAssertTrue(reason.contains("totals"), reason)
        }
    }

    /// Starts a worker (random VGG16, one thread) against the coordinator on `port` and waits
    /// until the store's jobs have all ended (two minutes at most); asserts they ended failed
    /// then succeeded. Returns the still running process and its log.
    static func runWorker(port: Int, store: JobStore, work: URL, extra: [String],
                          file: StaticString = #filePath, line: UInt = #line) async throws -> (Process, String) {
        let worker = Process()
        worker.executableURL = workerBinary
        worker.arguments = ["--coordinator", "127.0.0.1:\(port)", "--random-vgg", "--name", "w1", "--threads", "1",
                            "--work-dir", work.appendingPathComponent("w").path] + extra
        var env = ProcessInfo.processInfo.environment
        env["ORCHESTRATOR_TOKEN"] = Harness.token
        worker.environment = env
        let log = work.appendingPathComponent("worker.log")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        worker.standardError = try FileHandle(forWritingTo: log)
        try worker.run()
        let deadline = Date().addingTimeInterval(120)
        var states: [JobState] = []
        while Date() < deadline {
            states = try await store.jobs().sorted { $0.job.id < $1.job.id }.map(\.job.state)
            if states.allSatisfy(\.isTerminal) { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
        XCTAssertEqual(states, [.failed, .succeeded], text, file: file, line: line)
        return (worker, text)
    }
}
