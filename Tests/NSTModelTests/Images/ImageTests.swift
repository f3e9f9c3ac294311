import Foundation
@testable import NSTModel
import XCTest

/// Image codec, PIL-exact resize, CHW conversion, image folders and synthetic scenes.
/// Fixtures come from scripts/make_image_fixtures.py (Pillow 13, libjpeg-turbo 3.2).
final class ImageTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ImageTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    // MARK: - Helpers

    private var fixtures: URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures/images")
    }

    private func fixture(_ name: String) throws -> RGBImage {
        try RGBImage(contentsOf: fixtures.appendingPathComponent(name))
    }

    private func cases(_ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent(name))
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [[String: Any]])
    }

    /// The ImageError thrown by `body` (nil if none; a failure for any other error type).
    private func imageError(_ body: () throws -> Void, line: UInt = #line) -> ImageError? {
        do {
            try body()
            return nil
        } catch let error as ImageError {
            return error
        } catch {
            XCTFail("unexpected error type: \(error)", line: line)
            return nil
        }
    }

    private func maxDiff(_ a: RGBImage, _ b: RGBImage) -> Int {
        zip(a.pixels, b.pixels).map { abs(Int($0) - Int($1)) }.max() ?? 0
    }

    private func randomImage(width: Int, height: Int, seed: UInt64) -> RGBImage {
        var rng = SplitMix64(seed: seed)
        return RGBImage(width: width, height: height,
                        pixels: (0..<width * height * 3).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
    }

    @discardableResult
    private func write(_ bytes: [UInt8], _ name: String) throws -> URL {
        let url = tmp.appendingPathComponent(name)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
        return url
    }

    // MARK: - Round trips

    func testPNGRoundTripIsExact() throws {
        let image = randomImage(width: 13, height: 7, seed: 1)
        let decoded = try RGBImage(decoding: try image.pngData(), name: "memory")
        XCTAssertEqual(decoded, image)

        let url = tmp.appendingPathComponent("round.PNG")
        try image.write(to: url)
        XCTAssertEqual(try RGBImage(contentsOf: url), image)
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: tmp.path)
        XCTAssertEqual(leftovers, ["round.PNG"], "atomic write leaves no temporary file")
    }

    func testJPEGRoundTripIsClose() throws {
        let image = SyntheticImages.contentImage(index: 3, width: 64, height: 48)
        let url = tmp.appendingPathComponent("round.jpeg")
        try image.write(to: url, quality: 95)
        let bytes = [UInt8](try Data(contentsOf: url))
        XCTAssertEqual(Array(bytes.prefix(3)), [0xFF, 0xD8, 0xFF])
        let decoded = try RGBImage(contentsOf: url)
        XCTAssertEqual([decoded.width, decoded.height], [64, 48])
        let meanAbs = Double(zip(decoded.pixels, image.pixels).map { abs(Int($0) - Int($1)) }.reduce(0, +))
            / Double(image.pixels.count)
        XCTAssertLessThan(meanAbs, 3.0)
        XCTAssertNotEqual(decoded, image, "JPEG is lossy: an exact match would mean no JPEG was written")
    }

    func testWriteErrorsNameTheFile() {
        let image = randomImage(width: 4, height: 4, seed: 2)
        let bmp = tmp.appendingPathComponent("out.bmp")
        XCTAssertEqual(imageError { try image.write(to: bmp) },
                       .encodeFailed(path: bmp.path, reason: "unsupported extension; use .png, .jpg or .jpeg"))
        let nowhere = tmp.appendingPathComponent("missing/dir/out.png")
        let error = imageError { try image.write(to: nowhere) }
        guard case let .writeFailed(path, _) = error else { return XCTFail("expected writeFailed, got \(String(describing: error))") }
        XCTAssertEqual(path, nowhere.path)
        XCTAssertEqual(imageError { _ = try image.jpegData(quality: 0) }?.path, "<jpeg>")
    }

    // MARK: - Decoding against PIL

    func testDecodeMatchesPIL() throws {
        let all = try cases("decode_cases.json")
        XCTAssertEqual(all.count, 19)
        for c in all {
            let file = c["file"] as! String, expectedFile = c["expected"] as! String
            let image = try fixture(file)
            let expected = try fixture(expectedFile)
            XCTAssertEqual([image.width, image.height], [45, 33], file)
            XCTAssertEqual(maxDiff(image, expected), 0, "\(file): max difference from PIL")
            XCTAssertEqual(zip(image.pixels, expected.pixels).filter { $0 != $1 }.count, 0, "\(file): bytes differing from PIL")
        }
    }

    func testCHWLayoutAndRoundTrip() {
        // 2x1 image: pixel 0 = (1, 2, 3), pixel 1 = (4, 5, 6).
        let image = RGBImage(width: 2, height: 1, pixels: [1, 2, 3, 4, 5, 6])
        let t = Tensor(shape: [1, 3, 1, 2])
        image.writeCHW(to: t.data)
        XCTAssertEqual(t.array, [1, 4, 2, 5, 3, 6])
        XCTAssertEqual(RGBImage(chw: t.data, width: 2, height: 1), image)

        let big = randomImage(width: 9, height: 5, seed: 3)
        let u = Tensor(shape: [3, 5, 9])
        big.writeCHW(to: u.data)
        XCTAssertEqual(u.data[2 * 45 + 4 * 9 + 7], Float(big.pixels[(4 * 9 + 7) * 3 + 2]))
        XCTAssertEqual(RGBImage(chw: u.data, width: 9, height: 5), big)
    }

    func testCHWClampsThenTruncatesLikeNumpy() {
        // numpy: np.array(v).clip(0, 255).astype(np.uint8)
        let v: [Float] = [-3, 0.9, 1.999, 254.7, 255, 300, .nan, -.infinity, .infinity, 127.5, -0.5, 255.9]
        let expected: [UInt8] = [0, 0, 1, 254, 255, 255, 0, 0, 255, 127, 0, 255]
        let t = Tensor(shape: [3, 1, 4], values: v)
        let image = RGBImage(chw: t.data, width: 4, height: 1)
        // Back to planar order to compare with v.
        let planar = (0..<3).flatMap { c in (0..<4).map { image.pixels[$0 * 3 + c] } }
        XCTAssertEqual(planar, expected)
    }

    // MARK: - Resize against PIL

    func testResizeMatchesPILExactly() throws {
        let all = try cases("resize_cases.json")
        XCTAssertEqual(all.count, 16)
        for c in all {
            let source = try fixture(c["source"] as! String)
            let expected = try fixture(c["expected"] as! String)
            let w = c["width"] as! Int, h = c["height"] as! Int
            let ours = source.resized(width: w, height: h)
            XCTAssertEqual([ours.width, ours.height], [w, h])
            let differing = zip(ours.pixels, expected.pixels).filter { $0 != $1 }.count
            XCTAssertEqual(maxDiff(ours, expected), 0, "\(c["expected"]!): max difference from PIL")
            XCTAssertEqual(differing, 0, "\(c["expected"]!): bytes differing from PIL")
        }
    }

    func testResizeTapsAreNormalisedAndAntialias() {
        // Shrinking 10 -> 3: support 3.33 px, so each output pixel averages several inputs.
        let taps = BilinearTaps(inSize: 10, outSize: 3)
        for o in 0..<3 {
            let sum = (0..<taps.count[o]).map { Int(taps.weights[o * taps.ksize + $0]) }.reduce(0, +)
            XCTAssertEqual(Double(sum), Double(1 << 22), accuracy: 4)
            XCTAssertGreaterThan(taps.count[o], 3)
        }
        // A constant image stays constant at any size.
        let flat = RGBImage(width: 11, height: 7, pixels: [UInt8](repeating: 200, count: 11 * 7 * 3))
        XCTAssertEqual(flat.resized(width: 4, height: 19).pixels, [UInt8](repeating: 200, count: 4 * 19 * 3))
    }

    // MARK: - Bad input

    func testCorruptFilesGiveErrorsNamingTheFile() throws {
        let jpeg = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("jpeg_420.jpg")))
        let png = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("png_rgba.png")))
        var rng = SplitMix64(seed: 9)
        let random = (0..<500).map { _ in UInt8(truncatingIfNeeded: rng.next()) }

        let truncatedJPEG = try write(Array(jpeg.prefix(jpeg.count / 2)), "truncated.jpg")
        let truncatedPNG = try write(Array(png.prefix(png.count / 2)), "truncated.png")
        let headerOnlyPNG = try write(Array(png.prefix(40)), "header.png")
        let garbageJPEG = try write([0xFF, 0xD8, 0xFF] + random, "garbage-after-soi.jpg")
        var badCRC = png
        badCRC[30] ^= 0xFF  // inside IHDR
        let crcPNG = try write(badCRC, "badcrc.png")
        for url in [truncatedJPEG, truncatedPNG, headerOnlyPNG, garbageJPEG, crcPNG] {
            let error = imageError { _ = try RGBImage(contentsOf: url) }
            guard case let .corrupt(path, reason) = error else {
                XCTFail("\(url.lastPathComponent): expected corrupt, got \(String(describing: error))")
                continue
            }
            XCTAssertEqual(path, url.path)
            XCTAssertFalse(reason.isEmpty)
            XCTAssertTrue(error!.description.contains(url.path))
        }
        XCTAssertTrue("\(imageError { _ = try RGBImage(contentsOf: truncatedJPEG) }!)".contains("truncated"))

        let randomJPG = try write(random, "random.jpg")
        let textPNG = try write(Array("hello, not an image\n".utf8), "notes.png")
        let empty = try write([], "empty.jpg")
        for url in [randomJPG, textPNG, empty] {
            XCTAssertEqual(imageError { _ = try RGBImage(contentsOf: url) }, .notAnImage(path: url.path))
        }

        let missing = tmp.appendingPathComponent("missing.png")
        let dirNamedJPG = tmp.appendingPathComponent("folder.jpg")
        try FileManager.default.createDirectory(at: dirNamedJPG, withIntermediateDirectories: true)
        for url in [missing, dirNamedJPG] {
            let error = imageError { _ = try RGBImage(contentsOf: url) }
            guard case .unreadable(url.path, _) = error else {
                XCTFail("\(url.lastPathComponent): expected unreadable, got \(String(describing: error))")
                continue
            }
        }
    }

    func testAbsurdDimensionsAreRejected() throws {
        // PNG: patch IHDR width to 40000 and fix the CRC.
        var png = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("png_gray8.png")))
        png.replaceSubrange(16..<20, with: [0, 0, 0x9C, 0x40])
        let crc = crc32(png[12..<29])
        png.replaceSubrange(29..<33, with: [24, 16, 8, 0].map { UInt8(truncatingIfNeeded: crc >> $0) })
        XCTAssertEqual(imageError { _ = try RGBImage(decoding: Data(png), name: "wide.png") },
                       .tooLarge(path: "wide.png", width: 40000, height: 33))

        // JPEG: patch the SOF0 frame height and width to 20000 x 20000 (400 M pixels).
        var jpeg = [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("jpeg_444.jpg")))
        let sof = try XCTUnwrap((0..<jpeg.count - 1).first { jpeg[$0] == 0xFF && jpeg[$0 + 1] == 0xC0 })
        jpeg.replaceSubrange(sof + 5..<sof + 9, with: [0x4E, 0x20, 0x4E, 0x20])
        XCTAssertEqual(imageError { _ = try RGBImage(decoding: Data(jpeg), name: "huge.jpg") },
                       .tooLarge(path: "huge.jpg", width: 20000, height: 20000))
    }

    private func crc32<C: Collection>(_ bytes: C) -> UInt32 where C.Element == UInt8 {
        var crc: UInt32 = 0xFFFF_FFFF
        for b in bytes {
            crc ^= UInt32(b)
            for _ in 0..<8 { crc = crc & 1 == 1 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
        }
        return ~crc
    }
}

/// ImageFolder listing and batch loading, and the synthetic scene generator.
final class ImageFolderTests: XCTestCase {
    private var tmp: URL!

    override func setUpWithError() throws {
        tmp = FileManager.default.temporaryDirectory.appendingPathComponent("ImageFolderTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: tmp, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: tmp)
    }

    private func touch(_ relative: String, _ bytes: [UInt8] = []) throws {
        let url = tmp.appendingPathComponent(relative)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }

    /// The ImageError thrown by `body` (nil if none; a failure for any other error type).
    private func folderError(_ body: () throws -> Void, line: UInt = #line) -> ImageError? {
        do {
            try body()
            return nil
        } catch let error as ImageError {
            return error
        } catch {
            XCTFail("unexpected error type: \(error)", line: line)
            return nil
        }
    }

    // MARK: - Listing

    func testListsRecursivelySortedLikePythonAndFilters() throws {
        for name in ["b.jpg", "a.PNG", "sub/c.jpeg", "sub/deeper/d.png", ".hidden/e.jpg", ".f.png",
                     "notes.txt", "x.gif", "A-1.jpg", "sub-b.jpg", "Z.JpEg", "jpg", "sub/deeper/nojpg"] {
            try touch(name)
        }
        try FileManager.default.createSymbolicLink(atPath: tmp.appendingPathComponent("link").path,
                                                   withDestinationPath: tmp.appendingPathComponent("sub").path)
        // Expected order from Python: sorted(os.path.join(d, f) for d, _, fs in os.walk(root) ...).
        let expected = [".f.png", ".hidden/e.jpg", "A-1.jpg", "Z.JpEg", "a.PNG", "b.jpg", "sub-b.jpg",
                        "sub/c.jpeg", "sub/deeper/d.png"]
        let folder = try ImageFolder(root: tmp)
        XCTAssertEqual(folder.files.map { String($0.path.dropFirst(tmp.path.count + 1)) }, expected)
        XCTAssertEqual(folder.root, tmp)

        let cut = try ImageFolder(root: tmp, maxImages: 3)
        XCTAssertEqual(cut.files, Array(folder.files.prefix(3)))
        XCTAssertEqual(try ImageFolder(root: tmp, maxImages: 100).files.count, 9)
        XCTAssertEqual(try ImageFolder(root: tmp, maxImages: 0).files, [])
    }

    func testMissingOrFileRootIsAnError() throws {
        let missing = tmp.appendingPathComponent("nope")
        XCTAssertEqual(folderError { _ = try ImageFolder(root: missing) }, .missingDirectory(path: missing.path))
        try touch("file.jpg")
        let file = tmp.appendingPathComponent("file.jpg")
        let error = folderError { _ = try ImageFolder(root: file) }
        XCTAssertEqual(error, .notADirectory(path: file.path))
        XCTAssertEqual(error?.description, "image folder \(file.path) is not a directory")
    }

    // MARK: - Loading

    func testLoadBatchResizesSkipsBadFilesAndPacksRows() throws {
        let exact = SyntheticImages.contentImage(index: 0, width: 8, height: 8)
        let wide = SyntheticImages.contentImage(index: 1, width: 20, height: 10)
        try exact.write(to: tmp.appendingPathComponent("a.png"))
        try touch("b.jpg", [0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3])        // corrupt JPEG
        try wide.write(to: tmp.appendingPathComponent("c.png"))
        try touch("d.png")                                            // empty
        try touch("e.jpg", Array("just text".utf8))                   // not an image
        try exact.write(to: tmp.appendingPathComponent("f.jpg"), quality: 95)
        let folder = try ImageFolder(root: tmp)
        XCTAssertEqual(folder.files.map(\.lastPathComponent), ["a.png", "b.jpg", "c.png", "d.png", "e.jpg", "f.jpg"])

        let batch = Tensor(shape: [5, 3, 8, 8])
        batch.fill(-1)
        let (loaded, skipped) = folder.loadBatch(start: 0, count: 5, size: 8, into: batch)
        XCTAssertEqual(loaded, 2)
        XCTAssertEqual(skipped.map { URL(fileURLWithPath: $0.path).lastPathComponent }, ["b.jpg", "d.png", "e.jpg"])
        XCTAssertTrue(skipped[0].reason.contains("corrupt"), skipped[0].reason)
        XCTAssertTrue(skipped[1].reason.contains("not a JPEG or PNG"), skipped[1].reason)

        let plane = 3 * 8 * 8
        let row0 = Tensor(shape: [3, 8, 8]), row1 = Tensor(shape: [3, 8, 8])
        exact.writeCHW(to: row0.data)
        wide.resized(width: 8, height: 8).writeCHW(to: row1.data)
        XCTAssertEqual(Array(batch.buffer[0..<plane]), row0.array)
        XCTAssertEqual(Array(batch.buffer[plane..<2 * plane]), row1.array)
        XCTAssertTrue(batch.buffer[2 * plane..<5 * plane].allSatisfy { $0 == -1 }, "rows after `loaded` untouched")

        // The tail: start 4 loads e (skipped) and f; start past the end loads nothing.
        let tail = folder.loadBatch(start: 4, count: 5, size: 8, into: batch)
        XCTAssertEqual(tail.loaded, 1)
        XCTAssertEqual(tail.skipped.count, 1)
        let jpegRow = try RGBImage(contentsOf: tmp.appendingPathComponent("f.jpg"))
        jpegRow.writeCHW(to: row0.data)
        XCTAssertEqual(Array(batch.buffer[0..<plane]), row0.array)
        let none = folder.loadBatch(start: 6, count: 2, size: 8, into: batch)
        XCTAssertEqual(none.loaded, 0)
        XCTAssertTrue(none.skipped.isEmpty)
    }

    // MARK: - Synthetic scenes

    func testSyntheticImagesAreDeterministicAndVaried() {
        let a = SyntheticImages.contentImage(index: 5, width: 48, height: 40)
        XCTAssertEqual(a, SyntheticImages.contentImage(index: 5, width: 48, height: 40))
        XCTAssertEqual([a.width, a.height, a.pixels.count], [48, 40, 48 * 40 * 3])
        XCTAssertNotEqual(a, SyntheticImages.contentImage(index: 6, width: 48, height: 40))
        XCTAssertNotEqual(a, SyntheticImages.contentImage(index: 5, width: 48, height: 40, seed: 8))

        // Scenes, not flat fields or noise: a strong vertical structure (sky above, ground below)
        // and neighbouring pixels much closer than random pairs.
        for index in 0..<8 {
            let img = SyntheticImages.contentImage(index: index, width: 64, height: 64)
            let px = img.pixels.map(Double.init)
            let mean = px.reduce(0, +) / Double(px.count)
            let std = (px.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(px.count)).squareRoot()
            XCTAssertGreaterThan(std, 15, "index \(index) is too flat")
            var neighbour = 0.0
            for i in 0..<(64 * 63 * 3) where (i / 3) % 64 != 63 { neighbour += abs(px[i] - px[i + 3]) }
            neighbour /= Double(64 * 63 * 3)
            XCTAssertLessThan(neighbour, std * 0.5, "index \(index) looks like noise")
        }
    }

    func testWriteDatasetWritesNamedDecodableFiles() throws {
        let dir = tmp.appendingPathComponent("demo/content")
        let urls = try SyntheticImages.writeDataset(to: dir, count: 6, size: 32)
        XCTAssertEqual(urls.map(\.lastPathComponent),
                       ["img_00000.jpg", "img_00001.jpg", "img_00002.jpg", "img_00003.jpg", "img_00004.png", "img_00005.jpg"])
        XCTAssertEqual(try ImageFolder(root: dir).files.map(\.lastPathComponent), urls.map(\.lastPathComponent))
        let png = try RGBImage(contentsOf: urls[4])
        XCTAssertEqual(png, SyntheticImages.contentImage(index: 4, width: 32, height: 32), "PNG is lossless")
        let jpg = try RGBImage(contentsOf: urls[0])
        XCTAssertEqual([jpg.width, jpg.height], [32, 32])
    }
}
