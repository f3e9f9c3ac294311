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

            let worker = Process()
            worker.executableURL = Self.workerBinary
            worker.arguments = ["--coordinator", "127.0.0.1:\(client.port!)", "--dataset", dataset.path, "--random-vgg",
                                "--name", "w1", "--threads", "1", "--work-dir", work.appendingPathComponent("w").path]
            var env = ProcessInfo.processInfo.environment
            env["ORCHESTRATOR_TOKEN"] = Harness.token
            worker.environment = env
            let log = work.appendingPathComponent("worker.log")
            FileManager.default.createFile(atPath: log.path, contents: nil)
            worker.standardError = try FileHandle(forWritingTo: log)
            try worker.run()
            defer { if worker.isRunning { worker.terminate(); worker.waitUntilExit() } }

            let deadline = Date().addingTimeInterval(120)
            var states: [JobState] = []
            while Date() < deadline {
                states = try await h.store.jobs().sorted { $0.job.id < $1.job.id }.map(\.job.state)
                if states.allSatisfy(\.isTerminal) { break }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            let text = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
            XCTAssertEqual(states, [.failed, .succeeded], text)
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
}
