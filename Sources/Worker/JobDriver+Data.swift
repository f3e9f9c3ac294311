import APIClient
import CoordinatorAPI
import DatasetPack
import Foundation
import NSTModel

// MARK: - The job's training data

/// Where a job's images come from: this machine's folder (the coordinator serves no dataset),
/// or the coordinator's dataset, its shards arriving through a `ShardFetcher` while training runs.
enum TrainingData: @unchecked Sendable {
    case folder(URL)
    case fetched(FetchedImages)
}

extension JobDriver {
    /// The job's data: with a dataset in the lease, its manifest (from the cache or downloaded,
    /// checked against the digest the job pins), the local `--dataset` files that match it, and
    /// a fetcher started on the shards the rest needs, in the order training reads them.
    func trainingData() async -> Result<TrainingData, Setback> {
        let c = lease.config
        guard let ref = lease.dataset else {
            if let pinned = c.datasetSHA256 {
                return .failure(.refused("the job pins the dataset manifest \(pinned.prefix(12))… but the lease names no dataset"))
            }
            guard let dir = context.dataset else {
                return .failure(.unfit("this worker has no --dataset and the coordinator serves no dataset: start the worker "
                                         + "with --dataset DIR, or the coordinator with `serve --dataset NAME=DIR`"))
            }
            return .success(.folder(dir))
        }
        guard JobConfig.isSHA256(ref.sha256), (1...DatasetLimits.manifestBytes).contains(ref.size) else {
            return .failure(.refused("the lease names an impossible dataset manifest (size \(ref.size))"))
        }
        if let pinned = c.datasetSHA256, pinned != ref.sha256 {
            return .failure(.refused("the lease names the dataset manifest \(ref.sha256.prefix(12))…, the job pins \(pinned.prefix(12))…"))
        }
        let manifest: DatasetManifest
        switch await datasetManifest(ref) {
        case .success(let m): manifest = m
        case .failure(let setback): return .failure(setback)
        }

        var inPlace: [Int: URL] = [:]
        if let dir = context.dataset {
            let started = monotonicSeconds()
            let scanDir = context.scanCacheDir, threads = Threads.count
            let (matched, news) = await withKeepAlive {
                await Task.detached { () -> Result<InPlaceMatch, any Error> in
                    do { return .success(try manifest.matchLocalFiles(in: dir, cacheDirectory: scanDir, threads: threads)) }
                    catch { return .failure(error) }
                }.value
            }
            if let news { return .failure(.stale(news)) }
            switch matched {
            case .success(let match):
                inPlace = match.usable
                var line = "\(label): --dataset \(dir.path): \(match.usable.count) of \(manifest.files.count) files used in place"
                if !match.differing.isEmpty { line += ", \(match.differing.count) with other bytes (downloaded)" }
                if match.missing > 0 { line += ", \(match.missing) not there (downloaded)" }
                line += String(format: "; %d hashed in %.1f s", match.counts.hashed, monotonicSeconds() - started)
                Log.info(line)
            case .failure(let error):
                Log.info("\(label): --dataset \(dir.path) not used: \(error)")
            }
        }

        // What training reads: the first max_images of the images before the held-out ones,
        // from the resume point round; then the held-out validation images at the end.
        let total = manifest.trainingOrder.count, held = min(max(c.validationImages, 0), total)
        let trained = min(c.maxImages ?? Int.max, total - held)
        let start = Self.firstImage(step: lease.checkpoint?.step ?? 0, images: trained, batch: c.batchSize)
        let positions = (0..<trained).map { (start + $0) % max(trained, 1) } + Array((total - held)..<total)
        let order = Self.shardOrder(manifest, inPlace: inPlace, positions: positions)
        let label = self.label
        let fetcher = ShardFetcher(cache: context.cache, order: order, download: shardDownload(),
                                   log: { Log.info("\(label): \($0)") })
        let needed = order.reduce(Int64(0)) { $0 + $1.size }
        Log.info("\(label): dataset \(Sanitize.oneLine(ref.name, limit: 64)) (manifest \(ref.sha256.prefix(12))…): \(trained) images, "
                 + "\(order.count) shard(s) of \(manifest.shards.count) needed (\(needed >> 20) MiB)")
        self.fetcher = fetcher
        fetchTask = Task { await fetcher.run() }
        let packed = PackedImages(manifest: manifest, digest: ref.sha256, store: ContentStore(root: context.cache.root),
                                  inPlace: inPlace,
                                  // Held-out images come from the end: the cut to max_images is made after them.
                                  maxImages: c.validationImages > 0 ? nil : c.maxImages,
                                  waitUntilAvailable: { url in try fetcher.waitUntilAvailable(url) })
        return .success(.fetched(FetchedImages(images: packed, fetcher: fetcher)))
    }

    /// The manifest `ref` names: from the cache, else downloaded; decoded and checked against
    /// its digest (a bad copy is removed, so the next attempt downloads it again).
    private func datasetManifest(_ ref: DatasetRef) async -> Result<DatasetManifest, Setback> {
        let cache = context.cache
        if !cache.has(ref.sha256, size: ref.size) {
            cache.makeRoom(for: ref.size)
            do { try cache.prepare(for: ref.sha256) } catch { return .failure(.refused("\(error)")) }
            let (setback, news) = await withKeepAlive {
                await self.download(ref.sha256, to: cache.url(for: ref.sha256), what: "dataset manifest", size: ref.size)
            }
            if let news { return .failure(.stale(news)) }
            if let setback { return .failure(setback) }
        }
        let what = "the dataset manifest \(ref.sha256.prefix(12))… is not usable"
        do {
            let bytes = try Data(contentsOf: cache.url(for: ref.sha256))
            return .success(try DatasetManifest.decode(bytes, digest: ref.sha256))
        } catch DatasetManifestError.invalid(let problems) {
            // The right bytes (they hash to the digest) but not a manifest this worker can train
            // on: no worker could, so the job fails without retry.
            cache.remove(ref.sha256)
            return .failure(.rejected("\(what): \(DatasetManifestError.invalid(problems))"))
        } catch {
            cache.remove(ref.sha256)
            return .failure(.refused("\(what): \(error)"))
        }
    }

    /// The first image of the batch training starts with at `step` (the data cycles by epoch).
    static func firstImage(step: Int, images: Int, batch: Int) -> Int {
        guard images > 0, batch > 0 else { return 0 }
        let perEpoch = (images + batch - 1) / batch
        return (step % perEpoch) * batch
    }

    /// The shards holding the training-order entries at `positions` that are not used in
    /// place, in the order of first use.
    static func shardOrder(_ manifest: DatasetManifest, inPlace: [Int: URL], positions: [Int]) -> [DatasetManifest.Shard] {
        let entries = manifest.trainingOrder
        var seen = Set<Int>(), out: [DatasetManifest.Shard] = []
        for p in positions where entries.indices.contains(p) {
            guard case .file(let i) = entries[p], inPlace[i] == nil else { continue }
            let shard = manifest.files[i].shard
            if seen.insert(shard).inserted { out.append(manifest.shards[shard]) }
        }
        return out
    }

    /// Downloads one shard, verified; retries while the coordinator is unreachable (backing
    /// off up to 10 s) and up to three times on bad bytes; throws anything else, or when the
    /// task is cancelled (the job ended).
    func shardDownload() -> ShardFetcher.Download {
        let client = self.client, label = self.label
        return { shard, destination in
            var backoff = Backoff()
            var mismatches = 0
            while true {
                try Task.checkCancellation()
                do {
                    try await client.download(artifact: shard.sha256, to: destination, expectedSize: shard.size)
                    return
                } catch let error as ClientError {
                    if case .checksumMismatch = error, mismatches < 3 {
                        mismatches += 1
                        Log.info("\(label): shard \(shard.sha256.prefix(12))…: \(error); downloading it again")
                        continue
                    }
                    guard error.isTransient else { throw error }
                    let delay = backoff.nextDelay()
                    Log.info("\(label): shard download: coordinator unreachable, retrying in \(String(format: "%.1f", delay)) s (\(error))")
                    try await Task.sleep(nanoseconds: UInt64(delay * 1e9))
                }
            }
        }
    }
}
