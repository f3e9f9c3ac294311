import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - What the training thread needs and produces

/// Everything needed to build a job's `TrainingSession` on the training thread. The VGG16 is
/// the worker's one loss network, used by one job at a time.
struct TrainingSetup: @unchecked Sendable {
    var jobID: Int64
    var options: TrainingOptions
    var data: TrainingData
    var styleImage: URL
    var vgg: VGG16
    /// The checkpoint to resume from, nil for a fresh start.
    var resumeFrom: URL?
    /// A warm start's model (`"init"`): the weights a fresh start begins from.
    var initialWeights: URL?
    var checkpointEvery: Int
    /// Early stopping (needs `options.validationImages` > 0), the validation points of earlier
    /// attempts, and the downloaded best checkpoint of an earlier attempt (`LeaseResponse.best`).
    var earlyStop: EarlyStop?
    var validationHistory: [ValidationPoint] = []
    var bestWeights: (step: Int, url: URL)?
    /// Where checkpoints and the model are written (the job's own folder).
    var workDir: URL
    /// When the lease was granted (monotonic seconds): the first step's log line says how long
    /// it took to get there.
    var leasedAt: Double
}

/// A checkpoint written locally and not yet acknowledged by the coordinator, with the preview
/// rendered through it.
struct LocalCheckpoint: Sendable, Equatable {
    var url: URL
    var step: Int
    var imagesSeen: Int
    var preview: URL?
}

/// The content picture a job's previews render through each checkpoint for the dashboard
/// (`PreviewPicture`): its first held-out image when it has some, else the synthetic scene.
/// Loaded on the first preview (a fetched dataset's validation images may arrive last), then the
/// same for every checkpoint of the job. Used on the training thread only.
final class PreviewImage {
    private let jobID: Int64
    private let validation: (any TrainingImages)?
    private var loaded: RGBImage?

    init(jobID: Int64, validation: (any TrainingImages)?) {
        self.jobID = jobID
        self.validation = validation
    }

    /// The picture, loaded once.
    var content: RGBImage {
        if let loaded { return loaded }
        let (image, source) = PreviewPicture.content(validation: validation)
        Log.info("job \(jobID): previews render \(source)")
        loaded = image
        return image
    }

    /// Renders `net` on the picture into a PNG at `url`; nil if that fails (previews are a
    /// nicety: never a reason to stop training).
    func write(_ net: TransformerNet, to url: URL) -> URL? {
        do { try net.stylize(content).write(to: url) } catch { return nil }
        return url
    }
}

/// Where the training thread stands.
struct TrainingProgress: Sendable {
    var step = 0
    var images = 0
    var imagesPerS: Double?
    var stepsTotal: Int?
    var imagesTotal: Int?
    /// The step the session started from once it is built (0 for a fresh start).
    var startStep: Int?
    var latest: LossPoint?
    /// The style weight chosen for `"style_weight": "auto"`, once chosen or restored.
    var styleWeight: Double?
}

/// How the training thread ended.
enum TrainingOutcome: Sendable {
    /// All steps done, or early stopping ended training at `step` with the model of `bestStep`;
    /// the model is saved at `model`, its preview at `preview`.
    case finished(model: URL, preview: URL?, step: Int, bestStep: Int? = nil)
    /// Stopped on request (after the current step; with a checkpoint if one was asked for).
    case stopped
    case failed(reason: String, retryable: Bool)
}

// MARK: - The training thread

/// Runs one job's `TrainingSession` step by step on a dedicated thread (training is
/// synchronous CPU work that must not block the Swift concurrency pool). The async driver
/// reads progress, unsent loss points and pending checkpoints under a lock, and asks the
/// thread to stop; the thread only ever checks for a stop between steps.
final class TrainingRun: @unchecked Sendable {
    enum StopMode: Sendable { case none, abandon, checkpointAndStop }

    private let lock = NSLock()
    private var progressValue = TrainingProgress()
    private var losses: [LossPoint] = []
    private var validations: [ValidationPoint] = []
    private var checkpoints: [LocalCheckpoint] = []
    private var outcomeValue: TrainingOutcome?
    private var stopMode = StopMode.none

    /// `step` and `images`: where the job stands before training (its checkpoint's counters).
    init(step: Int = 0, images: Int = 0) {
        progressValue.step = step
        progressValue.images = images
    }

    // MARK: Driver side

    var progress: TrainingProgress { locked { progressValue } }
    var outcome: TrainingOutcome? { locked { outcomeValue } }

    func requestStop(_ mode: StopMode) { locked { if stopMode == .none { stopMode = mode } } }

    /// Loss points not yet acknowledged, oldest first (at most `limit`).
    func unsentLosses(limit: Int = 10_000) -> [LossPoint] { locked { Array(losses.prefix(limit)) } }

    var unsentCount: Int { locked { losses.count } }

    /// Validation points not yet acknowledged, oldest first.
    func unsentValidation() -> [ValidationPoint] { locked { validations } }

    /// The coordinator stored the first `count` unsent validation points.
    func acknowledgeValidation(_ count: Int) { locked { validations.removeFirst(min(count, validations.count)) } }

    /// The coordinator stored the first `count` unsent loss points.
    func acknowledgeLosses(_ count: Int) { locked { losses.removeFirst(min(count, losses.count)) } }

    /// The newest checkpoint not yet uploaded; older pending ones are superseded and deleted.
    func latestCheckpoint() -> LocalCheckpoint? {
        let superseded: [LocalCheckpoint] = locked {
            guard checkpoints.count > 1 else { return [] }
            let old = Array(checkpoints.dropLast())
            checkpoints.removeFirst(old.count)
            return old
        }
        for c in superseded {
            try? FileManager.default.removeItem(at: c.url)
            if let p = c.preview { try? FileManager.default.removeItem(at: p) }
        }
        return locked { checkpoints.last }
    }

    /// The coordinator stored `checkpoint`: forget it and delete the local file.
    func checkpointUploaded(_ checkpoint: LocalCheckpoint) {
        locked { checkpoints.removeAll { $0 == checkpoint } }
        try? FileManager.default.removeItem(at: checkpoint.url)
    }

    /// Starts the thread; returns at once.
    func start(_ setup: TrainingSetup) {
        let thread = Thread { [self] in
            let end = self.train(setup)
            self.locked { self.outcomeValue = end }
        }
        thread.name = "training job \(setup.jobID)"
        thread.stackSize = 16 << 20
        thread.start()
    }

    /// Waits (without blocking the pool) until the thread has ended.
    func waitForEnd() async -> TrainingOutcome {
        while true {
            if let end = outcome { return end }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
    }

    // MARK: Thread side

    private func train(_ setup: TrainingSetup) -> TrainingOutcome {
        let job = setup.jobID
        var built: TrainingSession?
        var previews: PreviewImage?
        var lastCheckpoint = 0
        do {
            let images: any TrainingImages
            switch setup.data {
            case .folder(let root):
                images = try ImageFolder(root: root, maxImages: setup.options.validationImages > 0 ? nil : setup.options.maxImages)
            case .fetched(let fetched): images = fetched
            }
            let split = try HeldOutSplit(images, validationImages: setup.options.validationImages,
                                         maxImages: setup.options.maxImages)
            let preview = PreviewImage(jobID: job, validation: split.validation)
            previews = preview
            let style = try RGBImage(contentsOf: setup.styleImage)
            let initial = try setup.resumeFrom == nil ? setup.initialWeights.map { try WeightsFile.read(contentsOf: $0) } : nil
            let session = try TrainingSession(options: setup.options, style: style, dataset: split.training,
                                              validation: split.validation, vgg: setup.vgg, initial: initial)
            built = session
            if let resume = setup.resumeFrom {
                try session.resume(from: WeightsFile.read(contentsOf: resume))
                Log.info("resuming job \(job) from step \(session.state.step) (next step \(session.state.step + 1))")
            }
            let start = session.state
            var tracker = ValidationTracker(setup: setup, resumeStep: start.step)
            var divergence = Divergence()
            if let v = split.validation { Log.info("job \(job): validating on \(v.count) held-out images") }
            Log.info("job \(job): training steps \(start.step + 1)…\(session.totalSteps) on \(split.training.count) images of \(images.description) "
                     + "(batch \(setup.options.batchSize), \(setup.options.imageSize)×\(setup.options.imageSize))")
            locked {
                progressValue.step = start.step
                progressValue.images = start.imagesSeen
                progressValue.startStep = start.step
                progressValue.stepsTotal = session.totalSteps
                progressValue.imagesTotal = Self.plannedImages(files: split.training.count,
                                                               batch: setup.options.batchSize,
                                                               steps: session.totalSteps)
            }
            lastCheckpoint = start.step
            var seconds = 0.0, trained = 0
            while !session.isFinished {
                switch locked({ stopMode }) {
                case .abandon: return .stopped
                case .checkpointAndStop:
                    if session.state.step > lastCheckpoint { try writeCheckpoint(session, setup, preview: preview) }
                    return .stopped
                case .none: break
                }
                let r = try session.runStep()
                if trained == 0, let ratio = setup.options.styleRatio {
                    if let a = session.autoStyleWeight {
                        Log.info(String(format: "job %lld: style weight auto: content %.5g, style %.5g on the first batch: style_weight %.6g (ratio %g)",
                                        job, a.content, a.style, a.weight, ratio))
                    } else {
                        Log.info(String(format: "job %lld: style weight auto: %.6g, from the checkpoint", job, session.styleWeight))
                    }
                    let weight = session.styleWeight
                    locked { progressValue.styleWeight = weight }
                }
                if let l = r.loss { try divergence.observe(step: r.step, total: l.total) }
                for s in r.skipped { Log.info("job \(job): skipped \(s)") }
                if trained == 0 {
                    Log.info(String(format: "job %lld: first step done %.1f s after the lease", job, monotonicSeconds() - setup.leasedAt))
                }
                seconds += r.seconds
                trained += r.batchImages
                let point = r.loss.map {
                    LossPoint(step: r.step, images: r.images, content: $0.content, style: $0.style, total: $0.total)
                }
                locked {
                    if let point { losses.append(point); progressValue.latest = point }
                    progressValue.step = r.step
                    progressValue.images = r.images
                    progressValue.imagesPerS = seconds > 0 ? Double(trained) / seconds : nil
                }
                if r.step % setup.checkpointEvery == 0 && !session.isFinished {
                    try writeCheckpoint(session, setup, preview: preview)
                    lastCheckpoint = r.step
                    if try validate(session, step: r.step, &tracker, job: job) {
                        let model = setup.workDir.appendingPathComponent("model.safetensors")
                        let best = try tracker.writeBestModel(session, step: r.step, to: model)
                        Log.info("job \(job): early-stopped at step \(r.step) (best step \(best))")
                        let final = preview.write(try TransformerNet(contentsOf: model),
                                                  to: setup.workDir.appendingPathComponent("preview-final.png"))
                        return .finished(model: model, preview: final, step: r.step, bestStep: best)
                    }
                }
            }
            _ = try validate(session, step: session.state.step, &tracker, job: job)
            if trained > 0 && seconds > 0 {
                Log.info(String(format: "job %lld: trained %d images in %.2f s of steps: %.3f img/s", job, trained, seconds,
                                Double(trained) / seconds))
            }
            let model = setup.workDir.appendingPathComponent("model.safetensors")
            try session.trainer.net.save(to: model)
            let final = preview.write(session.trainer.net, to: setup.workDir.appendingPathComponent("preview-final.png"))
            if let final, let image = try? RGBImage(contentsOf: final) {
                try Divergence.checkOutput(image, step: session.state.step)
            }
            // The final weights and Adam state, uploaded before `complete`: what `promote`
            // continues from (the final preview above is the step's picture).
            try writeCheckpoint(session, setup, preview: nil)
            return .finished(model: model, preview: final, step: session.state.step)
        } catch where locked({ stopMode }) != .none {
            // Asked to stop while a step could not finish (it waited for a shard that will not
            // come now): the step is not counted; the last one completed gets its checkpoint.
            if locked({ stopMode }) == .checkpointAndStop, let session = built, session.state.step > lastCheckpoint {
                try? writeCheckpoint(session, setup, preview: previews)
            }
            return .stopped
        } catch let error as TrainingError {
            switch error {
            case .nonFiniteLoss, .invalidOption, .diverged: return .failed(reason: error.description, retryable: false)
            // A worker's own --dataset folder may hold fewer images than another's.
            case .emptyDataset, .tooFewImages: return .failed(reason: error.description, retryable: true)
            }
        } catch {
            let text = String(describing: error)
            return .failed(reason: text, retryable: true)
        }
    }

    /// Writes a checkpoint of the session's state and, with `preview`, the preview rendered through it.
    private func writeCheckpoint(_ session: TrainingSession, _ setup: TrainingSetup, preview previewImage: PreviewImage?) throws {
        let state = session.state
        let url = setup.workDir.appendingPathComponent(String(format: "checkpoint-%08d.safetensors", state.step))
        try session.writeCheckpoint(to: url, metadata: ["job_id": String(setup.jobID)])
        let preview = previewImage?.write(session.trainer.net,
                                          to: setup.workDir.appendingPathComponent(String(format: "preview-%08d.png", state.step)))
        if let preview, let image = try? RGBImage(contentsOf: preview) {
            try Divergence.checkOutput(image, step: state.step)
        }
        locked { checkpoints.append(LocalCheckpoint(url: url, step: state.step, imagesSeen: state.imagesSeen, preview: preview)) }
    }

    /// Evaluates the held-out images at `step` and queues the point; true when early stopping
    /// says to stop.
    private func validate(_ session: TrainingSession, step: Int, _ tracker: inout ValidationTracker, job: Int64) throws -> Bool {
        guard let (point, stop) = try tracker.evaluate(session, step: step) else { return false }
        Log.info(String(format: "job %lld: validation at step %d: content %.5g, style %.5g, weighted total %.5g",
                        job, step, point.content, point.style, point.total))
        locked { validations.append(point) }
        return stop
    }

    /// Images trained on in `steps` steps over `files` files in batches of `batch` (the last
    /// batch of an epoch may be short; the data cycles).
    static func plannedImages(files: Int, batch: Int, steps: Int) -> Int {
        guard files > 0, batch > 0, steps > 0 else { return 0 }
        let perEpoch = (files + batch - 1) / batch
        return (steps / perEpoch) * files + min((steps % perEpoch) * batch, files)
    }

    private func locked<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock(); defer { lock.unlock() }
        return try body()
    }
}
