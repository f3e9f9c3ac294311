import APIClient
import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// The dashboard in a real browser: Debian's headless Chromium, driven over the DevTools
/// protocol, against a live in-process coordinator fed through `CoordinatorClient`
/// (scripts/dashboard-screenshot does the same with real workers). Skipped when `chromium` is
/// not installed.
final class DashboardBrowserTests: XCTestCase {
    func testChromiumLogsInWithTheFormSeesEveryJobAndLogsOut() async throws {
        _ = try Chromium.executable()
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
                try await Task.detached { try Self.browse(address: address, names: names, work: work) }.value
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// The browser's part (blocking calls, off the test's executor).
    static func browse(address: String, names: [String], work: URL) throws {
        let browser = try Chromium(work: work)
        defer { browser.quit() }

        // When the browser opens the dashboard, it is sent to the login form
        try browser.navigate("http://\(address)/")
        XCTAssertEqual(try browser.path(), "/login")
        XCTAssertFalse(try browser.html().contains("mosaic"))

        // A wrong token keeps it out
        try browser.evaluate("document.getElementById('token').focus()")
        try browser.type("not-the-token")
        try browser.evaluate("document.querySelector('form button').click()")
        try browser.waitFor("the refusal") { try browser.html().contains("That token is wrong.") }
        XCTAssertTrue(try browser.cookies().filter { $0["name"] as? String == "nst_session" }.isEmpty)

        // When the admin types the token into the form and logs in
        try browser.evaluate("document.getElementById('token').focus()")
        try browser.type(Harness.token)
        try browser.evaluate("document.querySelector('form button').click()")
        try browser.waitFor("the dashboard") { try browser.path() == "/" && browser.html().contains("<h1>nst-orchestrator</h1>") }

        // Then every job is there, with one loss chart each and lines where losses exist
        let dom = try browser.html()
        for name in names { XCTAssertTrue(dom.contains("<td class=\"name\">\(name)</td>"), name) }
        XCTAssertEqual(count("<svg class=\"loss\"", in: dom), names.count, String(dom.prefix(400)))
        let running = try XCTUnwrap(section(of: dom, from: "id=\"chart-2\"", to: "</figure>"))
        for line in ["total", "content", "style"] { XCTAssertEqual(polyline(line, in: running)?.count, 6, line) }
        XCTAssertTrue(dom.contains("<span class=\"badge succeeded\">succeeded</span>"))
        XCTAssertTrue(dom.contains("<span class=\"badge running\">running</span>"))
        XCTAssertTrue(dom.contains("<img src=\"/v1/jobs/2/preview?step=5\""))
        // and the preview image loaded with the session cookie
        let width = try browser.evaluate("document.querySelector('img[src^=\"/v1/jobs/2/preview\"]').naturalWidth") as? Int
        XCTAssertEqual(width, 64, "the preview loads through the session")

        // And the session cookie is a random id, HttpOnly, SameSite=Strict, with an expiry
        let cookies = try browser.cookies().filter { $0["name"] as? String == "nst_session" }
        XCTAssertEqual(cookies.count, 1)
        let cookie = try XCTUnwrap(cookies.first)
        let value = try XCTUnwrap(cookie["value"] as? String)
        XCTAssertNotEqual(value, Harness.token)
        XCTAssertFalse(value.contains(Harness.token))
        XCTAssertNotNil(value.range(of: "^[0-9a-f]{64}$", options: .regularExpression), value)
        XCTAssertEqual(cookie["httpOnly"] as? Bool, true)
        XCTAssertEqual(cookie["sameSite"] as? String, "Strict")
        XCTAssertEqual(cookie["session"] as? Bool, false, "it has an expiry")
        let expires = try XCTUnwrap(cookie["expires"] as? Double)
        XCTAssertEqual(expires, Date().timeIntervalSince1970 + 12 * 3600, accuracy: 120)
        XCTAssertEqual(try browser.evaluate("document.cookie") as? String, "", "no script can read it")

        // And a screenshot can be taken
        let png = try browser.screenshot()
        XCTAssertEqual(Array(png.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])

        // When it logs out, the cookie is gone and the dashboard is closed again
        try browser.evaluate("document.querySelector('form.logout button').click()")
        try browser.waitFor("the login form after logout") { try browser.path() == "/login" }
        XCTAssertTrue(try browser.cookies().filter { $0["name"] as? String == "nst_session" }.isEmpty)
        try browser.navigate("http://\(address)/")
        XCTAssertEqual(try browser.path(), "/login")
    }

    func testChromiumShowsASweepGalleryWithOneTradeOffPlotAndTheFrontMarked() async throws {
        _ = try Chromium.executable()
        let h = try Harness()
        defer { h.cleanUp() }
        let work = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: work) }

        try await h.app().test(.live) { tc in
            let address = "127.0.0.1:\(tc.port!)"
            let client = try CoordinatorClient(address: address, token: Harness.token, timeout: .seconds(10))
            do {
                // Given a sweep of three running trials with previews and validation points, two on the front
                try await Self.feedSweep(client, work: work)
                try await Task.detached { try Self.browseGallery(address: address, work: work) }.value
            } catch {
                try? await client.shutdown()
                throw error
            }
            try await client.shutdown()
        }
    }

    /// The browser's part of the gallery test.
    static func browseGallery(address: String, work: URL) throws {
        let browser = try Chromium(work: work)
        defer { browser.quit() }
        // When the admin logs in and the dashboard renders
        try browser.navigate("http://\(address)/")
        _ = try browser.evaluate("document.getElementById('token').focus()")
        try browser.type(Harness.token)
        _ = try browser.evaluate("document.querySelector('form button').click()")
        try browser.waitFor("the dashboard") { try browser.path() == "/" && browser.html().contains("<h1>nst-orchestrator</h1>") }
        func number(_ js: String) throws -> Double? {
            let v = try browser.evaluate(js)
            return (v as? Double) ?? (v as? Int).map(Double.init)
        }

        // Then the gallery has a figure per trial, each preview loaded and laid out side by side
        XCTAssertEqual(try number("document.querySelectorAll('section.gallery').length"), 1)
        XCTAssertEqual(try number("document.querySelectorAll('section.gallery figure.trial').length"), 3)
        try browser.waitFor("the gallery's previews") {
            try number("[...document.querySelectorAll('section.gallery figure.trial img')].filter(i => i.naturalWidth == 64).length") == 3
        }
        let tops = try browser.evaluate("[...document.querySelectorAll('section.gallery figure.trial')].map(f => f.getBoundingClientRect().top)") as? [Any]
        XCTAssertEqual(Set((tops ?? []).map { "\($0)" }).count, 1, "side by side: \(tops ?? [])")
        XCTAssertEqual(try browser.evaluate("document.querySelector('section.gallery figure.trial[data-job=\"2\"] small.params').textContent") as? String,
                       "style_weight=3e+10")
        // And one scatter plot with a point per trial, drawn at a size, the front's two points in their own colour
        XCTAssertEqual(try number("document.querySelectorAll('section.gallery svg.tradeoff').length"), 1)
        XCTAssertGreaterThan(try number("document.querySelector('section.gallery svg.tradeoff').getBoundingClientRect().width") ?? 0, 200)
        XCTAssertEqual(try number("document.querySelectorAll('svg.tradeoff circle.trial').length"), 3)
        XCTAssertEqual(try number("document.querySelectorAll('svg.tradeoff circle.trial.front').length"), 2)
        let frontFill = try browser.evaluate("getComputedStyle(document.querySelector('svg.tradeoff circle.trial.front')).fill") as? String
        let otherFill = try browser.evaluate("getComputedStyle(document.querySelector('svg.tradeoff circle.trial:not(.front)')).fill") as? String
        XCTAssertNotNil(frontFill)
        XCTAssertNotEqual(frontFill, otherFill)
        XCTAssertEqual(try browser.evaluate("document.querySelector('svg.tradeoff circle.trial:not(.front)').dataset.job") as? String, "3")
        XCTAssertGreaterThan(try number("document.querySelector('svg.tradeoff polyline.front').getTotalLength()") ?? 0, 10,
                             "the front's line is drawn")
        XCTAssertEqual(try browser.evaluate("[...document.querySelectorAll('svg.tradeoff text.point-label')].map(t => t.textContent).sort().join(',')") as? String,
                       "wave-1,wave-2,wave-3")
    }

    /// Submits a sweep `wave` of three trials and runs each on its own worker: a preview and a
    /// validation point each; trial 3 is behind trial 2 on both losses.
    static func feedSweep(_ client: CoordinatorClient, work: URL) async throws {
        let styleFile = work.appendingPathComponent("style.png")
        try makePNG(width: 16, height: 16).write(to: styleFile)
        let (style, _) = try await client.uploadArtifact(file: styleFile)
        let weights = [1e10, 3e10, 1e11]
        _ = try await client.submit(weights.enumerated().map { k, w in
            JobConfig(name: "wave-\(k + 1)", styleSHA256: style, imageSize: 32, batchSize: 1, steps: 10,
                      group: "wave", params: ["style_weight": w], validationImages: 2)
        })
        let losses: [(content: Double, style: Double)] = [(2e5, 40), (5e5, 8), (9e5, 30)]
        for (k, l) in losses.enumerated() {
            let lease = try await XCTUnwrapAsync(try await client.lease(worker: "worker-\(k + 1)", host: "box", threads: 1))
            let point = ValidationPoint(step: 5, content: l.content, style: l.style, contentWeighted: l.content, styleWeighted: l.style)
            _ = try await client.heartbeat(jobID: lease.jobID, HeartbeatRequest(token: lease.token, step: 5, imagesDone: 5,
                                                                                validation: [point]))
            let preview = work.appendingPathComponent("preview-\(k).png")
            try makePNG(width: 64, height: 64, seed: UInt8(10 * k + 1)).write(to: preview)
            try await client.uploadPreview(jobID: lease.jobID, token: lease.token, step: 5, file: preview)
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
}
