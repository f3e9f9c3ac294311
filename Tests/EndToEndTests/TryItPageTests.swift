import AsyncHTTPClient
import CoordinatorTestSupport
import Foundation
import NIOCore
import NSTModel
import XCTest

/// The try-it page and `POST /v1/stylize` with the real stylizer: a real `orchestrator serve`, a
/// model trained by a real worker, a real photo file, and headless Chromium for the page.
final class TryItPageTests: XCTestCase {
    var cluster: Cluster!

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    func testAPhotoInEveryFinishedStyleThroughTheAPIAndThePage() async throws {
        cluster = try Cluster(leaseTimeout: 5)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let config = try cluster.writeConfig(styles: [("mosaic", 51, [:]), ("waves", 52, [:])], steps: 2)
        try cluster.submit(config)
        try cluster.startWorker("w1")
        XCTAssertEqual(try cluster.waitForAllFinished(timeout: 120).map(\.state), ["succeeded", "succeeded"])
        let photo = cluster.root.appendingPathComponent("photo.png")
        try SyntheticImages.contentImage(index: 3, width: 60, height: 44).write(to: photo)

        // The API: every style as JSON, one style as a PNG
        let http = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            func post(_ query: String) async throws -> (Int, Data) {
                var request = HTTPClientRequest(url: "http://\(cluster.address)/v1/stylize\(query)")
                request.method = .POST
                request.headers.add(name: "Authorization", value: "Bearer \(cluster.token)")
                request.headers.add(name: "Content-Type", value: "image/png")
                request.body = .bytes(ByteBuffer(bytes: try Data(contentsOf: photo)))
                let response = try await http.execute(request, timeout: .seconds(60))
                return (Int(response.status.code), Data(buffer: try await response.body.collect(upTo: 64 << 20)))
            }
            let (status, body) = try await post("")
            XCTAssertEqual(status, 200, String(decoding: body, as: UTF8.self))
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: body) as? [String: Any])
            let results = try XCTUnwrap(object["results"] as? [[String: Any]])
            XCTAssertEqual(results.compactMap { $0["name"] as? String }, ["mosaic", "waves"])
            for result in results {
                let png = try XCTUnwrap(Data(base64Encoded: result["png_base64"] as? String ?? ""))
                let image = try RGBImage(decoding: png, name: "output")
                XCTAssertEqual([image.width, image.height], [60, 44])
            }
            let (one, onePNG) = try await post("?model=waves")
            XCTAssertEqual(one, 200)
            XCTAssertEqual(try RGBImage(decoding: onePNG, name: "waves").width, 60)
            let (bad, _) = try await post("?model=nope")
            XCTAssertEqual(bad, 404)
        } catch {
            try? await http.shutdown()
            throw error
        }
        try await http.shutdown()

        // The page, in a real browser: log in, choose the photo, see it in both styles
        let address = cluster.address, token = cluster.token, root = cluster.root
        try await Task.detached {
            let browser = try Chromium(work: root)
            defer { browser.quit() }
            try browser.navigate("http://\(address)/login")
            try browser.evaluate("document.getElementById('token').focus()")
            try browser.type(token)
            try browser.evaluate("document.querySelector('form button').click()")
            try browser.waitFor("the dashboard") { try browser.path() == "/" }
            try browser.navigate("http://\(address)/try")
            XCTAssertTrue(try browser.html().contains("Finished styles: mosaic, waves."))
            try browser.setFiles("#photo", [photo.path])
            try browser.evaluate("document.querySelector('form button').click()")
            try browser.waitFor("the results", timeout: 60) { try browser.html().contains("<figcaption>waves</figcaption>") }
            let captions = try browser.evaluate("[...document.querySelectorAll('figcaption')].map(e => e.textContent).join(',')") as? String
            XCTAssertEqual(captions, "your photo,mosaic,waves")
            let widths = try browser.evaluate("[...document.querySelectorAll('figure img')].map(i => i.naturalWidth).join(',')") as? String
            XCTAssertEqual(widths, "60,60,60", "every picture decoded")
        }.value
    }
}
