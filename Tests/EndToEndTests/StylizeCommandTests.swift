import Foundation
import NSTModel
import XCTest

/// `orchestrator stylize` as a user runs it: the real executable on real image files — folders,
/// several models, the contact sheet, strength and colour flags, tiling and its memory.
final class StylizeCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-stylize-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        Threads.configure(2)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func url(_ name: String) -> URL { dir.appendingPathComponent(name) }
    func path(_ name: String) -> String { url(name).path }

    func orchestrator(_ args: [String], timeout: TimeInterval = 300) throws -> CommandResult {
        try runCommand(TrainCommandTests.binary, args, environment: ProcessInfo.processInfo.environment,
                       logDir: dir, timeout: timeout)
    }

    /// Writes `visibleModel(seed:)` to NAME.safetensors.
    @discardableResult
    func model(_ name: String, seed: UInt64) throws -> TransformerNet {
        let net = TransformerNet.visible(seed: seed)
        try FileManager.default.createDirectory(at: url(name).deletingLastPathComponent(), withIntermediateDirectories: true)
        try net.save(to: url("\(name).safetensors"))
        return net
    }

    func image(_ name: String, index: Int, width: Int, height: Int) throws -> RGBImage {
        let img = SyntheticImages.contentImage(index: index, width: width, height: height, seed: 3)
        try FileManager.default.createDirectory(at: url(name).deletingLastPathComponent(), withIntermediateDirectories: true)
        try img.write(to: url(name))
        return img
    }

    // MARK: - Folders

    func testFolderModeMirrorsNamesAndSkipsBadFiles() throws {
        let net = try model("candy", seed: 1)
        let a = try image("photos/a.png", index: 0, width: 48, height: 40)
        let b = try image("photos/trip/b.png", index: 1, width: 48, height: 40)
        let c = try image("photos/trip/deep/c.png", index: 2, width: 36, height: 52)
        _ = try image("photos/d.jpg", index: 3, width: 40, height: 40)
        try Data("not an image".utf8).write(to: url("photos/notes.png"))
        try Data(repeating: 0xFF, count: 64).write(to: url("photos/trip/broken.jpg"))
        try Data("ignored".utf8).write(to: url("photos/readme.txt"))

        let r = try orchestrator(["stylize", "--model", path("candy.safetensors"), "--content", path("photos"), "--output", path("out")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("2 unreadable files skipped"), r.stderr)
        XCTAssertTrue(r.stderr.contains("skipped \(path("photos/notes.png"))"), r.stderr)
        XCTAssertTrue(r.stderr.contains("wrote 4 images to \(path("out"))"), r.stderr)
        let written = try FileManager.default.subpathsOfDirectory(atPath: path("out")).filter { !$0.hasSuffix("trip") && !$0.hasSuffix("deep") }
        XCTAssertEqual(Set(written), ["a.png", "d.jpg", "trip/b.png", "trip/deep/c.png"])
        // a and b (one size) went through as a batch, c alone: each is what the library gives for it.
        for (name, content) in [("a.png", a), ("trip/b.png", b), ("trip/deep/c.png", c)] {
            let out = try RGBImage(contentsOf: url("out/\(name)"))
            let expected = net.stylize(content)
            XCTAssertEqual([out.width, out.height], [content.width, content.height], name)
            let d = zip(out.pixels, expected.pixels).map { abs(Int($0) - Int($1)) }
            XCTAssertLessThanOrEqual(d.max() ?? 0, 1, name)
            XCTAssertLessThan(Double(d.filter { $0 > 0 }.count) / Double(d.count), 1e-3, name)
        }
        let jpeg = try RGBImage(contentsOf: url("out/d.jpg"))
        XCTAssertEqual([jpeg.width, jpeg.height], [40, 40])

        // Nothing readable: an error, not an empty success.
        try FileManager.default.createDirectory(at: url("junk"), withIntermediateDirectories: true)
        try Data("x".utf8).write(to: url("junk/x.png"))
        let none = try orchestrator(["stylize", "--model", path("candy.safetensors"), "--content", path("junk"), "--output", path("junk-out")])
        XCTAssertEqual(none.status, 1)
        XCTAssertTrue(none.stderr.contains("no image could be read"), none.stderr)
    }

    // MARK: - Several models and the contact sheet

    func testSeveralModelsGiveOneOutputEachAndAGrid() throws {
        let nets = [try model("models/candy", seed: 1), try model("models/mosaic", seed: 2)]
        let contents = [try image("photos/one.png", index: 0, width: 64, height: 48),
                        try image("photos/two.png", index: 1, width: 40, height: 40)]
        let r = try orchestrator(["stylize", "--model", path("models/candy.safetensors"), "--model", path("models/mosaic.safetensors"),
                                  "--content", path("photos"), "--output", path("out"), "--grid", path("sheet.png")])
        XCTAssertEqual(r.status, 0, r.stderr)
        for (m, name) in ["candy", "mosaic"].enumerated() {
            for (i, file) in ["one.png", "two.png"].enumerated() {
                let out = try RGBImage(contentsOf: url("out/\(name)/\(file)"))
                let d = zip(out.pixels, nets[m].stylize(contents[i]).pixels).map { abs(Int($0) - Int($1)) }
                XCTAssertLessThanOrEqual(d.max() ?? 0, 1, "\(name)/\(file)")
            }
        }
        // Content, then one column per style: 3 columns of 256 + 12-pixel gaps; 2 rows of 256 +
        // a 24-pixel label + a gap.
        let sheet = try RGBImage(contentsOf: url("sheet.png"))
        XCTAssertEqual([sheet.width, sheet.height], [12 + 3 * 268, 12 + 2 * 292])
        XCTAssertTrue(r.stderr.contains("2 rows × 3 columns"), r.stderr)
        func cell(_ row: Int, _ col: Int) -> [UInt8] {
            (0..<256).flatMap { y -> ArraySlice<UInt8> in
                let start = ((12 + row * 292 + y) * sheet.width + 12 + col * 268) * 3
                return sheet.pixels[start ..< start + 256 * 3]
            }
        }
        XCTAssertEqual(cell(0, 0), contents[0].resized(width: 256, height: 256).pixels, "the content comes first")
        XCTAssertEqual(cell(1, 2), try RGBImage(contentsOf: url("out/mosaic/two.png")).resized(width: 256, height: 256).pixels)
        XCTAssertNotEqual(cell(0, 1), cell(0, 2), "one column per model")
        // The style names are drawn under the cells: light pixels in the label band of each.
        for col in 0..<3 {
            let y0 = 12 + 256 + 6, x0 = 12 + col * 268
            var lit = false
            for y in y0..<(y0 + 14) {
                for x in x0..<(x0 + 256) where sheet.pixels[(y * sheet.width + x) * 3] == 235 { lit = true }
            }
            XCTAssertTrue(lit, "label under column \(col)")
        }

        // --models DIR: the same files (sorted by name), one content image → OUT/model/name.
        let viaDir = try orchestrator(["stylize", "--models", path("models"), "--content", path("photos/two.png"), "--output", path("out2")])
        XCTAssertEqual(viaDir.status, 0, viaDir.stderr)
        XCTAssertEqual(try Data(contentsOf: url("out2/candy/two.png")), try Data(contentsOf: url("out/candy/two.png")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("out2/mosaic/two.png")))

        // Two models of one name would write the same files.
        try model("other/candy", seed: 3)
        let clash = try orchestrator(["stylize", "--model", path("models/candy.safetensors"), "--model", path("other/candy.safetensors"),
                                      "--content", path("photos"), "--output", path("out3")])
        XCTAssertEqual(clash.status, 1)
        XCTAssertTrue(clash.stderr.contains("two models are named candy"), clash.stderr)
    }

    // MARK: - Flags

    func testStrengthAndPreserveColorFlags() throws {
        let net = try model("m", seed: 4)
        let content = try image("c.png", index: 2, width: 64, height: 48)
        for (args, expected) in [(["--strength", "0"], content), (["--strength", "1"], net.stylize(content))] {
            let r = try orchestrator(["stylize", "--model", path("m.safetensors"), "--content", path("c.png"), "--output", path("o.png")] + args)
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertTrue(try RGBImage(contentsOf: url("o.png")) == expected, "\(args)")
        }
        let kept = try orchestrator(["stylize", "--model", path("m.safetensors"), "--content", path("c.png"), "--output", path("k.png"),
                                     "--preserve-color", "--strength", "0.8"])
        XCTAssertEqual(kept.status, 0, kept.stderr)
        var settings = StylizeSettings(strength: 0.8, preserveColor: true)
        settings.tiling = .whole
        XCTAssertTrue(try RGBImage(contentsOf: url("k.png")) == Stylizer(net: net, settings: settings).stylize(content))

        let bad = try orchestrator(["stylize", "--model", path("m.safetensors"), "--content", path("c.png"), "--output", path("o.png"),
                                    "--strength", "1.5"])
        XCTAssertNotEqual(bad.status, 0)
        XCTAssertTrue(bad.stderr.contains("--strength must be between 0 and 1"), bad.stderr)
    }

    // MARK: - Tiling

    /// `--tile` gives the whole-image bytes (up to float-rounding ties).
    func testTiledRunMatchesTheWholeImage() throws {
        try model("m", seed: 5)
        _ = try image("c.png", index: 1, width: 410, height: 301)
        let tiled = try orchestrator(["stylize", "--model", path("m.safetensors"), "--content", path("c.png"), "--output", path("t.png"), "--tile", "192"])
        XCTAssertEqual(tiled.status, 0, tiled.stderr)
        let whole = try orchestrator(["stylize", "--model", path("m.safetensors"), "--content", path("c.png"), "--output", path("w.png")])
        XCTAssertEqual(whole.status, 0, whole.stderr)
        let t = try RGBImage(contentsOf: url("t.png")), w = try RGBImage(contentsOf: url("w.png"))
        XCTAssertEqual([t.width, t.height], [412, 304], "4⌈H/4⌉ as the whole image")
        XCTAssertEqual([w.width, w.height], [412, 304])
        let d = zip(t.pixels, w.pixels).map { abs(Int($0) - Int($1)) }
        XCTAssertLessThanOrEqual(d.max() ?? 0, 1)
        XCTAssertLessThan(Double(d.filter { $0 > 0 }.count) / Double(d.count), 1e-3)
    }

    /// The peak resident memory of `stylize --tile` (VmHWM, printed by the hidden
    /// `--print-peak-memory`) on images of 0.4 and 1.6 megapixels: it grows only by the images
    /// themselves (bytes per pixel: content, output, encoding), while a whole-image run measured
    /// the same way grows by its activations, hundreds of bytes per pixel.
    func testTiledPeakMemoryDoesNotGrowWithTheImage() throws {
        try model("m", seed: 6)
        let sizes = [640, 1280]
        for s in sizes { _ = try image("c\(s).png", index: 0, width: s, height: s) }
        func peak(_ size: Int, _ extra: [String]) throws -> Int {
            let r = try orchestrator(["stylize", "--model", path("m.safetensors"), "--content", path("c\(size).png"),
                                      "--output", path("o\(size).png"), "--print-peak-memory", "--max-memory", "16G"] + extra)
            XCTAssertEqual(r.status, 0, r.stderr)
            let line = r.stdout.split(separator: "\n").first { $0.hasPrefix("peak_rss_bytes ") }
            return try XCTUnwrap(line.flatMap { Int($0.dropFirst("peak_rss_bytes ".count)) }, r.stdout)
        }
        let extraPixels = sizes[1] * sizes[1] - sizes[0] * sizes[0]
        let tiled = try sizes.map { try peak($0, ["--tile", "320"]) }
        let whole = try sizes.map { try peak($0, []) }
        let tiledGrowth = Double(tiled[1] - tiled[0]) / Double(extraPixels)
        let wholeGrowth = Double(whole[1] - whole[0]) / Double(extraPixels)
        print("peak RSS: tiled \(tiled), whole \(whole); bytes per extra pixel: tiled \(tiledGrowth), whole \(wholeGrowth)")
        XCTAssertLessThan(tiledGrowth, 32, "tiled: \(tiled)")
        XCTAssertGreaterThan(wholeGrowth, 300, "whole: \(whole) (the measurement does see activations grow)")
        XCTAssertLessThan(tiled[1], whole[1] / 3)
    }
}
