import Foundation
import NSTModel
import XCTest

/// Issue 14, part 4: the gallery's raster scatter plot (log–log, front marked and joined).
final class ScatterPlotTests: XCTestCase {
    func pixel(_ img: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        Array(img.pixels[(y * img.width + x) * 3..<(y * img.width + x) * 3 + 3])
    }

    func rgb(_ c: ScatterPlot.Colour) -> [UInt8] { [c.0, c.1, c.2] }

    let points = [
        ScatterPlot.Point(label: "1", x: 1e5, y: 40, front: true),
        ScatterPlot.Point(label: "2", x: 3e5, y: 8, front: true),
        ScatterPlot.Point(label: "3", x: 2e6, y: 2, front: true),
        ScatterPlot.Point(label: "4", x: 9e5, y: 30, front: false),
    ]

    func testPointsLandOnTheirLogPositions() throws {
        let img = ScatterPlot.render(points, width: 480, height: 360, xTitle: "content loss", yTitle: "style loss")
        XCTAssertEqual([img.width, img.height], [480, 360])
        let l = ScatterPlot.layout(points, width: 480, height: 360)
        // The axes span the values (a tenth of a decade to spare), log-scaled
        XCTAssertEqual(l.x0, 5 - 0.1, accuracy: 1e-9)
        XCTAssertEqual(l.x1, log10(2e6) + 0.1, accuracy: 1e-9)
        XCTAssertEqual(l.pixel(x: 1e5, y: 40).x, l.left + Int((0.1 / (l.x1 - l.x0) * Double(l.right - l.left)).rounded()))
        XCTAssertEqual(l.pixel(x: 9e5, y: 2).y, l.bottom - Int((0.1 / (l.y1 - l.y0) * Double(l.bottom - l.top)).rounded()))
        // Each point's centre has its colour: front points orange, the other blue
        for p in points {
            let c = l.pixel(x: p.x, y: p.y)
            XCTAssertEqual(pixel(img, c.x, c.y), rgb(p.front ? ScatterPlot.frontColour : ScatterPlot.pointColour), p.label)
        }
        // The front is joined: the middle of each segment has the front's colour
        for (a, b) in zip(points.prefix(3), points.prefix(3).dropFirst()) {
            let pa = l.pixel(x: a.x, y: a.y), pb = l.pixel(x: b.x, y: b.y)
            let n = max(abs(pb.x - pa.x), abs(pb.y - pa.y))
            XCTAssertEqual(pixel(img, pa.x + (pb.x - pa.x) * (n / 2) / n, pa.y + (pb.y - pa.y) * (n / 2) / n),
                           rgb(ScatterPlot.frontColour), "segment \(a.label)-\(b.label)")
        }
        // And the off-front point is not joined to anything: no front colour around it
        let off = l.pixel(x: 9e5, y: 30)
        let around = (-5...5).flatMap { dy in (-5...5).map { pixel(img, off.x + $0, off.y + dy) } }
        XCTAssertFalse(around.contains(rgb(ScatterPlot.frontColour)))
        // Labels and ticks are drawn in text colour somewhere left of and below the plot area
        let textPixels = (0..<img.height).flatMap { y in (0..<l.left).map { pixel(img, $0, y) } }.filter { $0 == rgb(ScatterPlot.text) }
        XCTAssertGreaterThan(textPixels.count, 20, "y tick labels")
        if let path = ProcessInfo.processInfo.environment["SCATTER_OUT"] { try img.write(to: URL(fileURLWithPath: path)) }
    }

    func testTicksAndLabels() {
        XCTAssertEqual(ScatterPlot.ticks(from: 0, to: 4), [1, 10, 100, 1000, 10_000])
        XCTAssertEqual(ScatterPlot.ticks(from: 0.1, to: 1.2), [2, 5, 10])
        XCTAssertEqual(ScatterPlot.ticks(from: -0.1, to: 2), [1, 3, 10, 30, 100])
        XCTAssertEqual(ScatterPlot.tickLabel(0.2), "0.2")
        XCTAssertEqual(ScatterPlot.tickLabel(500), "500")
        XCTAssertEqual(ScatterPlot.tickLabel(2e-5), "2E-5")
        XCTAssertEqual(ScatterPlot.tickLabel(1e10), "1E10")
        XCTAssertEqual(ScatterPlot.ticks(from: .nan, to: 1), [])
        XCTAssertLessThan(ScatterPlot.ticks(from: -320, to: 308).count, 20, "a hostile range gives a few ticks")
    }

    func testHostileAndEmptyInputStillDraws() {
        // NaN, infinities, zero and negatives are left out; one point alone gets a decade around it
        let hostile = [
            ScatterPlot.Point(label: "1", x: .nan, y: 1, front: true),
            ScatterPlot.Point(label: "2", x: .infinity, y: 1, front: false),
            ScatterPlot.Point(label: "3", x: -1, y: 0, front: true),
            ScatterPlot.Point(label: "4", x: 7, y: 7, front: true),
        ]
        let l = ScatterPlot.layout(hostile, width: 300, height: 200)
        XCTAssertEqual(l.x1 - l.x0, 1, accuracy: 1e-9)
        let img = ScatterPlot.render(hostile, width: 300, height: 200, xTitle: "x", yTitle: "y")
        let c = l.pixel(x: 7, y: 7)
        XCTAssertEqual(pixel(img, c.x, c.y), rgb(ScatterPlot.frontColour))
        let empty = ScatterPlot.render([], width: 300, height: 200, xTitle: "x", yTitle: "y")
        XCTAssertEqual([empty.width, empty.height], [300, 200])
        let extreme = [ScatterPlot.Point(label: "1", x: .leastNonzeroMagnitude, y: .greatestFiniteMagnitude, front: true),
                       ScatterPlot.Point(label: "2", x: .greatestFiniteMagnitude, y: .leastNonzeroMagnitude, front: true)]
        XCTAssertEqual(ScatterPlot.render(extreme, width: 300, height: 200, xTitle: "x", yTitle: "y").width, 300)
    }
}
