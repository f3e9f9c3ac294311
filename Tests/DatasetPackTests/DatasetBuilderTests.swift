import CoordinatorAPI
@testable import DatasetPack
import Foundation
import NSTModel
import XCTest

/// Building a folder's manifest and shards: exclusions, the scan cache, new versions, shard
/// boundaries, and training from the result.
final class DatasetBuilderTests: XCTestCase {
    var dir: URL!
    var data: URL { dir.appendingPathComponent("data") }
    var store: ContentStore { ContentStore(root: dir.appendingPathComponent("store")) }

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-dataset-\(UUID().uuidString)")
        _ = try SyntheticImages.writeDataset(to: data, count: 7, size: 24, seed: 2)
        _ = try SyntheticImages.writeDataset(to: data.appendingPathComponent("b/c"), count: 3, size: 20, seed: 3)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func builder(shardBytes: Int64 = DatasetBuilder.defaultShardBytes) -> DatasetBuilder {
        var b = DatasetBuilder(store: store, cacheDirectory: dir.appendingPathComponent("cache"))
        b.shardBytes = shardBytes
        b.threads = 2
        return b
    }

    /// Checks what a reader of the store relies on: the manifest is stored under its digest and
    /// passes validation, every shard hashes to its name, and every file's bytes are at its offset.
    func assertStoredAndConsistent(_ r: BuildResult, file: StaticString = #filePath, line: UInt = #line) throws {
        let json = try Data(contentsOf: store.url(for: r.digest))
        XCTAssertEqual(try DatasetManifest.decode(json, digest: r.digest), r.manifest, file: file, line: line)
        for s in r.manifest.shards {
            XCTAssertEqual(try FileDigest.sha256(of: store.url(for: s.sha256)).sha256, s.sha256, file: file, line: line)
        }
        for f in r.manifest.files {
            let shard = try Data(contentsOf: store.url(for: r.manifest.shards[f.shard].sha256))
            let bytes = shard.subdata(in: Int(f.offset)..<Int(f.offset + f.length))
            XCTAssertEqual(FileDigest.sha256(of: bytes), f.sha256, f.path, file: file, line: line)
        }
    }

    // MARK: - Exclusions

    func testFilesThatDoNotDecodeAreExcludedWithTheReasonAndCounted() throws {
        // Given a folder with a text file named .png, a cut JPEG, an empty file, a broken
        // symlink, and a file that is not listed at all (.txt)
        try Data("not an image".utf8).write(to: data.appendingPathComponent("b/notes.png"))
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: data.appendingPathComponent("img_00002_cut.jpg"))
        try Data().write(to: data.appendingPathComponent("empty.JPEG"))
        try FileManager.default.createSymbolicLink(atPath: data.appendingPathComponent("gone.jpg").path, withDestinationPath: "/nonexistent/x.jpg")
        try Data("readme".utf8).write(to: data.appendingPathComponent("README.txt"))

        // When it is built
        var reports: [BuildProgress] = []
        let r = try builder().build(root: data, name: "photos") { reports.append($0) }

        // Then the 10 images are files, the 4 others are excluded with their reasons, in the
        // order train lists them, and nothing of the folder's location is in the manifest
        XCTAssertEqual(r.manifest.files.map(\.path), ["b/c/img_00000.jpg", "b/c/img_00001.jpg", "b/c/img_00002.jpg",
                                                       "img_00000.jpg", "img_00001.jpg", "img_00002.jpg", "img_00003.jpg",
                                                       "img_00004.png", "img_00005.jpg", "img_00006.jpg"])
        XCTAssertEqual(r.manifest.excluded.map(\.path), ["b/notes.png", "empty.JPEG", "gone.jpg", "img_00002_cut.jpg"])
        let reasons = Dictionary(uniqueKeysWithValues: r.manifest.excluded.map { ($0.path, $0.reason) })
        XCTAssertEqual(reasons["b/notes.png"], "b/notes.png is not a JPEG or PNG image")
        XCTAssertEqual(reasons["empty.JPEG"], "empty.JPEG is not a JPEG or PNG image")
        XCTAssertEqual(reasons["gone.jpg"], "cannot read gone.jpg: No such file or directory")
        XCTAssertTrue(reasons["img_00002_cut.jpg"]!.hasPrefix("corrupt image img_00002_cut.jpg: "), reasons["img_00002_cut.jpg"]!)
        XCTAssertEqual(r.manifest.totals.files, 10)
        XCTAssertEqual(r.manifest.totals.excluded, 4)
        XCTAssertEqual(r.manifest.totals.shards, 1)
        let sizes = try r.manifest.files.map { try Data(contentsOf: data.appendingPathComponent($0.path)).count }
        XCTAssertEqual(r.manifest.totals.bytes, Int64(sizes.reduce(0, +)))
        XCTAssertFalse(String(decoding: try r.manifest.canonicalJSON(), as: UTF8.self).contains(dir.path))
        try assertStoredAndConsistent(r)

        // The training order is the folder's, excluded files in place
        let folder = try ImageFolder(root: data)
        let order = r.manifest.trainingOrder.map { e -> String in
            switch e { case .file(let i): return r.manifest.files[i].path; case .excluded(let j): return r.manifest.excluded[j].path }
        }
        XCTAssertEqual(order, folder.files.map { String($0.path.dropFirst(data.path.count + 1)) })

        // Progress: scanning reached every file, hashing every byte read, then the one shard
        let scanned = reports.filter { $0.phase == .scanning }
        XCTAssertEqual(scanned.last?.filesScanned, 14)
        XCTAssertEqual(scanned.last?.scan.hashed, 13, "everything but the broken symlink was read")
        XCTAssertEqual(reports.last?.phase, .packing)
        XCTAssertEqual(reports.last?.shardsDone, 1)
        XCTAssertEqual(reports.last?.bytesPacked, r.manifest.totals.bytes)
    }

    func testTrainingFromTheManifestEqualsTrainingOnTheFolder() throws {
        Threads.configure(2)
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: data.appendingPathComponent("img_00002_cut.jpg"))
        let r = try builder(shardBytes: 3000).build(root: data, name: "photos")
        XCTAssertGreaterThan(r.manifest.shards.count, 2)
        var o = TrainingOptions()
        o.imageSize = 16; o.styleSize = 16; o.batchSize = 3; o.steps = 5
        o.contentWeight = 1; o.styleWeight = 1e3
        let style = SyntheticImages.contentImage(index: 99, width: 24, height: 20, seed: 1)
        func losses(_ images: any TrainingImages) throws -> [Double?] {
            let s = try TrainingSession(options: o, style: style, dataset: images, vgg: VGG16(randomSeed: 0))
            var out: [Double?] = []
            while !s.isFinished { out.append(try s.runStep().loss?.total) }
            return out
        }
        let packed = PackedImages(manifest: r.manifest, digest: r.digest, store: store)
        XCTAssertEqual(packed.count, 11)
        XCTAssertEqual(try losses(packed), try losses(ImageFolder(root: data)))
    }

    // MARK: - Cache and versions

    func testAnUnchangedFolderGivesTheSameDigestAndHashesNothing() throws {
        let first = try builder(shardBytes: 4000).build(root: data, name: "photos")
        XCTAssertEqual(first.scan.hashed, 10)
        XCTAssertEqual(first.shardsWritten, first.manifest.shards.count)
        XCTAssertTrue(first.manifestWritten)

        // A new builder (a restarted coordinator) over the same folder
        var hashedSeen: [Int64] = []
        let second = try builder(shardBytes: 4000).build(root: data, name: "photos") { hashedSeen.append($0.scan.bytesHashed) }
        XCTAssertEqual(second.digest, first.digest)
        XCTAssertEqual(second.scan, ScanCounts(files: 10, fromCache: 10, hashed: 0, bytesHashed: 0))
        XCTAssertEqual(hashedSeen.max(), 0, "no progress report ever counted a hashed byte")
        XCTAssertEqual(second.shardsWritten, 0)
        XCTAssertEqual(second.shardsReused, first.manifest.shards.count)
        XCTAssertEqual(second.bytesPacked, 0)
        XCTAssertFalse(second.manifestWritten)

        // A cache that cannot be read costs a rescan, not an error, and gives the same digest
        try Data("{garbage".utf8).write(to: ScanCache.url(for: data.standardizedFileURL, in: dir.appendingPathComponent("cache")))
        let third = try builder(shardBytes: 4000).build(root: data, name: "photos")
        XCTAssertEqual(third.digest, first.digest)
        XCTAssertEqual(third.scan.hashed, 10)
        XCTAssertEqual(third.shardsWritten, 0, "the shards are found in the store once their digests are known again")
    }

    func testAChangedFileGivesANewVersionAndLeavesTheOldOneIntact() throws {
        let b = builder(shardBytes: 3000)
        let old = try b.build(root: data, name: "photos")
        XCTAssertGreaterThan(old.manifest.shards.count, 3)
        let oldJSON = try Data(contentsOf: old.manifestURL)

        // When img_00003.jpg is replaced by another picture (its mtime moved on)
        let changed = data.appendingPathComponent("img_00003.jpg")
        try SyntheticImages.contentImage(index: 50, width: 24, height: 24).write(to: changed)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: changed.path)
        let new = try b.build(root: data, name: "photos")

        // Then only that file was hashed, and the digest and that file's entry changed
        XCTAssertNotEqual(new.digest, old.digest)
        XCTAssertEqual(new.scan.hashed, 1)
        let i = try XCTUnwrap(new.manifest.files.firstIndex { $0.path == "img_00003.jpg" })
        XCTAssertEqual(new.manifest.files[i].sha256, try FileDigest.sha256(of: changed).sha256)
        XCTAssertNotEqual(new.manifest.files[i].sha256, old.manifest.files[i].sha256)
        // The shards before it are the same shards (but the one just before, whose end depends
        // on the changed file's size); its own is new
        let before = max(0, min(new.manifest.files[i].shard, old.manifest.files[i].shard) - 1)
        XCTAssertGreaterThan(before, 0, "the test needs shards before the changed file")
        XCTAssertEqual(Array(new.manifest.shards.prefix(before)), Array(old.manifest.shards.prefix(before)))
        XCTAssertGreaterThanOrEqual(new.shardsWritten, 1)
        XCTAssertEqual(new.shardsReused + new.shardsWritten, new.manifest.shards.count)
        XCTAssertGreaterThanOrEqual(new.shardsReused, before)
        try assertStoredAndConsistent(new)

        // And the old version is still there, byte for byte, with every shard valid
        XCTAssertEqual(try Data(contentsOf: old.manifestURL), oldJSON)
        try assertStoredAndConsistent(old)
    }

    // MARK: - Shards

    func testShardPlanBoundaries() {
        func plan(_ sizes: [Int64], _ target: Int64) -> [[Int]] { ShardPlan(sizes: sizes, target: target).groups }
        XCTAssertEqual(plan([3, 3, 3], 6), [[0, 1], [2]], "a shard is filled up to the target exactly")
        XCTAssertEqual(plan([3, 4, 2], 6), [[0], [1, 2]], "a file that would pass the target starts a new shard")
        XCTAssertEqual(plan([1, 10, 1], 6), [[0], [1], [2]], "a file larger than the target has a shard of its own")
        XCTAssertEqual(plan([10], 6), [[0]])
        XCTAssertEqual(plan([], 6), [])
        XCTAssertEqual(plan([2, 2, 2, 2], 100), [[0, 1, 2, 3]])
    }

    func testSmallShardsHoldWholeFilesInOrderNoLargerThanTheTarget() throws {
        let sizes = try ImageFolder(root: data).files.map { Int64(try Data(contentsOf: $0).count) }
        let target = sizes.max()! + 10   // every file fits; two rarely do
        let r = try builder(shardBytes: target).build(root: data, name: "photos")
        XCTAssertEqual(r.manifest.shards.count, ShardPlan(sizes: sizes, target: target).groups.count)
        XCTAssertGreaterThan(r.manifest.shards.count, 4)
        for s in r.manifest.shards { XCTAssertLessThanOrEqual(s.size, target) }
        XCTAssertEqual(r.manifest.files.map(\.shard), r.manifest.files.map(\.shard).sorted(), "shards follow training order")
        XCTAssertEqual(r.manifest.shards.reduce(0) { $0 + $1.size }, r.manifest.totals.bytes)
        try assertStoredAndConsistent(r)

        // A one-byte target: one file per shard
        let one = try builder(shardBytes: 1).build(root: data, name: "photos")
        XCTAssertEqual(one.manifest.shards.count, 10)
        XCTAssertTrue(one.manifest.files.allSatisfy { $0.offset == 0 })
        XCTAssertThrowsError(try builder(shardBytes: 0).build(root: data, name: "photos")) {
            XCTAssertEqual($0 as? DatasetPackError, .badShardSize(0))
        }
    }

    // MARK: - Refusals

    func testEmptyMissingAndBadlyNamedFoldersAreRefused() throws {
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        try Data("x".utf8).write(to: empty.appendingPathComponent("a.png"))
        XCTAssertThrowsError(try builder().build(root: empty, name: "e")) {
            XCTAssertEqual($0 as? DatasetPackError, .noImages(root: empty.path, excluded: 1))
        }
        let missing = dir.appendingPathComponent("missing")
        XCTAssertThrowsError(try builder().build(root: missing, name: "m")) {
            XCTAssertEqual($0 as? DatasetPackError, .folder(.missingDirectory(path: missing.path)))
        }
        XCTAssertThrowsError(try builder().build(root: data, name: "../x")) {
            guard case .badName? = $0 as? DatasetPackError else { return XCTFail("\($0)") }
        }
    }
}
