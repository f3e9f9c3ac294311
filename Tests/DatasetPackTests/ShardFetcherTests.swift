import CoordinatorAPI
@testable import DatasetPack
import Foundation
import NSTModel
import XCTest

/// The worker's download cache (LRU under a bound, pinned files kept) and the shard fetcher
/// (order, waiting, refetching bad shards, stopping), with a download function that copies from
/// a coordinator-side store instead of the network.
final class ShardFetcherTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-fetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    /// Stores `bytes` in the cache as if downloaded; returns its digest.
    @discardableResult
    func put(_ cache: DownloadCache, _ bytes: Int, fill: UInt8, usedAt: TimeInterval) throws -> String {
        let data = Data(repeating: fill, count: bytes)
        let sha = FileDigest.sha256(of: data)
        try cache.prepare(for: sha)
        try data.write(to: cache.url(for: sha))
        cache.touch(sha, at: Date(timeIntervalSince1970: usedAt))
        return sha
    }

    // MARK: - DownloadCache

    func testTheLeastRecentlyUsedFilesAreEvictedFirstAndPinnedOnesNever() throws {
        // Given a cache bounded at 3000 bytes holding four 1000-byte files used at t = 1, 2, 3, 4,
        // the oldest pinned (a running job's shard)
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: 3000)
        let a = try put(cache, 1000, fill: 1, usedAt: 1_000_000)
        let b = try put(cache, 1000, fill: 2, usedAt: 2_000_000)
        let c = try put(cache, 1000, fill: 3, usedAt: 3_000_000)
        let d = try put(cache, 1000, fill: 4, usedAt: 4_000_000)
        cache.pin([a])
        XCTAssertEqual(cache.usage(), 4000)

        // When room is made for 1000 more bytes
        let room = cache.makeRoom(for: 1000)

        // Then b and c went (oldest unpinned first), a (pinned) and d stayed, and it fits
        XCTAssertEqual(room.evicted.map(\.sha256), [b, c])
        XCTAssertTrue(room.fits)
        XCTAssertEqual(Set(cache.entries().map(\.sha256)), [a, d])
        XCTAssertEqual(room.usage, 2000)

        // And when the pinned files alone leave no room, nothing pinned goes and it says so
        let tight = cache.makeRoom(for: 2500)
        XCTAssertEqual(tight.evicted.map(\.sha256), [d])
        XCTAssertFalse(tight.fits)
        XCTAssertTrue(cache.has(a, size: 1000))

        // And once unpinned, it can go too
        cache.unpin([a])
        XCTAssertEqual(cache.makeRoom(for: 2500).evicted.map(\.sha256), [a])
    }

    func testALookupMarksAFileUsedAndACutCopyIsNotTheArtifact() throws {
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: 2000)
        let old = try put(cache, 1000, fill: 1, usedAt: 1_000_000)
        let new = try put(cache, 1000, fill: 2, usedAt: 2_000_000)
        // Using the older one makes the other the least recently used
        XCTAssertTrue(cache.has(old, size: 1000))
        XCTAssertEqual(cache.makeRoom(for: 1000).evicted.map(\.sha256), [new])
        // A file of the wrong size is removed on lookup
        XCTAssertFalse(cache.has(old, size: 999))
        XCTAssertFalse(FileManager.default.fileExists(atPath: cache.url(for: old).path))
        // Partial downloads (dot files) are not entries
        try Data(count: 10).write(to: cache.url(for: old).deletingLastPathComponent().appendingPathComponent(".\(old).partial"))
        XCTAssertEqual(cache.entries(), [])
    }

    // MARK: - ShardFetcher

    /// A coordinator-side store of `n` shards of `size` bytes and a download function copying
    /// from it, counting calls; `corrupt` flips a byte of the n-th delivery of a shard.
    final class Source: @unchecked Sendable {
        let shards: [DatasetManifest.Shard]
        let bytes: [String: Data]
        private let lock = NSLock()
        private(set) var calls: [String] = []
        var delay: UInt64 = 0
        var failing: Set<String> = []

        init(n: Int, size: Int) {
            var shards: [DatasetManifest.Shard] = [], bytes: [String: Data] = [:]
            for i in 0..<n {
                let data = Data((0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ i &* 7) })
                let sha = FileDigest.sha256(of: data)
                shards.append(.init(sha256: sha, size: Int64(size)))
                bytes[sha] = data
            }
            self.shards = shards
            self.bytes = bytes
        }

        var download: ShardFetcher.Download {
            { [self] shard, destination in
                lock.withLock { calls.append(shard.sha256) }
                if delay > 0 { try await Task.sleep(nanoseconds: delay) }
                if failing.contains(shard.sha256) { throw DatasetPackError.store(path: "test", reason: "refused") }
                try bytes[shard.sha256]!.write(to: destination)
            }
        }

        func count(_ sha: String) -> Int { lock.withLock { calls.filter { $0 == sha }.count } }
    }

    func testShardsArriveInOrderAndAWaitReturnsOnceItsShardIsThere() async throws {
        let source = Source(n: 4, size: 500)
        source.delay = 30_000_000
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: nil)
        let fetcher = ShardFetcher(cache: cache, order: source.shards, download: source.download)
        let task = Task { await fetcher.run() }
        defer { fetcher.stop(); task.cancel() }

        // Left alone, it fetches every shard once, in order
        let deadline = Date().addingTimeInterval(20)
        while !fetcher.allArrived && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertTrue(fetcher.allArrived)
        // and a wait for any of them returns at once
        let third = cache.url(for: source.shards[2].sha256)
        try await Task.detached { try fetcher.waitUntilAvailable(third) }.value
        XCTAssertEqual(source.calls, source.shards.map(\.sha256), "one download each, in order")
        XCTAssertEqual(fetcher.stats.downloaded, 4)
        XCTAssertEqual(fetcher.stats.downloadedBytes, 2000)

        // A second fetcher on the same cache downloads nothing
        let again = ShardFetcher(cache: cache, order: source.shards, download: source.download)
        let task2 = Task { await again.run() }
        defer { again.stop(); task2.cancel() }
        let deadline2 = Date().addingTimeInterval(20)
        while !again.allArrived && Date() < deadline2 { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(source.calls.count, 4, "\(source.calls.map { $0.prefix(6) }) \(source.shards.map { $0.sha256.prefix(6) })")
        XCTAssertEqual(again.stats.fromCache, 4)
    }

    func testAShardNeededNowJumpsTheQueue() async throws {
        // A resumed job needs the last shard first: it is fetched before those still queued
        let source = Source(n: 5, size: 200)
        source.delay = 20_000_000
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: nil)
        let fetcher = ShardFetcher(cache: cache, order: source.shards, download: source.download)
        let last = cache.url(for: source.shards[4].sha256)
        let waiter = Task.detached { try fetcher.waitUntilAvailable(last) }
        try await Task.sleep(nanoseconds: 50_000_000)  // the wait is registered before fetching starts
        let task = Task { await fetcher.run() }
        defer { fetcher.stop(); task.cancel() }
        try await waiter.value
        XCTAssertEqual(source.calls.first, source.shards[4].sha256, "\(source.calls)")
    }

    func testABadShardIsFetchedAgainUpToTheLimitAndThenTrainingIsTold() async throws {
        let source = Source(n: 2, size: 300)
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: nil)
        let fetcher = ShardFetcher(cache: cache, order: source.shards, maxRefetches: 2, download: source.download)
        let task = Task { await fetcher.run() }
        defer { fetcher.stop(); task.cancel() }
        let first = cache.url(for: source.shards[0].sha256)
        try await Task.detached { try fetcher.waitUntilAvailable(first) }.value

        // When a byte of it flips on disk and training reports it, it is removed and fetched again
        for round in 1...2 {
            try Data(repeating: 0, count: 300).write(to: first)
            try fetcher.invalidate(first, reason: "test flip \(round)")
            try await Task.detached { try fetcher.waitUntilAvailable(first) }.value
            XCTAssertEqual(try Data(contentsOf: first), source.bytes[source.shards[0].sha256])
            XCTAssertEqual(source.count(source.shards[0].sha256), 1 + round)
        }
        XCTAssertEqual(fetcher.stats.refetched, 2)
        // Past the limit: an error naming the shard, and no further download
        XCTAssertThrowsError(try fetcher.invalidate(first, reason: "third")) { error in
            XCTAssertTrue("\(error)".contains("was bad 3 times"), "\(error)")
        }
    }

    func testAShardThatCannotBeHadFailsEveryWaitWithTheReason() async throws {
        let source = Source(n: 3, size: 100)
        source.failing = [source.shards[1].sha256]
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: nil)
        let fetcher = ShardFetcher(cache: cache, order: source.shards, download: source.download)
        await fetcher.run()  // returns: it gave up
        XCTAssertNotNil(fetcher.failed)
        let third = cache.url(for: source.shards[2].sha256)
        XCTAssertThrowsError(try fetcher.waitUntilAvailable(third)) { error in
            XCTAssertTrue("\(error)".contains("shard 2/3"), "\(error)")
            XCTAssertTrue("\(error)".contains("refused"), "\(error)")
        }
        // The first one arrived and is usable
        XCTAssertNoThrow(try fetcher.waitUntilAvailable(cache.url(for: source.shards[0].sha256)))
    }

    func testStoppingWakesAWaitAndUnpinsTheShards() async throws {
        let source = Source(n: 2, size: 100)
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: 1)
        let fetcher = ShardFetcher(cache: cache, order: source.shards, download: source.download)
        XCTAssertEqual(cache.pinned, Set(source.shards.map(\.sha256)))
        // Nothing runs the fetcher: a wait blocks until stop
        let waiter = Task.detached { try fetcher.waitUntilAvailable(cache.url(for: source.shards[0].sha256)) }
        try await Task.sleep(nanoseconds: 50_000_000)
        fetcher.stop()
        do { try await waiter.value; XCTFail("the wait returned") } catch {
            XCTAssertEqual(error as? ShardFetcher.FetchError, .stopped)
        }
        XCTAssertEqual(cache.pinned, [])
    }

    func testTheRunningJobsShardsStayWhenTheyExceedTheBound() async throws {
        // A cache bounded below the job's shards keeps them all while it runs (and evicts an
        // older file that is not the job's)
        let cache = DownloadCache(root: dir.appendingPathComponent("store"), maxBytes: 700)
        let other = try put(cache, 400, fill: 9, usedAt: 1_000_000)
        let source = Source(n: 3, size: 300)
        let logs = LogLines()
        let fetcher = ShardFetcher(cache: cache, order: source.shards, download: source.download, log: logs.add)
        let task = Task { await fetcher.run() }
        defer { fetcher.stop(); task.cancel() }
        let deadline = Date().addingTimeInterval(20)
        while !fetcher.allArrived && Date() < deadline { try await Task.sleep(nanoseconds: 10_000_000) }
        XCTAssertEqual(Set(cache.entries().map(\.sha256)), Set(source.shards.map(\.sha256)))
        XCTAssertFalse(cache.entries().contains { $0.sha256 == other })
        XCTAssertTrue(logs.lines.contains { $0.contains("exceed --cache-max-bytes") }, "\(logs.lines)")
        // Once the job ends its shards are evictable again
        fetcher.stop()
        XCTAssertEqual(cache.makeRoom(for: 0).usage, 600)
    }

    final class LogLines: @unchecked Sendable {
        private let lock = NSLock()
        private var stored: [String] = []
        var lines: [String] { lock.withLock { stored } }
        var add: ShardFetcher.Log { { [self] line in lock.withLock { stored.append(line) } } }
    }

    // MARK: - FetchedImages

    func testTrainingReadsThroughAFlippedByteAfterOneRefetch() throws {
        // Given a packed dataset served from a store, fetched into a cache
        let data = dir.appendingPathComponent("data")
        _ = try SyntheticImages.writeDataset(to: data, count: 6, size: 24, seed: 5)
        var builder = DatasetBuilder(store: ContentStore(root: dir.appendingPathComponent("served")),
                                     cacheDirectory: dir.appendingPathComponent("scan"))
        builder.shardBytes = 2500
        let built = try builder.build(root: data, name: "d")
        let served = ContentStore(root: dir.appendingPathComponent("served"))
        let cache = DownloadCache(root: dir.appendingPathComponent("cache"), maxBytes: nil)
        let fetcher = ShardFetcher(cache: cache, order: built.manifest.shards, download: { shard, destination in
            try FileManager.default.copyItem(at: served.url(for: shard.sha256), to: destination)
        })
        let task = Task { await fetcher.run() }
        defer { fetcher.stop(); task.cancel() }
        let base = PackedImages(manifest: built.manifest, digest: built.digest, store: ContentStore(root: cache.root))
        let images = FetchedImages(images: PackedImages(images: base.images, description: base.description,
                                                        digest: { FileDigest.sha256(of: $0) },
                                                        waitUntilAvailable: { try fetcher.waitUntilAvailable($0) }),
                                   fetcher: fetcher)
        let expected = Tensor(shape: [6, 3, 16, 16])
        let folder = try ImageFolder(root: data)
        _ = try folder.loadBatch(start: 0, count: 6, size: 16, into: expected)
        let batch = Tensor(shape: [6, 3, 16, 16])
        _ = try images.loadBatch(start: 0, count: 6, size: 16, into: batch)
        XCTAssertEqual(batch.array, expected.array)

        // When a byte of the first shard flips in the cache
        let shard = cache.url(for: built.manifest.shards[0].sha256)
        var bytes = try Data(contentsOf: shard)
        bytes[bytes.count / 2] ^= 0x40
        try bytes.write(to: shard)

        // Then the batch still loads the same pixels, after one refetch
        let again = Tensor(shape: [6, 3, 16, 16])
        _ = try images.loadBatch(start: 0, count: 6, size: 16, into: again)
        XCTAssertEqual(again.array, expected.array)
        XCTAssertEqual(fetcher.stats.refetched, 1)
    }
}
