import APIClient
import CoordinatorAPI
import DatasetPack
import Foundation
import NSTModel

// MARK: - Shared by every job of a worker

/// What a job needs from the worker around it.
struct WorkerContext: @unchecked Sendable {
    var name: String
    var client: CoordinatorClient
    /// `--dataset DIR`: the training folder when the coordinator serves no dataset, else the
    /// files used in place of downloading.
    var dataset: URL?
    var workDir: URL
    /// Downloads kept across jobs: manifests, shards, weights.
    var cache: DownloadCache
    /// Where in-place matching keeps what it hashed of `dataset`.
    var scanCacheDir: URL
    /// The loss network, shared by the worker's jobs (one at a time).
    var lossNetwork: LossNetwork
    var signals: ShutdownSignals
}

/// The worker's VGG16: its own (`--vgg-weights`, `NST_VGG16_WEIGHTS`, the torch hub file,
/// `--random-vgg`), else the coordinator's, downloaded once into the cache (verified by its
/// digest) and kept loaded for the next jobs.
final class LossNetwork: @unchecked Sendable {
    let local: VGG16?
    /// How the local network is reported to the coordinator (`random-vgg seed 0`, `vgg16 FILE`).
    let localName: String?
    let cache: DownloadCache
    var served: (sha256: String, vgg: VGG16)?

    /// The largest weights file a worker downloads (torchvision's VGG16 is 528 MB).
    static let maxBytes: Int64 = 2 << 30

    init(local: VGG16?, localName: String?, cache: DownloadCache) {
        self.local = local
        self.localName = localName
        self.cache = cache
    }
}

/// How a leased job ended for this worker.
enum JobEnd: Equatable {
    case completed
    /// Reported as failed with this reason (retryable: queued again for another attempt).
    case failed(String, retryable: Bool)
    /// Handed back after a checkpoint (graceful shutdown).
    case released
    /// Stopped without further reports: cancelled, stale lease, or an unexpected refusal.
    case dropped(String)
    /// Handed back untouched because this worker cannot train any job (it has no VGG16 weights
    /// and the coordinator serves none): the worker stops, saying why.
    case unfit(String)
}

/// The outcome of one call to the coordinator.
enum CallResult<T> {
    case ok(T)
    /// Unreachable or 5xx: try again after the backoff delay.
    case retryLater
    /// 409: the lease no longer holds the job.
    case stale(String)
    /// Any other refusal.
    case refused(String)
}

// MARK: - Driving one job

/// Runs one leased job: downloads the style (and checkpoint), trains on a `TrainingRun`
/// thread while heartbeating, uploads checkpoints, and ends it with complete / fail / release.
/// Every call to the coordinator goes through `call`, which applies the backoff rules.
final class JobDriver {
    let context: WorkerContext
    let lease: LeaseResponse
    let jobDir: URL
    let heartbeatInterval: Double
    var backoff = Backoff()
    /// Monotonic time before which no call is made (backoff after a failure).
    var retryAt = 0.0
    var lastHeartbeat = 0.0
    var lastProgressLog = monotonicSeconds()
    var run: TrainingRun
    /// Brings the job's shards when it trains on the coordinator's dataset.
    var fetcher: ShardFetcher?
    var fetchTask: Task<Void, Never>?
    /// What the job trains with, reported in heartbeats (`HeartbeatRequest.lossNetwork`).
    var lossNetworkName: String?
    /// The model a warm start began from (`"init"`), reported in heartbeats.
    var warmStartReport: WarmStartReport?
    /// The coordinator has recorded it (later heartbeats leave it out).
    var warmStartAcknowledged = false
    let leasedAt = monotonicSeconds()

    var client: CoordinatorClient { context.client }
    var jobID: Int64 { lease.jobID }
    var label: String { "job \(lease.jobID) \"\(Sanitize.oneLine(lease.config.name, limit: 128))\"" }

    init(context: WorkerContext, lease: LeaseResponse) {
        self.context = context
        self.lease = lease
        jobDir = context.workDir.appendingPathComponent("job-\(lease.jobID)-attempt-\(lease.attempt)")
        heartbeatInterval = max(0.1, min(2, lease.leaseSeconds / 4))
        // After an outage the coordinator grants one lease period of grace: retries must come
        // back within it, so the backoff never waits longer than a third of the lease.
        backoff = Backoff(maximum: max(0.25, min(10, lease.leaseSeconds / 3)))
        run = TrainingRun(step: lease.checkpoint?.step ?? 0, images: lease.checkpoint?.imagesSeen ?? 0)
    }

    /// Drives the job to its end; leaves no files behind.
    func drive() async -> JobEnd {
        defer {
            fetchTask?.cancel()
            if let fetcher {
                fetcher.stop()
                let s = fetcher.stats
                if s.downloaded + s.fromCache > 0 {
                    Log.info("\(label): dataset shards: \(s.downloaded) downloaded (\(s.downloadedBytes >> 20) MiB), \(s.fromCache) from the cache"
                             + (s.refetched > 0 ? ", \(s.refetched) fetched again after bad bytes" : ""))
                }
            }
            try? FileManager.default.removeItem(at: jobDir)
        }
        let resume = lease.checkpoint.map { ", resuming from checkpoint at step \($0.step)" } ?? ""
        Log.info("leased \(label) attempt \(lease.attempt)\(resume)")
        // The coordinator is not trusted blindly: a config past the limits (a "poison" job that
        // would exhaust any machine) fails at once, without retry, naming the values.
        var problems = lease.config.problems()
        if let ck = lease.checkpoint {
            let range = 0...(lease.config.steps ?? JobLimits.maxCount)
            if !range.contains(ck.step) { problems.append("checkpoint step: must be from 0 to \(range.upperBound), got \(ck.step)") }
            if !(0...JobLimits.maxCount).contains(ck.imagesSeen) { problems.append("checkpoint images_seen: got \(ck.imagesSeen)") }
        }
        if !(lease.leaseSeconds.isFinite && lease.leaseSeconds > 0) { problems.append("lease_seconds: got \(lease.leaseSeconds)") }
        if !problems.isEmpty {
            return await reportFailure(reason: "leased config refused by the worker: " + problems.joined(separator: "; "),
                                       retryable: false)
        }
        switch await prepare() {
        case .success(let setup):
            // First word from this attempt: what it trains with (a short job may end before a
            // regular heartbeat goes out).
            if let end = await heartbeat() { return end }
            run.start(setup)
            return await supervise()
        case .failure(.stale(let why)): return dropped("lease lost while preparing: \(why)")
        case .failure(.refused(let why)): return await reportFailure(reason: why, retryable: true)
        case .failure(.rejected(let why)): return await reportFailure(reason: why, retryable: false)
        case .failure(.unfit(let why)): return await handBackUnfit(why)
        case .failure(.givingUp): return dropped("shutting down with the coordinator unreachable")
        }
    }

    /// Why a job could not be prepared.
    enum Setback: Error {
        case stale(String)
        case refused(String)
        /// What the coordinator handed out can never be trained, by any worker (fails without retry).
        case rejected(String)
        /// Not the job's fault: no job can run on this worker (it is released, not failed).
        case unfit(String)
        case givingUp
    }

    // MARK: - Preparation

    /// Downloads the style image and the checkpoint (if any) into the job's folder.
    private func prepare() async -> Result<TrainingSetup, Setback> {
        do {
            try FileManager.default.createDirectory(at: jobDir, withIntermediateDirectories: true)
        } catch {
            return .failure(.refused("cannot create \(jobDir.path): \(error)"))
        }
        let c = lease.config
        let style = jobDir.appendingPathComponent("style-image")
        if let setback = await fetch(c.styleSHA256, to: style, what: "style image", size: Self.maxStyleImageBytes) { return .failure(setback) }
        var checkpointFile: URL?
        if let ck = lease.checkpoint {
            let url = jobDir.appendingPathComponent("resume-\(ck.step).safetensors")
            if let setback = await fetch(ck.sha256, to: url, what: "checkpoint at step \(ck.step)", size: max(0, ck.size)) { return .failure(setback) }
            checkpointFile = url
        }
        // Early stopping's best weights, when an earlier attempt's best checkpoint is not the one resumed from.
        var bestWeights: (step: Int, url: URL)?
        if c.earlyStop != nil, let best = lease.best {
            if best.step == lease.checkpoint?.step, let checkpointFile {
                bestWeights = (best.step, checkpointFile)
            } else if best.step < (lease.checkpoint?.step ?? 0) {
                let url = jobDir.appendingPathComponent("best-\(best.step).safetensors")
                if let setback = await fetch(best.sha256, to: url, what: "best checkpoint at step \(best.step)", size: max(0, best.size)) { return .failure(setback) }
                bestWeights = (best.step, url)
            }
        }
        let vgg: VGG16
        switch await lossNetwork() {
        case .success(let network): vgg = network
        case .failure(let setback): return .failure(setback)
        }
        var initialWeights: URL?
        switch await warmStart(style: style, vgg: vgg) {
        case .success(let chosen?): initialWeights = chosen.0; warmStartReport = chosen.1
        case .success(nil): break
        case .failure(let setback): return .failure(setback)
        }
        let data: TrainingData
        switch await trainingData() {
        case .success(let d): data = d
        case .failure(let setback): return .failure(setback)
        }
        var o = TrainingOptions()
        o.imageSize = c.imageSize; o.styleSize = c.styleSize; o.batchSize = c.batchSize
        o.epochs = c.epochs; o.steps = c.steps; o.maxImages = c.maxImages; o.validationImages = c.validationImages
        o.lr = c.lr; o.contentWeight = c.contentWeight; o.styleWeight = c.styleWeight; o.seed = c.seed
        o.styleRatio = c.styleRatio
        return .success(TrainingSetup(jobID: jobID, options: o, data: data, styleImage: style,
                                      vgg: vgg, resumeFrom: checkpointFile, initialWeights: initialWeights,
                                      checkpointEvery: max(1, c.checkpointEvery), earlyStop: c.earlyStop,
                                      validationHistory: lease.validation, bestWeights: bestWeights,
                                      workDir: jobDir, leasedAt: leasedAt))
    }

    /// The worker's own VGG16, else the coordinator's (the lease names it): from the cache when
    /// a file there has the digest, else downloaded (verified) while keep-alives go out.
    private func lossNetwork() async -> Result<VGG16, Setback> {
        let network = context.lossNetwork
        if let local = network.local {
            lossNetworkName = network.localName
            return .success(local)
        }
        guard let weights = lease.vgg else {
            return .failure(.unfit("this worker has no VGG16 weights and the coordinator serves none: start the worker "
                                     + "with --vgg-weights FILE (or run `orchestrator vgg fetch` on it), or the coordinator with "
                                     + "`serve --vgg-weights FILE`"))
        }
        guard JobConfig.isSHA256(weights.sha256), (1...LossNetwork.maxBytes).contains(weights.size) else {
            return .failure(.refused("the lease names impossible VGG16 weights (size \(weights.size))"))
        }
        lossNetworkName = "vgg16 sha256:\(weights.sha256)"
        if let served = network.served, served.sha256 == weights.sha256 {
            network.cache.touch(weights.sha256)
            return .success(served.vgg)
        }
        let file = network.cache.url(for: weights.sha256)
        let cached = network.cache.has(weights.sha256, size: weights.size)
            && ((try? FileDigest.sha256(of: file)).map { $0.sha256 == weights.sha256 } ?? false)
        if !cached {
            try? FileManager.default.removeItem(at: file)
            network.cache.makeRoom(for: weights.size)
            do { try network.cache.prepare(for: weights.sha256) } catch {
                return .failure(.refused("cannot create the cache: \(error)"))
            }
            Log.info("\(label): downloading the coordinator's VGG16 weights (\(weights.size >> 20) MiB) into \(file.path)")
            if let setback = await fetch(weights.sha256, to: file, what: "VGG16 weights", size: weights.size) { return .failure(setback) }
        }
        do {
            let vgg = try VGG16(contentsOf: file)
            network.served = (weights.sha256, vgg)
            Log.info("\(label): using the coordinator's VGG16 weights \(weights.sha256.prefix(12))\(cached ? " (cached)" : "")")
            return .success(vgg)
        } catch {
            try? FileManager.default.removeItem(at: file)
            return .failure(.refused("the coordinator's VGG16 weights do not load: \(error)"))
        }
    }

    /// The largest style image a worker downloads (the coordinator's own limit is lower).
    static let maxStyleImageBytes: Int64 = 256 << 20

    /// `download` while keep-alive heartbeats go out (`withKeepAlive`); the setback, or
    /// `.stale` when a keep-alive learned that the job is cancelled or its lease gone; nil when done.
    func fetch(_ sha256: String, to url: URL, what: String, size: Int64) async -> Setback? {
        let (setback, news) = await withKeepAlive { await self.download(sha256, to: url, what: what, size: size) }
        if let news { return .stale(news) }
        return setback
    }

    /// Downloads a verified artifact, retrying while the coordinator is unreachable and up to
    /// three times on a checksum mismatch; nil when done.
    func download(_ sha256: String, to url: URL, what: String, size: Int64) async -> Setback? {
        var mismatches = 0
        while true {
            if givingUp { return .givingUp }
            await waitForRetry()
            do {
                try await client.download(artifact: sha256, to: url, expectedSize: size)
                reachable()
                return nil
            } catch let error as ClientError {
                if case .checksumMismatch = error, mismatches < 3 {
                    mismatches += 1
                    Log.info("\(label): \(what) download: \(error); retrying")
                    continue
                }
                if error.isTransient { unreachable(error); continue }
                if error.isStaleLease { return .stale(error.description) }
                return .refused("cannot download the \(what): \(error)")
            } catch {
                return .refused("cannot download the \(what): \(error)")
            }
        }
    }

    // MARK: - Keep-alive during transfers

    /// Runs `transfer` while a keep-alive heartbeat (progress, no loss points) goes out every
    /// `heartbeatInterval`, so that a long download or upload on a slow link never lets the lease
    /// lapse. Returns the transfer's result, and why the job must stop if a keep-alive learned
    /// that it was cancelled or that the lease is gone (nil otherwise).
    func withKeepAlive<T>(_ transfer: () async -> T) async -> (T, String?) {
        let client = self.client, jobID = self.jobID, token = lease.token
        let interval = heartbeatInterval, run = self.run, network = lossNetworkName, warm = warmStartReport
        let keeper = Task { () -> String? in
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(interval * 1e9))
                if Task.isCancelled { break }
                let p = run.progress
                let beat = HeartbeatRequest(token: token, step: p.step, imagesDone: p.images, imagesPerS: p.imagesPerS,
                                            stepsTotal: p.stepsTotal, imagesTotal: p.imagesTotal, lossNetwork: network,
                                            styleWeight: p.styleWeight, warmStart: warm)
                do {
                    if case .cancel = try await client.heartbeat(jobID: jobID, beat) { return "cancelled" }
                } catch let error as ClientError where error.isStaleLease {
                    return "stale lease: \(error)"
                } catch {
                    continue  // unreachable: the transfer's own retries deal with that
                }
            }
            return nil
        }
        let result = await transfer()
        keeper.cancel()
        let news = await keeper.value
        lastHeartbeat = monotonicSeconds()
        return (result, news)
    }

    // MARK: - Calls and backoff

    /// Runs `body` once, turning its error into a `CallResult` and updating the backoff.
    func call<T>(_ what: String, _ body: () async throws -> T) async -> CallResult<T> {
        do {
            let value = try await body()
            reachable()
            return .ok(value)
        } catch let error as ClientError {
            if error.isStaleLease { return .stale(error.description) }
            if error.isTransient { unreachable(error); return .retryLater }
            return .refused("\(what): \(error)")
        } catch {
            return .refused("\(what): \(error)")
        }
    }

    private func unreachable(_ error: ClientError) {
        let delay = backoff.nextDelay()
        retryAt = monotonicSeconds() + delay
        Log.info("coordinator unreachable: retrying in \(String(format: "%.1f", delay)) s (\(error))")
    }

    private func reachable() {
        if backoff.failures > 0 { Log.info("coordinator reachable again") }
        backoff.reset()
        retryAt = 0
    }

    /// Sleeps until the backoff delay has passed.
    func waitForRetry() async {
        let wait = retryAt - monotonicSeconds()
        if wait > 0 { try? await Task.sleep(nanoseconds: UInt64(wait * 1e9)) }
    }

    func dropped(_ reason: String) -> JobEnd {
        Log.info("\(label): dropped: \(reason)")
        return .dropped(reason)
    }
}
