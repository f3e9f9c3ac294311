import APIClient
import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// The dashboard in a real browser: Debian's headless Chromium against a live in-process
/// coordinator fed through `CoordinatorClient` (scripts/dashboard-screenshot does the same with
/// real workers). Skipped when `chromium` is not installed.
final class DashboardBrowserTests: XCTestCase {
    func testChromiumFollowsTheTokenLinkAndShowsEveryJobWithItsChart() async throws {
        let chromium = try Self.chromium()
        let h = try Harness()
        defer { h.cleanUp() }
        let work = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: work) }
        let names = ["mosaic", "waves", "dots", "brush"]

        try await h.app().test(.live) { tc in
            let address = "127.0.0.1:\(tc.port!)"
            let client = try CoordinatorClient(address: address, token: Harness.token, timeout: .seconds(10))
            do {
                // Given one job done, one running with losses and a preview, two queued
                try await Self.feed(client, names: names, work: work)

                // When Chromium opens the token link (303 → cookie → /) and dumps the DOM
                let dom = try await Self.run(chromium, ["--dump-dom", "http://\(address)/?token=\(Harness.token)"], work: work)

                // Then every job is there, with one loss chart each and lines where losses exist
                for name in names { XCTAssertTrue(dom.contains("<td class=\"name\">\(name)</td>"), name) }
                XCTAssertEqual(count("<svg class=\"loss\"", in: dom), names.count, String(dom.prefix(400)))
                let running = try XCTUnwrap(section(of: dom, from: "id=\"chart-2\"", to: "</figure>"))
                for line in ["total", "content", "style"] { XCTAssertEqual(polyline(line, in: running)?.count, 6, line) }
                XCTAssertTrue(dom.contains("<span class=\"badge succeeded\">succeeded</span>"))
                XCTAssertTrue(dom.contains("<span class=\"badge running\">running</span>"))
                XCTAssertTrue(dom.contains("<img src=\"/v1/jobs/2/preview?step=5\""))

                // And without the token it shows the 401 page
                let locked = try await Self.run(chromium, ["--dump-dom", "http://\(address)/"], work: work, profile: "fresh")
                XCTAssertTrue(locked.contains("<h1>Token needed</h1>"), locked)
                XCTAssertFalse(locked.contains("mosaic"))

                // And a screenshot can be taken (a real PNG of the window's size)
                let shot = work.appendingPathComponent("dashboard.png")
                _ = try await Self.run(chromium, ["--screenshot=\(shot.path)", "http://\(address)/?token=\(Harness.token)"], work: work)
                let png = try Data(contentsOf: shot)
                XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
                XCTAssertEqual(png.count > 24 ? png[16..<24].reduce(0) { $0 << 8 | UInt64($1) } : 0,
                               UInt64(1200) << 32 | 1000, "width 1200, height 1000")
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    // MARK: - Data

    /// Submits `names`; the first succeeds, the second runs (six loss points, a preview at step
    /// 5), the others stay queued.
    static func feed(_ client: CoordinatorClient, names: [String], work: URL) async throws {
        let styleFile = work.appendingPathComponent("style.png")
        try makePNG(width: 16, height: 16).write(to: styleFile)
        let (style, _) = try await client.uploadArtifact(file: styleFile)
        _ = try await client.submit(names.map { JobConfig(name: $0, styleSHA256: style, imageSize: 32, batchSize: 1, steps: 10) })
        func points(_ steps: ClosedRange<Int>) -> [LossPoint] {
            steps.map { s in
                LossPoint(step: s, images: s, content: 2e4 / Double(s), style: 3e5 * exp(-Double(s) / 4), total: 2e4 / Double(s) + 3e5 * exp(-Double(s) / 4))
            }
        }
        let done = try await XCTUnwrapAsync(try await client.lease(worker: "worker-1", host: "box", threads: 1))
        let model = work.appendingPathComponent("model.safetensors")
        try Data(repeating: 3, count: 1000).write(to: model)
        let modelSHA = try await client.uploadModel(jobID: done.jobID, token: done.token, file: model)
        try await client.complete(jobID: done.jobID, token: done.token, modelSHA256: modelSHA, step: 10, imagesDone: 10,
                                  lossPoints: points(1...10))

        let run = try await XCTUnwrapAsync(try await client.lease(worker: "worker-2", host: "box", threads: 1))
        _ = try await client.heartbeat(jobID: run.jobID, HeartbeatRequest(token: run.token, step: 6, imagesDone: 6, imagesPerS: 2.5,
                                                                          lossPoints: points(1...6)))
        let preview = work.appendingPathComponent("preview.png")
        try makePNG(width: 64, height: 64, seed: 40).write(to: preview)
        try await client.uploadPreview(jobID: run.jobID, token: run.token, step: 5, file: preview)
    }

    // MARK: - Chromium

    /// The `chromium` executable, or an `XCTSkip` saying how to get it.
    static func chromium() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("chromium")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("chromium is not installed (apt-get install chromium): the real-browser check of the dashboard is skipped")
    }

    /// Runs headless Chromium with `arguments` (a fresh profile per `profile` name), at most 90
    /// seconds; returns what it printed on standard output.
    static func run(_ chromium: URL, _ arguments: [String], work: URL, profile: String = "main") async throws -> String {
        let out = work.appendingPathComponent("chromium-\(UUID().uuidString).out")
        FileManager.default.createFile(atPath: out.path, contents: nil)
        let handle = try FileHandle(forWritingTo: out)
        defer { try? handle.close() }
        let process = Process()
        process.executableURL = chromium
        process.arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                             "--user-data-dir=\(work.appendingPathComponent("profile-\(profile)").path)",
                             "--virtual-time-budget=3000", "--window-size=1200,1000"] + arguments
        process.standardOutput = handle
        process.standardError = FileHandle.nullDevice
        let watchdog = Task { try await Task.sleep(for: .seconds(90)); if process.isRunning { process.terminate() } }
        defer { watchdog.cancel() }
        let status: Int32 = try await withCheckedThrowingContinuation { continuation in
            process.terminationHandler = { continuation.resume(returning: $0.terminationStatus) }
            do { try process.run() } catch {
                process.terminationHandler = nil
                continuation.resume(throwing: error)
            }
        }
        XCTAssertEqual(status, 0, "chromium \(arguments.joined(separator: " "))")
        return String(decoding: try Data(contentsOf: out), as: UTF8.self)
    }
}
