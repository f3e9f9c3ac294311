import NSTModel
import XCTest

/// Strength and colour preservation, through `Stylizer` on a real (random, visible) network.
final class OutputMixTests: XCTestCase {
    override func setUp() { Threads.configure(2) }

    let image = SyntheticImages.contentImage(index: 3, width: 96, height: 64, seed: 4)

    func stylize(strength: Double = 1, preserveColor: Bool = false) throws -> RGBImage {
        try Stylizer(net: TransformerNet.visible(seed: 21),
                     settings: StylizeSettings(strength: strength, preserveColor: preserveColor)).stylize(image)
    }

    func testStrengthZeroIsTheContentAndOneThePlainOutput() throws {
        let net = TransformerNet.visible(seed: 21)
        let plain = net.stylize(image)   // the network's own clamp-and-truncate
        XCTAssertEqual(try stylize(strength: 1), plain)
        XCTAssertEqual(try stylize(strength: 0), image)
        XCTAssertNotEqual(plain, image)
        // In between, each byte lies between the two (up to truncation).
        let half = try stylize(strength: 0.5)
        for i in 0..<half.pixels.count {
            let lo = Int(min(plain.pixels[i], image.pixels[i])), hi = Int(max(plain.pixels[i], image.pixels[i]))
            XCTAssertTrue((lo - 1...hi).contains(Int(half.pixels[i])), "byte \(i)")
        }
        XCTAssertGreaterThan(InferenceSupport.byteDifference(half, plain).fraction, 0.5)
    }

    /// The result's chroma is the content's within rounding (on pixels that no channel clamps),
    /// and its luma is the stylised output's.
    func testPreserveColorKeepsTheContentsChroma() throws {
        let plain = try stylize()
        let kept = try stylize(preserveColor: true)
        func ycbcr(_ img: RGBImage, _ i: Int) -> (y: Double, cb: Double, cr: Double) {
            let r = Double(img.pixels[3 * i]), g = Double(img.pixels[3 * i + 1]), b = Double(img.pixels[3 * i + 2])
            return (0.299 * r + 0.587 * g + 0.114 * b, -0.168736 * r - 0.331264 * g + 0.5 * b, 0.5 * r - 0.418688 * g - 0.081312 * b)
        }
        var compared = 0, chromaMoved = 0
        for i in 0..<(96 * 64) {
            let px = kept.pixels[3 * i ..< 3 * i + 3]
            guard !px.contains(0), !px.contains(255) else { continue }
            compared += 1
            let k = ycbcr(kept, i), c = ycbcr(image, i), s = ycbcr(plain, i)
            XCTAssertEqual(k.cb, c.cb, accuracy: 1, "Cb at \(i)")
            XCTAssertEqual(k.cr, c.cr, accuracy: 1, "Cr at \(i)")
            XCTAssertEqual(k.y, s.y, accuracy: 2, "Y at \(i)")
            if abs(s.cb - c.cb) > 4 || abs(s.cr - c.cr) > 4 { chromaMoved += 1 }
        }
        XCTAssertGreaterThan(compared, 96 * 64 / 2, "most pixels are not clamped")
        XCTAssertGreaterThan(chromaMoved, compared / 4, "the plain stylisation does change the colours")
    }
}
