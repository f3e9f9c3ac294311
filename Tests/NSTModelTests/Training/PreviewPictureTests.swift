import Foundation
import NSTModel
import XCTest

/// Issue 14, part 4: the picture a job's previews render is its first held-out photo, centre
/// square resized, or the synthetic scene without validation images.
final class PreviewPictureTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-preview-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A `width`×`height` picture whose pixel (x, y) is (x, y, seed).
    func gradient(width: Int, height: Int, seed: UInt8) -> RGBImage {
        var pixels: [UInt8] = []
        for y in 0..<height { for x in 0..<width { pixels += [UInt8(truncatingIfNeeded: x), UInt8(truncatingIfNeeded: y), seed] } }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    func pixel(_ img: RGBImage, _ x: Int, _ y: Int) -> [UInt8] {
        Array(img.pixels[(y * img.width + x) * 3..<(y * img.width + x) * 3 + 3])
    }

    func testCentreSquareKeepsTheMiddle() {
        let wide = gradient(width: 9, height: 4, seed: 1).centreSquare()
        XCTAssertEqual([wide.width, wide.height], [4, 4])
        XCTAssertEqual(pixel(wide, 0, 0), [2, 0, 1], "an odd cut: 2 columns off the left, 3 off the right")
        XCTAssertEqual(pixel(wide, 3, 3), [5, 3, 1])
        let tall = gradient(width: 3, height: 8, seed: 2).centreSquare()
        XCTAssertEqual([tall.width, tall.height], [3, 3])
        XCTAssertEqual(pixel(tall, 0, 0), [0, 2, 2])
        XCTAssertEqual(pixel(tall, 2, 2), [2, 4, 2])
        let square = gradient(width: 5, height: 5, seed: 3)
        XCTAssertEqual(square.centreSquare(), square)
    }

    func testThePictureIsTheFirstHeldOutImageCroppedAndResized() throws {
        // Given a folder of five PNGs, the last two held out, the first of them 250×200
        let photos = (0..<5).map { gradient(width: 100 + 50 * $0, height: 200, seed: UInt8($0)) }
        for (k, photo) in photos.enumerated() {
            try photo.write(to: dir.appendingPathComponent("img_\(k).png"))
        }
        let split = try HeldOutSplit(try ImageFolder(root: dir), validationImages: 2)
        // When the picture is chosen
        let (picture, source) = PreviewPicture.content(validation: split.validation)
        // Then it is image 4 of 5 (the first held out): its middle 200×200, resized to 192×192
        XCTAssertEqual([picture.width, picture.height], [PreviewPicture.size, PreviewPicture.size])
        XCTAssertEqual(picture, photos[3].centreSquare().resized(width: 192, height: 192))
        XCTAssertEqual(pixel(picture, 0, 0)[2], 3)
        XCTAssertGreaterThanOrEqual(pixel(picture, 0, 0)[0], 25, "the left 25 columns are cut off")
        XCTAssertTrue(source.hasPrefix("validation image 1 of"), source)
        // And it is not the synthetic scene, which a job without validation images gets
        XCTAssertNotEqual(picture, PreviewPicture.syntheticScene())
        let none = try HeldOutSplit(try ImageFolder(root: dir), validationImages: 0)
        XCTAssertEqual(PreviewPicture.content(validation: none.validation).image, PreviewPicture.syntheticScene())
        XCTAssertEqual(PreviewPicture.content(validation: nil).source, "the synthetic scene")
    }

    func testAnUnreadableFirstImageFallsToTheNextThenToTheScene() throws {
        // Given two held-out images, the first not an image at all
        try gradient(width: 64, height: 64, seed: 9).write(to: dir.appendingPathComponent("a.png"))
        try Data("not a png".utf8).write(to: dir.appendingPathComponent("b.png"))
        try gradient(width: 30, height: 60, seed: 7).write(to: dir.appendingPathComponent("c.png"))
        let split = try HeldOutSplit(try ImageFolder(root: dir), validationImages: 2)
        // Then the picture is the second
        let (picture, source) = PreviewPicture.content(validation: split.validation, size: 30)
        XCTAssertEqual(picture, gradient(width: 30, height: 60, seed: 7).centreSquare())
        XCTAssertTrue(source.hasPrefix("validation image 2 of"), source)
        // And with none readable, the scene
        try Data("nor this".utf8).write(to: dir.appendingPathComponent("c.png"))
        XCTAssertEqual(PreviewPicture.content(validation: split.validation, size: 30).image,
                       PreviewPicture.syntheticScene(size: 30))
    }

    func testPackedImagesGiveTheSamePictureAsTheirFiles() throws {
        // Given a shard holding two PNGs, and one listed file that is excluded
        let a = try gradient(width: 20, height: 10, seed: 1).pngData(), b = try gradient(width: 8, height: 8, seed: 2).pngData()
        let shard = dir.appendingPathComponent("shard-0")
        try (a + b).write(to: shard)
        let packed = PackedImages(images: [
            PackedImage(path: "a.png", source: .bytes(url: shard, offset: 0, length: Int64(a.count), sha256: nil)),
            PackedImage(path: "gone.jpg", source: .excluded(reason: "not an image")),
            PackedImage(path: "b.png", source: .bytes(url: shard, offset: Int64(a.count), length: Int64(b.count), sha256: nil)),
        ], description: "test pack")
        // Then each image decodes at its own size, and an excluded one is an error naming it
        XCTAssertEqual(try packed.image(at: 0), gradient(width: 20, height: 10, seed: 1))
        XCTAssertEqual(try ImageRange(packed, range: 1..<3, label: "validation").image(at: 1), gradient(width: 8, height: 8, seed: 2))
        XCTAssertThrowsError(try packed.image(at: 1)) { XCTAssertTrue("\($0)".contains("gone.jpg"), "\($0)") }
    }
}
