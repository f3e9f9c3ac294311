import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - ShardFetcher

/// Brings a job's shards into the worker's `DownloadCache` in the order training needs them,
/// ahead of training: `run()` (a task beside the training thread) takes each shard from the
/// cache or downloads it, one after the other; the training thread, through `PackedImages`'
/// availability hook, waits only for a shard that has not arrived yet — in practice the first.
///
/// A shard that turns out bad while training reads it (an image's bytes do not match their
/// digest: a flipped byte on disk, a cut file) is `invalidate`d: removed, fetched again ahead of
/// everything else, and read again; after `maxRefetches` times the job fails. The job's shards
/// are pinned in the cache from `init` until `stop`.
public final class ShardFetcher: @unchecked Sendable {
    /// Downloads `shard` to `destination`, verified by its SHA-256, retrying what is worth
    /// retrying; throws when it gives up.
    public typealias Download = @Sendable (_ shard: DatasetManifest.Shard, _ destination: URL) async throws -> Void
    public typealias Log = @Sendable (String) -> Void

    public let cache: DownloadCache
    /// The shards in the order they are first needed.
    public let order: [DatasetManifest.Shard]
    public let maxRefetches: Int
    private let download: Download
    let log: Log

    /// What the fetcher did, for the job's log.
    public struct Stats: Sendable, Equatable {
        public var downloaded = 0
        public var downloadedBytes: Int64 = 0
        public var fromCache = 0
        public var refetched = 0
        public var evicted = 0
    }

    private let condition = NSCondition()
    private var ready: Set<String> = []
    private var queue: [DatasetManifest.Shard]
    private var known: [String: DatasetManifest.Shard]
    private var refetches: [String: Int] = [:]
    private var failure: String?
    private var stopped = false
    private var statsValue = Stats()
    private var warnedFull = false

    /// - Parameter order: the shards training will read, in the order it first reads them.
    public init(cache: DownloadCache, order: [DatasetManifest.Shard], maxRefetches: Int = 3,
                download: @escaping Download, log: @escaping Log = { _ in }) {
        self.cache = cache
        self.order = order
        self.maxRefetches = maxRefetches
        self.download = download
        self.log = log
        queue = order
        known = Dictionary(order.map { ($0.sha256, $0) }, uniquingKeysWith: { a, _ in a })
        cache.pin(known.keys)
    }

    deinit { stop() }

    public var stats: Stats { condition.withLock { statsValue } }

    /// True once every shard of `order` has arrived at least once.
    public var allArrived: Bool { condition.withLock { queue.isEmpty && order.allSatisfy { ready.contains($0.sha256) } } }

    /// Why fetching stopped for good, if it did.
    public var failed: String? { condition.withLock { failure } }

    // MARK: - The fetching task

    /// Fetches the queued shards in order, then waits for refetch requests, until `stop()` (or
    /// a shard cannot be had: then every wait fails with the reason).
    public func run() async {
        let started = DispatchTime.now().uptimeNanoseconds
        var announced = false
        while true {
            if !announced, allArrived {
                announced = true
                let s = stats, seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
                if s.downloaded > 0 {
                    log(String(format: "all %d shard(s) here: %d downloaded (%.1f MiB in %.1f s, %.1f MB/s), %d from the cache",
                               order.count, s.downloaded, Double(s.downloadedBytes) / 1_048_576, seconds,
                               Double(s.downloadedBytes) / 1e6 / max(seconds, 1e-9), s.fromCache))
                }
            }
            let next: DatasetManifest.Shard? = condition.withLock {
                if stopped || failure != nil { return nil }
                return queue.first
            }
            guard let shard = next else {
                if condition.withLock({ stopped || failure != nil }) { return }
                try? await Task.sleep(nanoseconds: 20_000_000)
                continue
            }
            do {
                try await fetch(shard)
            } catch {
                let index = order.firstIndex { $0.sha256 == shard.sha256 }.map { "shard \($0 + 1)/\(order.count)" } ?? "shard"
                fail("\(index) (\(shard.sha256.prefix(12))…, \(shard.size) bytes): \(error)")
                return
            }
        }
    }

    private func fetch(_ shard: DatasetManifest.Shard) async throws {
        if cache.has(shard.sha256, size: shard.size) {
            arrived(shard) { $0.fromCache += 1 }
            return
        }
        let room = cache.makeRoom(for: shard.size)
        if !room.evicted.isEmpty {
            log("cache: evicted \(room.evicted.count) least recently used file(s), \(room.freed >> 20) MiB, to stay under \((cache.maxBytes ?? 0) >> 20) MiB")
        }
        if !room.fits && !condition.withLock({ warnedFull }) {
            condition.withLock { warnedFull = true }
            log("cache: this job's shards alone exceed --cache-max-bytes (\((cache.maxBytes ?? 0) >> 20) MiB); they are kept while it runs")
        }
        try cache.prepare(for: shard.sha256)
        try Task.checkCancellation()
        try await download(shard, cache.url(for: shard.sha256))
        guard cache.has(shard.sha256, size: shard.size) else {
            throw DatasetPackError.store(path: cache.url(for: shard.sha256).path, reason: "the download left no file of \(shard.size) bytes")
        }
        arrived(shard) {
            $0.downloaded += 1
            $0.downloadedBytes += shard.size
            $0.evicted += room.evicted.count
        }
    }

    private func arrived(_ shard: DatasetManifest.Shard, _ count: (inout Stats) -> Void) {
        condition.withLock {
            if let i = queue.firstIndex(where: { $0.sha256 == shard.sha256 }) { queue.remove(at: i) }
            ready.insert(shard.sha256)
            count(&statsValue)
            condition.broadcast()
        }
    }

    private func fail(_ reason: String) {
        condition.withLock {
            if failure == nil { failure = reason }
            condition.broadcast()
        }
    }

    /// Ends fetching: waits in progress fail, the shards are unpinned. Idempotent.
    public func stop() {
        let first: Bool = condition.withLock {
            defer { stopped = true; condition.broadcast() }
            return !stopped
        }
        if first { cache.unpin(known.keys) }
    }

    // MARK: - The training thread's side

    /// `PackedImages`' availability hook: blocks until the shard at `url` has arrived (queueing
    /// it first if it was not planned), or throws why it will not.
    public func waitUntilAvailable(_ url: URL) throws {
        let sha256 = url.lastPathComponent
        condition.lock()
        defer { condition.unlock() }
        guard let shard = known[sha256] else { throw FetchError.notAShard(url.path) }
        while true {
            if ready.contains(sha256) {
                if FileManager.default.fileExists(atPath: url.path) { return }
                // Gone since it arrived (another worker sharing the cache evicted it).
                ready.remove(sha256)
            }
            if let failure { throw FetchError.failed(failure) }
            if stopped { throw FetchError.stopped }
            // Needed now: next in line (a resumed job may start in the middle of the order).
            if let i = queue.firstIndex(where: { $0.sha256 == sha256 }) {
                if i > 0 { queue.insert(queue.remove(at: i), at: 0) }
            } else {
                queue.insert(shard, at: 0)
            }
            condition.wait()
        }
    }

    /// The shard at `url` held bad bytes (`reason`): it is removed and fetched again before
    /// anything else. Throws once it has been bad more than `maxRefetches` times.
    public func invalidate(_ url: URL, reason: String) throws {
        let sha256 = url.lastPathComponent
        condition.lock()
        defer { condition.unlock() }
        guard let shard = known[sha256] else { throw FetchError.notAShard(url.path) }
        let n = refetches[sha256, default: 0] + 1
        refetches[sha256] = n
        guard n <= maxRefetches else {
            throw FetchError.failed("shard \(sha256.prefix(12))… was bad \(n) times, the last: \(reason)")
        }
        statsValue.refetched += 1
        ready.remove(sha256)
        cache.remove(sha256)
        queue.removeAll { $0.sha256 == sha256 }
        queue.insert(shard, at: 0)
        condition.broadcast()
    }

    /// Whether `path` is one of this job's shards in the cache.
    public func owns(_ path: String) -> Bool {
        let url = URL(fileURLWithPath: path)
        return known[url.lastPathComponent] != nil && cache.url(for: url.lastPathComponent).path == url.path
    }

    public enum FetchError: Error, CustomStringConvertible, Equatable {
        case failed(String)
        case stopped
        case notAShard(String)

        public var description: String {
            switch self {
            case .failed(let why): return "dataset shards: \(why)"
            case .stopped: return "the job stopped while waiting for a shard"
            case .notAShard(let path): return "\(path) is not a shard of this job's dataset"
            }
        }
    }
}

// MARK: - FetchedImages

/// A packed dataset whose shards come through a `ShardFetcher`: a read that finds a shard's
/// bytes bad has the fetcher fetch it again, then reads again (training sees the good bytes or,
/// past the fetcher's limit, an error).
public final class FetchedImages: TrainingImages, @unchecked Sendable {
    public let images: PackedImages
    public let fetcher: ShardFetcher

    public init(images: PackedImages, fetcher: ShardFetcher) {
        self.images = images
        self.fetcher = fetcher
    }

    public var count: Int { images.count }
    public var description: String { images.description }

    public func loadBatch(start: Int, count: Int, size: Int, into: Tensor) throws
        -> (loaded: Int, skipped: [(path: String, reason: String)])
    {
        while true {
            do {
                return try images.loadBatch(start: start, count: count, size: size, into: into)
            } catch let error as PackedImagesError {
                guard let file = error.badFile, fetcher.owns(file) else { throw error }
                try fetcher.invalidate(URL(fileURLWithPath: file), reason: error.description)
                fetcher.log("\(error); fetching its shard again")
                images.forget(file)
            }
        }
    }

    /// Image `index`, its shard fetched again (as for `loadBatch`) when its bytes are bad.
    public func image(at index: Int) throws -> RGBImage {
        while true {
            do {
                return try images.image(at: index)
            } catch let error as PackedImagesError {
                guard let file = error.badFile, fetcher.owns(file) else { throw error }
                try fetcher.invalidate(URL(fileURLWithPath: file), reason: error.description)
                fetcher.log("\(error); fetching its shard again")
                images.forget(file)
            }
        }
    }
}
