import NSTModel
import XCTest

final class DeflickerTests: XCTestCase {
    /// Still content with jittery outputs: the blended frames jitter less; where the content
    /// moves, the new output is kept as it is.
    func testStillPixelsAreSmoothedAndMovingOnesKept() {
        let w = 32, h = 16
        var rng = SplitMix64(seed: 9)
        var deflicker = Deflicker()
        var previous: (raw: [UInt8], smoothed: [UInt8], bar: Range<Int>)?
        var rawJitter = 0, smoothedJitter = 0
        for t in 0..<12 {
            // The content: still, except a 4-pixel-wide bar that moves right by 4 each frame.
            let bar = (4 * t) % w ..< (4 * t) % w + 4
            var content = RGBImage(width: w, height: h, pixels: [UInt8](repeating: 90, count: w * h * 3))
            for y in 0..<h { for x in bar { for c in 0..<3 { content.pixels[(y * w + x) * 3 + c] = 250 } } }
            // The output: the content plus ±20 of noise, a new draw every frame.
            let noisy = content.pixels.map { UInt8(clamping: Int($0) + Int(rng.next() % 41) - 20) }
            var output = RGBImage(width: w, height: h, pixels: noisy)
            deflicker.apply(content: content, output: &output)
            if t == 0 { XCTAssertEqual(output.pixels, noisy, "the first frame is kept") }
            for y in 0..<h {
                for x in 0..<w {
                    for c in 0..<3 {
                        let i = (y * w + x) * 3 + c
                        if bar.contains(x) { XCTAssertEqual(output.pixels[i], noisy[i], "moving pixel \(i) at frame \(t)") }
                        guard let p = previous, !bar.contains(x), !p.bar.contains(x) else { continue }
                        rawJitter += abs(Int(noisy[i]) - Int(p.raw[i]))
                        smoothedJitter += abs(Int(output.pixels[i]) - Int(p.smoothed[i]))
                    }
                }
            }
            previous = (noisy, output.pixels, bar)
        }
        XCTAssertGreaterThan(rawJitter, 0)
        XCTAssertLessThan(Double(smoothedJitter), 0.5 * Double(rawJitter), "on still pixels")
    }

    func testFrameDifferenceIsTheMeanAbsoluteByteDifference() {
        var meter = FrameDifference()
        meter.add(RGBImage(width: 1, height: 1, pixels: [10, 20, 30]))
        XCTAssertEqual(meter.mean, 0)
        meter.add(RGBImage(width: 1, height: 1, pixels: [13, 20, 24]))   // (3 + 0 + 6) / 3 = 3
        meter.add(RGBImage(width: 1, height: 1, pixels: [13, 20, 24]))   // 0
        XCTAssertEqual(meter.pairs, 2)
        XCTAssertEqual(meter.mean, 1.5, accuracy: 1e-12)
    }
}
