import CoordinatorAPI
@testable import DatasetPack
import Foundation
import NSTModel
import XCTest

/// A worker's own copy of the dataset: which manifest files it can use in place.
final class InPlaceTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-inplace-\(UUID().uuidString)")
        _ = try SyntheticImages.writeDataset(to: dir.appendingPathComponent("data/sub"), count: 6, size: 24, seed: 8)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func testFilesWithTheSamePathSizeAndHashAreUsedInPlace() throws {
        // Given a manifest of data/ and a worker's copy with one file altered (same size),
        // one re-encoded (another size), one missing and one extra
        let store = ContentStore(root: dir.appendingPathComponent("store"))
        var builder = DatasetBuilder(store: store, cacheDirectory: dir.appendingPathComponent("cache"))
        builder.shardBytes = 2000
        let built = try builder.build(root: dir.appendingPathComponent("data"), name: "d")
        let m = built.manifest
        let local = dir.appendingPathComponent("local")
        try FileManager.default.copyItem(at: dir.appendingPathComponent("data"), to: local)
        var altered = try Data(contentsOf: local.appendingPathComponent("sub/img_00001.jpg"))
        altered[altered.count / 2] ^= 0xFF
        try altered.write(to: local.appendingPathComponent("sub/img_00001.jpg"))
        try SyntheticImages.contentImage(index: 2, width: 24, height: 24, seed: 8)
            .write(to: local.appendingPathComponent("sub/img_00002.jpg"), quality: 50)
        try FileManager.default.removeItem(at: local.appendingPathComponent("sub/img_00003.jpg"))
        try Data("x".utf8).write(to: local.appendingPathComponent("sub/extra.jpg"))

        // When they are matched
        let cacheDir = dir.appendingPathComponent("worker-cache")
        let match = try m.matchLocalFiles(in: local, cacheDirectory: cacheDir, threads: 2)

        // Then the 3 identical files are usable, at their local paths, and the others are not
        XCTAssertEqual(match.usable.keys.sorted().map { m.files[$0].path }, ["sub/img_00000.jpg", "sub/img_00004.png", "sub/img_00005.jpg"])
        for (i, url) in match.usable { XCTAssertEqual(url.path, local.appendingPathComponent(m.files[i].path).path) }
        XCTAssertEqual(match.differing.map(\.path), ["sub/img_00001.jpg", "sub/img_00002.jpg"])
        XCTAssertTrue(match.differing[0].reason.hasPrefix("other bytes"), match.differing[0].reason)
        XCTAssertTrue(match.differing[1].reason.contains("bytes, the dataset's file has"), match.differing[1].reason)
        XCTAssertEqual(match.missing, 1)
        XCTAssertEqual(match.counts.hashed, 4, "the four files of the right size were hashed")

        // A second match over the unchanged copy takes every hash from the cache
        let again = try m.matchLocalFiles(in: local, cacheDirectory: cacheDir, threads: 2)
        XCTAssertEqual(again.usable, match.usable)
        XCTAssertEqual(again.counts.hashed, 0)
        XCTAssertEqual(again.counts.fromCache, 4, "the altered file too")
        XCTAssertEqual(again.differing.map(\.path), match.differing.map(\.path))

        // And training images mix local files and shards, each checked against its digest
        let images = m.packedImages(store: store, inPlace: match.usable)
        XCTAssertEqual(images.count, 6)
        for (i, image) in images.enumerated() {
            guard case let .bytes(url, offset, length, sha) = image.source else { return XCTFail("\(image)") }
            XCTAssertEqual(sha, m.files[i].sha256)
            XCTAssertEqual(length, m.files[i].size)
            if let localURL = match.usable[i] {
                XCTAssertEqual(url, localURL)
                XCTAssertEqual(offset, 0)
            } else {
                XCTAssertEqual(url, store.url(for: m.shards[m.files[i].shard].sha256))
                XCTAssertEqual(offset, m.files[i].offset)
            }
        }
        let packed = PackedImages(manifest: m, digest: built.digest, store: store, inPlace: match.usable)
        let batch = Tensor(shape: [6, 3, 16, 16])
        let (loaded, skipped) = try packed.loadBatch(start: 0, count: 6, size: 16, into: batch)
        XCTAssertEqual(loaded, 6)
        XCTAssertTrue(skipped.isEmpty)

        // A local file altered after matching is refused when read, not trained on
        var first = try Data(contentsOf: local.appendingPathComponent("sub/img_00000.jpg"))
        first[first.count / 2] ^= 0xFF
        try first.write(to: local.appendingPathComponent("sub/img_00000.jpg"))
        XCTAssertThrowsError(try packed.loadBatch(start: 0, count: 1, size: 16, into: batch)) {
            guard case .digestMismatch(let path, _, _, _)? = $0 as? PackedImagesError else { return XCTFail("\($0)") }
            XCTAssertEqual(path, "sub/img_00000.jpg")
        }
    }
}
