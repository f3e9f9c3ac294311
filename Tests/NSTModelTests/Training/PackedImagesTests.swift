import Foundation
import NSTModel
import XCTest

/// `PackedImages`: the same training as `ImageFolder` from shards of concatenated files, the
/// availability hook, and the errors that stop training.
final class PackedImagesTests: XCTestCase {
    var dir: URL!
    var folder: ImageFolder!

    override func setUpWithError() throws {
        Threads.configure(2)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-packed-\(UUID().uuidString)")
        let data = dir.appendingPathComponent("data")
        _ = try SyntheticImages.writeDataset(to: data.appendingPathComponent("sub"), count: 5, size: 20, seed: 3)
        _ = try SyntheticImages.writeDataset(to: data, count: 3, size: 16, seed: 4)
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: data.appendingPathComponent("img_00001_cut.jpg"))
        folder = try ImageFolder(root: data)
        XCTAssertEqual(folder.count, 9)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// A stand-in for SHA-256 (NSTModel has none): FNV-1a 64 as hex.
    static let fakeDigest: PackedImages.Digest = { data in
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in data { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return String(h, radix: 16)
    }

    /// Packs the folder's files in order into shards of at most `shardBytes` (a file that does
    /// not decode is listed as excluded, as the dataset builder does); returns the images and
    /// the shard files, written into `shards/` only when `write` is true.
    func pack(shardBytes: Int, write: Bool = true) throws -> (images: [PackedImage], shards: [URL], contents: [Data]) {
        let shardDir = dir.appendingPathComponent("shards")
        try FileManager.default.createDirectory(at: shardDir, withIntermediateDirectories: true)
        var images: [PackedImage] = [], contents: [Data] = [Data()]
        let prefix = folder.root.path + "/"
        for url in folder.files {
            let path = String(url.path.dropFirst(prefix.count))
            let bytes = try Data(contentsOf: url)
            do { _ = try RGBImage(decoding: bytes, name: path) } catch {
                images.append(PackedImage(path: path, source: .excluded(reason: error.description)))
                continue
            }
            if !contents[contents.count - 1].isEmpty && contents[contents.count - 1].count + bytes.count > shardBytes {
                contents.append(Data())
            }
            let shard = shardDir.appendingPathComponent("shard-\(contents.count - 1)")
            images.append(PackedImage(path: path, source: .bytes(url: shard, offset: Int64(contents[contents.count - 1].count),
                                                                 length: Int64(bytes.count), sha256: Self.fakeDigest(bytes))))
            contents[contents.count - 1].append(bytes)
        }
        let shards = contents.indices.map { shardDir.appendingPathComponent("shard-\($0)") }
        if write { for (url, data) in zip(shards, contents) { try data.write(to: url) } }
        return (images, shards, contents)
    }

    func options(steps: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.imageSize = 16; o.styleSize = 16; o.batchSize = 2; o.steps = steps
        o.contentWeight = 1; o.styleWeight = 1e3
        return o
    }

    func run(_ images: any TrainingImages, steps: Int) throws -> (losses: [Double?], skipped: [String], sizes: [Int]) {
        let style = SyntheticImages.contentImage(index: 99, width: 24, height: 20, seed: 1)
        let s = try TrainingSession(options: options(steps: steps), style: style, dataset: images, vgg: VGG16(randomSeed: 0))
        var losses: [Double?] = [], skipped: [String] = [], sizes: [Int] = []
        while !s.isFinished {
            let r = try s.runStep()
            losses.append(r.loss?.total)
            skipped += r.skipped
            sizes.append(r.batchImages)
        }
        return (losses, skipped, sizes)
    }

    func testTrainingFromShardsGivesTheFolderLossesBitForBit() throws {
        // Given the folder packed into shards of ~1 KB (several images each, one per shard for the larger ones)
        let (images, shards, _) = try pack(shardBytes: 1500)
        XCTAssertGreaterThan(shards.count, 2, "the test needs several shards")
        let packed = PackedImages(images: images, description: "packed", digest: Self.fakeDigest)
        XCTAssertEqual(packed.count, folder.count)

        // When both train 6 steps (more than an epoch of 5 batches)
        let fromFolder = try run(folder, steps: 6)
        let fromShards = try run(packed, steps: 6)

        // Then the losses are identical, and the corrupt file is skipped at the same position
        XCTAssertEqual(fromShards.losses, fromFolder.losses)
        XCTAssertEqual(fromShards.sizes, fromFolder.sizes)
        XCTAssertEqual(fromFolder.sizes, [2, 1, 2, 2, 1, 2], "img_00001_cut.jpg is in the second batch")
        XCTAssertEqual(fromShards.skipped.count, 1)
        XCTAssertTrue(fromShards.skipped[0].hasPrefix("img_00001_cut.jpg: "), fromShards.skipped[0])
        XCTAssertTrue(fromFolder.losses.allSatisfy { $0 != nil && $0!.isFinite })
    }

    func testLocalFilesInPlaceMixWithShards() throws {
        // Every other image read from its own file (offset 0), the rest from shards
        let (images, _, _) = try pack(shardBytes: 4000)
        var mixed = images
        for i in stride(from: 0, to: mixed.count, by: 2) {
            guard case let .bytes(_, _, length, sha) = mixed[i].source else { continue }
            mixed[i].source = .bytes(url: folder.root.appendingPathComponent(mixed[i].path), offset: 0, length: length, sha256: sha)
        }
        XCTAssertEqual(try run(PackedImages(images: mixed, description: "mixed", digest: Self.fakeDigest), steps: 3).losses,
                       try run(folder, steps: 3).losses)
    }

    func testTheHookIsAskedForEachMissingShardInTrainingOrderOnce() throws {
        // Given shards that are not on disk yet, and a hook that "downloads" the one asked for
        let (images, shards, contents) = try pack(shardBytes: 1500, write: false)
        let asked = Asked()
        let packed = PackedImages(images: images, description: "streamed", digest: Self.fakeDigest) { url in
            asked.append(url.lastPathComponent)
            let i = shards.firstIndex(of: url)!
            try contents[i].write(to: url)
        }
        // When an epoch and a half is trained
        let streamed = try run(packed, steps: 7)

        // Then each shard was asked for once, first to last, and training was unchanged
        XCTAssertEqual(asked.names, shards.map(\.lastPathComponent))
        XCTAssertEqual(streamed.losses, try run(folder, steps: 7).losses)
    }

    func testMissingCutOrAlteredBytesStopTrainingWithoutCountingTheStep() throws {
        let (images, shards, contents) = try pack(shardBytes: 1500, write: false)
        let style = SyntheticImages.contentImage(index: 99, width: 24, height: 20, seed: 1)
        func firstStepError(_ packed: PackedImages) throws -> PackedImagesError? {
            let s = try TrainingSession(options: options(steps: 2), style: style, dataset: packed, vgg: VGG16(randomSeed: 0))
            var caught: PackedImagesError?
            XCTAssertThrowsError(try s.runStep()) { caught = $0 as? PackedImagesError }
            XCTAssertEqual(s.state.step, 0, "a step whose data could not be read is not counted")
            return caught
        }
        struct Gone: Error, CustomStringConvertible { var description: String { "the coordinator has no such shard" } }

        // A hook that fails, and one that returns without providing the file
        var e = try firstStepError(PackedImages(images: images, description: "x", waitUntilAvailable: { _ in throw Gone() }))
        XCTAssertEqual(e, .unavailable(path: images[0].path, file: shards[0].path, reason: "the coordinator has no such shard"))
        e = try firstStepError(PackedImages(images: images, description: "x"))
        XCTAssertEqual(e, .unavailable(path: images[0].path, file: shards[0].path, reason: "still missing after waiting for it"))

        // A shard cut short
        try contents[0].prefix(contents[0].count - 10).write(to: shards[0])
        e = try firstStepError(PackedImages(images: images, description: "x", digest: Self.fakeDigest))
        guard case .shortRead(_, let file, _, _, _)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertEqual(file, shards[0].path)

        // A shard with one byte changed: the image's digest no longer matches
        var altered = contents[0]
        altered[altered.count - 5] ^= 0x55
        try altered.write(to: shards[0])
        e = try firstStepError(PackedImages(images: images, description: "x", digest: Self.fakeDigest))
        guard case .digestMismatch(let path, _, _, _)? = e else { return XCTFail("\(String(describing: e))") }
        XCTAssertTrue(images.contains { $0.path == path })
    }

    func testMaxImagesCutsTheOrderAndEmptyIsRefused() throws {
        let (images, _, _) = try pack(shardBytes: 1500)
        XCTAssertEqual(PackedImages(images: images, description: "x", maxImages: 4).images, Array(images.prefix(4)))
        let style = SyntheticImages.contentImage(index: 0, width: 8, height: 8)
        XCTAssertThrowsError(try TrainingSession(options: options(steps: 1), style: style,
                                                 dataset: PackedImages(images: [], description: "dataset empty"), vgg: VGG16(randomSeed: 0))) {
            XCTAssertEqual($0 as? TrainingError, .emptyDataset(path: "dataset empty"))
        }
    }
}

/// The hook's calls, from the loading thread.
final class Asked: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [String] = []
    func append(_ name: String) { lock.withLock { list.append(name) } }
    var names: [String] { lock.withLock { list } }
}
