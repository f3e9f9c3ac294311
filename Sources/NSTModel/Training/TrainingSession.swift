import Foundation

/// The seed's hyper-parameters and data settings for one style (`orchestrator train` flags,
/// and the job config of the distributed trainer).
public struct TrainingOptions: Codable, Equatable, Sendable {
    public var imageSize = 256
    public var styleSize = 256
    public var batchSize = 4
    public var epochs = 1
    /// When set, overrides `epochs`: the data is cycled until this many steps are done.
    public var steps: Int?
    public var maxImages: Int?
    /// Images held out from the end of the sorted data (`HeldOutSplit`); 0: none.
    public var validationImages = 0
    public var lr = 1e-3
    public var contentWeight = 1e5
    public var styleWeight = 1e10
    /// When set, `styleWeight` is not used: the session chooses the weight that makes the
    /// weighted style term this many times the content term on the first batch (`AutoStyleWeight`).
    public var styleRatio: Double?
    public var seed: UInt64 = 42

    public init() {}
}

public enum TrainingError: Error, CustomStringConvertible, Equatable {
    case emptyDataset(path: String)
    case invalidOption(String)
    case nonFiniteLoss(step: Int, content: Double, style: Double)
    /// The data has no image left to train on once `validation` images are held out.
    case tooFewImages(path: String, count: Int, validation: Int)
    /// `Divergence` fired: the run will not recover (`why` says which rule).
    case diverged(step: Int, why: String)

    public var description: String {
        switch self {
        case .emptyDataset(let path): return "no images under \(path) (looked for .jpg, .jpeg and .png, recursively)"
        case .invalidOption(let why): return why
        case .nonFiniteLoss(let step, let c, let s): return "loss is not finite at step \(step) (content \(c), style \(s))"
        case .tooFewImages(let path, let count, let validation):
            return "\(path) has \(count) image(s): holding out \(validation) for validation needs at least \(validation + 1)"
        case .diverged(let step, let why): return "diverged at step \(step) (\(why))"
        }
    }
}

/// One style's training run: data order, step counting, resume. The data order is the sorted
/// file list, batch after batch, cycling over epochs (no shuffling), so step k always trains on
/// the same images and a resumed run repeats an uninterrupted one exactly.
public final class TrainingSession {
    /// The largest image or style side, and the most pixels in one batch, a session accepts
    /// (the coordinator's JobLimits are tighter).
    public static let maxSide = 8192
    public static let maxBatchPixels = 1 << 24
    public let options: TrainingOptions
    /// The content images in training order: an `ImageFolder` or `PackedImages`.
    public let dataset: any TrainingImages
    /// The held-out images `validate()` evaluates on (`HeldOutSplit`), never trained on.
    public let validation: (any TrainingImages)?
    public let trainer: Trainer
    public let batchesPerEpoch: Int
    public let totalSteps: Int
    public private(set) var state = CheckpointState(step: 0, imagesSeen: 0)
    /// With `options.styleRatio`: the weight chosen on the first batch (nil until chosen, and
    /// after a resume, which takes the weight from the checkpoint instead).
    public internal(set) var autoStyleWeight: AutoStyleWeight?
    /// False until an auto style weight is chosen or restored (always true without `styleRatio`).
    var styleWeightSettled: Bool
    /// The style weight training uses (the chosen one with `styleRatio`).
    public var styleWeight: Double { trainer.loss.styleWeight }
    let batch: Tensor

    /// `initial`: weights to start from (`--init`); otherwise PyTorch's default init from `options.seed`.
    public init(options: TrainingOptions, style: RGBImage, dataset: any TrainingImages,
                validation: (any TrainingImages)? = nil, vgg: VGG16, initial: SafeTensors? = nil) throws {
        guard options.imageSize >= 8, options.imageSize % 4 == 0 else {
            throw TrainingError.invalidOption("image size must be a multiple of 4 and at least 8, got \(options.imageSize)")
        }
        guard options.styleSize >= 8 else { throw TrainingError.invalidOption("style size must be at least 8, got \(options.styleSize)") }
        guard options.batchSize >= 1 else { throw TrainingError.invalidOption("batch size must be at least 1, got \(options.batchSize)") }
        // Sizes no machine can train (a step holds about 5 KB per pixel of the batch): refused
        // here with their values, before any tensor is sized from them.
        guard options.imageSize <= Self.maxSide, options.styleSize <= Self.maxSide else {
            throw TrainingError.invalidOption("image and style sizes must be at most \(Self.maxSide), got \(options.imageSize) and \(options.styleSize)")
        }
        guard options.batchSize <= Self.maxSide,
              options.batchSize * options.imageSize * options.imageSize <= Self.maxBatchPixels else {
            throw TrainingError.invalidOption("batch size × image size² must be at most \(Self.maxBatchPixels) pixels, got "
                                              + "\(options.batchSize) × \(options.imageSize)²")
        }
        guard options.epochs >= 1 || options.steps != nil else { throw TrainingError.invalidOption("epochs must be at least 1") }
        if let s = options.steps, s < 1 { throw TrainingError.invalidOption("steps must be at least 1, got \(s)") }
        guard options.lr > 0, options.lr.isFinite else { throw TrainingError.invalidOption("lr must be positive, got \(options.lr)") }
        if let r = options.styleRatio, !(r.isFinite && r > 0) {
            throw TrainingError.invalidOption("style ratio must be a positive number, got \(r)")
        }
        guard dataset.count > 0 else { throw TrainingError.emptyDataset(path: dataset.description) }
        self.options = options
        self.dataset = dataset
        self.validation = validation
        styleWeightSettled = options.styleRatio == nil
        batchesPerEpoch = (dataset.count + options.batchSize - 1) / options.batchSize
        totalSteps = options.steps ?? options.epochs * batchesPerEpoch

        let net = TransformerNet(seed: options.seed)
        if let initial { try net.load(initial) }
        let loss = PerceptualLoss(vgg: vgg, contentWeight: options.contentWeight, styleWeight: options.styleWeight)
        let s = options.styleSize
        let styleTensor = Tensor(shape: [1, 3, s, s])
        (style.width == s && style.height == s ? style : style.resized(width: s, height: s)).writeCHW(to: styleTensor.data)
        loss.setStyle(styleTensor)
        trainer = Trainer(net: net, loss: loss, lr: options.lr)
        batch = Tensor(shape: [options.batchSize, 3, options.imageSize, options.imageSize])
    }

    public var isFinished: Bool { state.step >= totalSteps }

    /// Continues from a checkpoint written by `writeCheckpoint`.
    /// Continues from a checkpoint written by `writeCheckpoint`, with its auto style weight.
    public func resume(from checkpoint: SafeTensors) throws {
        state = try trainer.restoreCheckpoint(checkpoint)
        if options.styleRatio != nil, let text = checkpoint.metadata[Self.autoStyleWeightKey],
           let weight = Double(text), weight.isFinite, weight > 0 {
            trainer.loss.styleWeight = weight
            styleWeightSettled = true
        }
    }

    public func writeCheckpoint(to url: URL, metadata: [String: String] = [:]) throws {
        var metadata = metadata
        if options.styleRatio != nil && styleWeightSettled {
            metadata[Self.autoStyleWeightKey] = String(format: "%.17g", trainer.loss.styleWeight)
        }
        try trainer.writeCheckpoint(to: url, state: state, extraMetadata: metadata)
    }

    /// The file index the next step starts at.
    public var dataPosition: Int { (state.step % batchesPerEpoch) * options.batchSize }

    public struct StepReport: Sendable {
        public var step: Int
        /// Images trained on so far, this batch included.
        public var images: Int
        public var batchImages: Int
        /// nil when every file of the batch was unreadable and the step was skipped.
        public var loss: PerceptualLoss.Value?
        public var skipped: [String]
        public var seconds: Double
    }

    /// Trains the next batch. Unreadable files are left out of the batch; a batch with no
    /// readable image is skipped (no update, no loss). Throws on a non-finite loss, and when
    /// the dataset cannot deliver its bytes (`PackedImages`); the step is then not counted.
    public func runStep() throws -> StepReport {
        precondition(!isFinished, "training already finished")
        if !styleWeightSettled, let ratio = options.styleRatio { try chooseStyleWeight(ratio: ratio) }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let start = dataPosition
        let (loaded, skipped) = try dataset.loadBatch(start: start, count: options.batchSize, size: options.imageSize, into: batch)
        state.step += 1
        var value: PerceptualLoss.Value?
        if loaded > 0 {
            let x = loaded == options.batchSize ? batch
                : Tensor(viewing: batch, shape: [loaded, 3, options.imageSize, options.imageSize])
            let v = trainer.step(x)
            guard v.content.isFinite, v.style.isFinite else {
                throw TrainingError.nonFiniteLoss(step: state.step, content: v.content, style: v.style)
            }
            state.imagesSeen += loaded
            value = v
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return StepReport(step: state.step, images: state.imagesSeen, batchImages: loaded, loss: value,
                          skipped: skipped.map { "\($0.path): \($0.reason)" }, seconds: seconds)
    }
}
