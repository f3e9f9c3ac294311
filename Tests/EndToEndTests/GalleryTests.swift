import Foundation
import NSTModel
import XCTest

/// Issue 14, part 4, as a user runs it: a sweep trains with held-out images (its previews render
/// the first of them), then `orchestrator gallery` writes one PNG of its trials and their
/// trade-off.
final class GalleryTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: testRun?.hasSucceeded == false)
        super.tearDown()
    }

    func testASweepsGalleryIsOnePNGOfItsPreviewsAndTradeOff() throws {
        let cluster = try Cluster(leaseTimeout: 5)
        self.cluster = cluster
        // Given a sweep of three style weights holding out 2 of the 8 images, and a job of no sweep without any
        let config = try cluster.writeConfig(styles: [("wave", 91, ["style_weight": ["sweep": [1e9, 1e10, 1e11]], "validation_images": 2]),
                                                      ("solo", 92, [:])], steps: 4, checkpointEvery: 2)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let worker = try cluster.startWorker("w")
        let rows = try cluster.waitForAllFinished(timeout: 180)
        XCTAssertEqual(rows.map(\.state), Array(repeating: "succeeded", count: 4), "\(rows)")
        // The sweep's previews render its first held-out photo, the other job's the synthetic scene
        XCTAssertEqual(count("previews render validation image 1 of", in: worker.stderr), 3, worker.stderr)
        XCTAssertEqual(count("previews render the synthetic scene", in: worker.stderr), 1, worker.stderr)

        // When the gallery is written
        let out = cluster.root.appendingPathComponent("wave.png")
        let r = try cluster.cli(["gallery", "wave", "--out", out.path])
        XCTAssertEqual(r.status, 0, r.stderr)

        // Then it says what it wrote, trial by trial
        XCTAssertTrue(r.stdout.contains("wrote \(out.path): sweep wave, 3 trials (3 previews, 3 with validation), 624×627 px"), r.stdout)
        for k in 1...3 { XCTAssertTrue(r.stdout.contains("#\(k) wave-\(k) style_weight="), r.stdout) }
        XCTAssertGreaterThanOrEqual(count("on the Pareto front", in: r.stdout), 1, r.stdout)
        XCTAssertFalse(r.stdout.contains("solo"))
        // And the PNG holds three tiles in a row (12 px gaps, 192 px tiles, three label lines) over a 600×360 plot
        let image = try RGBImage(contentsOf: out)
        XCTAssertEqual([image.width, image.height], [12 + 3 * (192 + 12), 12 + (192 + 6 + 3 * 11 + 12) + 360 + 12])
        func pixel(_ x: Int, _ y: Int) -> [UInt8] { Array(image.pixels[(y * image.width + x) * 3..<(y * image.width + x) * 3 + 3]) }
        for k in 0..<3 {
            let x0 = 12 + k * 204
            let colours = Set((0..<16).flatMap { i in (0..<16).map { j in pixel(x0 + 12 * i, 12 + 12 * j) } })
            XCTAssertGreaterThan(colours.count, 20, "tile \(k + 1) is a picture, not an empty tile")
        }
        XCTAssertEqual(pixel(12 + 3 * 204 - 6, 100), [24, 26, 30], "no fourth tile")
        let plot = (255..<image.height).flatMap { y in (0..<image.width).map { pixel($0, y) } }
        XCTAssertTrue(plot.contains([240, 136, 62]), "the Pareto front is marked")

        // An unknown group names the sweeps there are; a folder that cannot be written is refused
        let unknown = try cluster.cli(["gallery", "nope", "--out", out.path])
        XCTAssertNotEqual(unknown.status, 0)
        XCTAssertTrue(unknown.stderr.contains("no sweep \"nope\" on the coordinator; its sweeps: wave"), unknown.stderr)
        let nowhere = try cluster.cli(["gallery", "wave", "--out", cluster.root.appendingPathComponent("no/such/dir.png").path])
        XCTAssertNotEqual(nowhere.status, 0)
        XCTAssertTrue(nowhere.stderr.contains("is not a writable folder"), nowhere.stderr)
        let jpeg = try cluster.cli(["gallery", "wave", "--out", cluster.root.appendingPathComponent("wave.jpg").path])
        XCTAssertNotEqual(jpeg.status, 0)
        XCTAssertTrue(jpeg.stderr.contains("--out must name a .png file"), jpeg.stderr)
    }

    func count(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }
}
