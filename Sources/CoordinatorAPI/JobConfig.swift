import Foundation

// MARK: - JobConfig

/// The full configuration of one style's training, as submitted and as handed to a worker.
/// Encoded with snake_case keys (`style_sha256`, `image_size`, …); missing keys take the
/// defaults below when decoding.
public struct JobConfig: Codable, Sendable, Equatable {
    /// The style's name, unique among live jobs; also the file name of the fetched model,
    /// so it is restricted to `[A-Za-z0-9._-]`, not starting with a dot.
    public var name: String
    /// SHA-256 (lowercase hex) of the style image in the coordinator's artifact store.
    public var styleSHA256: String
    /// Side of the square training crops.
    public var imageSize: Int
    /// Side the style image is resized to.
    public var styleSize: Int
    public var batchSize: Int
    public var epochs: Int
    /// At most this many dataset images per epoch, if set.
    public var maxImages: Int?
    /// Train exactly this many steps; when set it overrides `epochs`.
    public var steps: Int?
    /// Adam learning rate.
    public var lr: Double
    public var contentWeight: Double
    public var styleWeight: Double
    /// `"style_weight": "auto"`: when set, the worker chooses the style weight before the first
    /// step so that the weighted style term is this many times the content term on the first
    /// batch (`styleWeight` is then unused); the chosen weight is recorded with the job.
    public var styleRatio: Double?
    /// Warm start (docs/tuning.md): `"nearest"` starts from the finished model whose style's
    /// Gram statistics are closest to this style's, `"job:ID"` from that job's model; nil
    /// starts from a fresh initialisation.
    public var initFrom: String?
    /// Upload a checkpoint every this many steps.
    public var checkpointEvery: Int
    public var seed: UInt64
    /// Higher is leased first; FIFO within a priority.
    public var priority: Int
    /// Attempts (leases that end in expiry or retryable failure) before the job fails.
    public var maxAttempts: Int
    /// The coordinator's dataset to train on (`serve --dataset NAME=DIR`); nil for its default
    /// one. Submitting resolves it: the stored job always names one when the coordinator serves
    /// datasets (and none when it serves none: workers then use their own `--dataset DIR`).
    public var dataset: String?
    /// The SHA-256 of that dataset's manifest, set by the coordinator when the job is submitted:
    /// every attempt of the job, on any worker, trains on exactly these bytes in this order.
    public var datasetSHA256: String?
    /// Sweeps (docs/tuning.md): the style a job of a sweep belongs to (its jobs are named
    /// `<group>-<k>`), and the values this job takes for the swept parameters, by snake_case key.
    public var group: String?
    public var params: [String: Double]?
    /// Images held out from the end of the dataset's training order and never trained on: at each
    /// checkpoint and at the end the worker reports their content and style losses. 0: none (and
    /// what a stored config without the key means, so jobs from before keep their data).
    public var validationImages: Int
    /// Stop when validation stops improving (needs `validationImages` > 0).
    public var earlyStop: EarlyStop?

    public init(
        name: String, styleSHA256: String, imageSize: Int = 256, styleSize: Int = 256,
        batchSize: Int = 4, epochs: Int = 1, maxImages: Int? = nil, steps: Int? = nil,
        lr: Double = 1e-3, contentWeight: Double = 1e5, styleWeight: Double = 1e10,
        checkpointEvery: Int = 100, seed: UInt64 = 42, priority: Int = 0, maxAttempts: Int = 3,
        dataset: String? = nil, datasetSHA256: String? = nil, group: String? = nil, params: [String: Double]? = nil,
        validationImages: Int = 0, earlyStop: EarlyStop? = nil, styleRatio: Double? = nil, initFrom: String? = nil
    ) {
        self.styleRatio = styleRatio
        self.initFrom = initFrom
        self.group = group
        self.params = params
        self.validationImages = validationImages
        self.earlyStop = earlyStop
        self.dataset = dataset
        self.datasetSHA256 = datasetSHA256
        self.name = name
        self.styleSHA256 = styleSHA256
        self.imageSize = imageSize
        self.styleSize = styleSize
        self.batchSize = batchSize
        self.epochs = epochs
        self.maxImages = maxImages
        self.steps = steps
        self.lr = lr
        self.contentWeight = contentWeight
        self.styleWeight = styleWeight
        self.checkpointEvery = checkpointEvery
        self.seed = seed
        self.priority = priority
        self.maxAttempts = maxAttempts
    }

    enum CodingKeys: String, CodingKey {
        case name
        case styleSHA256 = "style_sha256"
        case imageSize = "image_size"
        case styleSize = "style_size"
        case batchSize = "batch_size"
        case epochs
        case maxImages = "max_images"
        case steps
        case lr
        case contentWeight = "content_weight"
        case styleWeight = "style_weight"
        case styleRatio = "style_ratio"
        case initFrom = "init"
        case checkpointEvery = "checkpoint_every"
        case seed
        case priority
        case maxAttempts = "max_attempts"
        case dataset
        case datasetSHA256 = "dataset_sha256"
        case group, params
        case validationImages = "validation_images"
        case earlyStop = "early_stop"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        let d = JobConfig(name: "", styleSHA256: "")
        name = try c.decode(String.self, forKey: .name)
        styleSHA256 = try c.decode(String.self, forKey: .styleSHA256)
        imageSize = try c.decodeIfPresent(Int.self, forKey: .imageSize) ?? d.imageSize
        styleSize = try c.decodeIfPresent(Int.self, forKey: .styleSize) ?? d.styleSize
        batchSize = try c.decodeIfPresent(Int.self, forKey: .batchSize) ?? d.batchSize
        epochs = try c.decodeIfPresent(Int.self, forKey: .epochs) ?? d.epochs
        maxImages = try c.decodeIfPresent(Int.self, forKey: .maxImages)
        steps = try c.decodeIfPresent(Int.self, forKey: .steps)
        lr = try c.decodeIfPresent(Double.self, forKey: .lr) ?? d.lr
        contentWeight = try c.decodeIfPresent(Double.self, forKey: .contentWeight) ?? d.contentWeight
        styleWeight = try c.decodeIfPresent(Double.self, forKey: .styleWeight) ?? d.styleWeight
        styleRatio = try c.decodeIfPresent(Double.self, forKey: .styleRatio)
        initFrom = try c.decodeIfPresent(String.self, forKey: .initFrom)
        checkpointEvery = try c.decodeIfPresent(Int.self, forKey: .checkpointEvery) ?? d.checkpointEvery
        seed = try c.decodeIfPresent(UInt64.self, forKey: .seed) ?? d.seed
        priority = try c.decodeIfPresent(Int.self, forKey: .priority) ?? d.priority
        maxAttempts = try c.decodeIfPresent(Int.self, forKey: .maxAttempts) ?? d.maxAttempts
        dataset = try c.decodeIfPresent(String.self, forKey: .dataset)
        datasetSHA256 = try c.decodeIfPresent(String.self, forKey: .datasetSHA256)
        group = try c.decodeIfPresent(String.self, forKey: .group)
        params = try c.decodeIfPresent([String: Double].self, forKey: .params)
        validationImages = try c.decodeIfPresent(Int.self, forKey: .validationImages) ?? 0
        earlyStop = try c.decodeIfPresent(EarlyStop.self, forKey: .earlyStop)
    }
}

// MARK: - Validation

extension JobConfig {
    /// Every problem with this config, each as `key: message` using the snake_case key;
    /// empty when the config is valid.
    public func problems() -> [String] {
        var out: [String] = []
        if let p = Self.nameProblem(name) { out.append("name: \(p)") }
        if !Self.isSHA256(styleSHA256) {
            out.append("style_sha256: expected 64 lowercase hex digits, got \"\(Self.shown(styleSHA256))\"")
        }
        func within(_ key: String, _ value: Int?, _ range: ClosedRange<Int>) {
            guard let value, !range.contains(value) else { return }
            out.append(value <= 0 && range.lowerBound == 1 ? "\(key): must be positive, got \(value)"
                       : "\(key): must be from \(range.lowerBound) to \(range.upperBound), got \(value)")
        }
        within("image_size", imageSize, JobLimits.imageSize)
        if JobLimits.imageSize.contains(imageSize) && imageSize % 4 != 0 {
            out.append("image_size: must be a multiple of 4, got \(imageSize)")
        }
        within("style_size", styleSize, JobLimits.styleSize)
        within("batch_size", batchSize, JobLimits.batchSize)
        within("epochs", epochs, JobLimits.epochs)
        within("max_images", maxImages, JobLimits.maxImages)
        within("steps", steps, JobLimits.steps)
        within("checkpoint_every", checkpointEvery, JobLimits.checkpointEvery)
        within("max_attempts", maxAttempts, JobLimits.maxAttempts)
        within("priority", priority, JobLimits.priority)
        if JobLimits.imageSize.contains(imageSize) && JobLimits.batchSize.contains(batchSize)
            && batchSize * imageSize * imageSize > JobLimits.batchPixels {
            out.append("batch_size × image_size²: \(batchSize) × \(imageSize)² is more than \(JobLimits.batchPixels) pixels a step")
        }
        // Any finite value trains: one too large only makes the loss non-finite, which fails
        // the job without retry (a worker-side rule), so no upper bound is needed here.
        if let dataset, let p = Self.nameProblem(dataset) { out.append("dataset: \(p)") }
        if let datasetSHA256, !Self.isSHA256(datasetSHA256) {
            out.append("dataset_sha256: expected 64 lowercase hex digits, got \"\(Self.shown(datasetSHA256))\"")
        }
        if let group, let p = Self.nameProblem(group) { out.append("group: \(p)") }
        if let params {
            if params.count > JobLimits.params { out.append("params: more than \(JobLimits.params) entries") }
            for (key, value) in params.sorted(by: { $0.key < $1.key }) {
                if key.isEmpty || key.utf8.count > 64 || !key.utf8.allSatisfy({ (97...122).contains($0) || $0 == 95 || (48...57).contains($0) }) {
                    out.append("params: key \"\(Self.shown(key))\" is not a snake_case parameter name")
                } else if !value.isFinite {
                    out.append("params.\(key): must be a finite number, got \(value)")
                }
            }
        }
        within("validation_images", validationImages, JobLimits.validationImages)
        if let e = earlyStop {
            within("early_stop.patience", e.patience, JobLimits.patience)
            if !(e.minDelta.isFinite && e.minDelta >= 0 && e.minDelta < 1) {
                out.append("early_stop.min_delta: must be from 0 to less than 1 (a relative improvement), got \(e.minDelta)")
            }
            if validationImages == 0 { out.append("early_stop: needs validation_images > 0") }
        }
        if !(lr.isFinite && lr > 0) { out.append("lr: must be a positive number, got \(lr)") }
        if !(contentWeight.isFinite && contentWeight >= 0) {
            out.append("content_weight: must be a non-negative number, got \(contentWeight)")
        }
        if !(styleWeight.isFinite && styleWeight >= 0) {
            out.append("style_weight: must be a non-negative number, got \(styleWeight)")
        }
        if let r = styleRatio, !(r.isFinite && r > 0 && r <= JobLimits.maxStyleRatio) {
            out.append("style_ratio: must be a number above 0 and at most \(Int(JobLimits.maxStyleRatio)), got \(r)")
        }
        if styleRatio != nil && contentWeight == 0 {
            out.append("style_weight: \"auto\" sets it relative to the content term, so content_weight must be above 0")
        }
        if let i = initFrom, InitSource(i) == nil {
            out.append("init: expected \"nearest\" or \"job:ID\" (a job id), got \"\(Self.shown(i))\"")
        }
        return out
    }

    /// Where a job's training starts (`initFrom` parsed); nil for a fresh initialisation.
    public var initSource: InitSource? { initFrom.flatMap(InitSource.init) }

    /// At most 80 characters of `text`, control characters escaped (for messages).
    static func shown(_ text: String) -> String { Sanitize.oneLine(text, limit: 80) }

    /// Steps of training when known from the config alone (`steps`).
    public var plannedSteps: Int? { steps }

    /// Images of training when known from the config alone (saturating: never traps, whatever
    /// a stored config holds).
    public var plannedImages: Int? {
        steps.map { s in
            let (product, overflow) = s.multipliedReportingOverflow(by: batchSize)
            return overflow ? Int.max : product
        }
    }

    /// A sweep job's params as one line, keys in order: `lr=0.002 style_weight=30000`.
    public static func paramsText(_ params: [String: Double]) -> String {
        params.keys.sorted().map { "\($0)=\(String(format: "%g", params[$0]!))" }.joined(separator: " ")
    }

    /// Why `name` cannot be a job name (it becomes a file name), or nil if it can.
    public static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "must not be empty" }
        if name.utf8.count > 128 { return "longer than 128 bytes" }
        if name.hasPrefix(".") { return "must not start with '.'" }
        let allowed = name.unicodeScalars.allSatisfy { s in
            s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s)
                          || s == "." || s == "_" || s == "-")
        }
        return allowed ? nil : "only letters, digits, '.', '_' and '-' are allowed, got \"\(shown(name))\""
    }

    /// True if `text` is a SHA-256 digest in lowercase hex.
    public static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }
}

// MARK: - Warm starts

/// `"init"` of a job config: the finished model a job's training starts from.
public enum InitSource: Sendable, Equatable, CustomStringConvertible {
    /// The succeeded job whose style is nearest by Gram statistics (chosen by the worker).
    case nearest
    /// This job's final model.
    case job(Int64)

    /// Parses `"nearest"` or `"job:ID"` (ID a positive integer); nil otherwise.
    public init?(_ text: String) {
        if text == "nearest" { self = .nearest; return }
        let digits = text.dropFirst(4)
        guard text.hasPrefix("job:"), !digits.isEmpty, digits.allSatisfy({ ("0"..."9").contains($0) }),
              let id = Int64(digits), id > 0 else { return nil }
        self = .job(id)
    }

    public var description: String {
        switch self {
        case .nearest: return "nearest"
        case .job(let id): return "job:\(id)"
        }
    }
}

// MARK: - Limits

/// The one set of limits on every job-config value (docs/api.md), checked by `problems()` on
/// every way in — the API, the config file, the store — and again by the worker on the config
/// it leases. They keep one job from exhausting a worker: a training step holds about 5 KB per
/// pixel of the batch (activations, gradients and scratch), so `batchPixels` is some 10 GB.
public enum JobLimits {
    public static let imageSize = 8...2048
    public static let styleSize = 8...2048
    public static let batchSize = 1...64
    /// `batch_size × image_size²` at most.
    public static let batchPixels = 1 << 21
    public static let epochs = 1...10_000
    public static let maxImages = 1...100_000_000
    public static let steps = 1...100_000_000
    public static let checkpointEvery = 1...100_000_000
    public static let maxAttempts = 1...20
    /// Held-out validation images of a job.
    public static let validationImages = 0...1024
    /// Early stopping's patience, in checkpoints.
    public static let patience = 1...1000
    /// The largest `style_ratio` (the weighted style term this many times the content term).
    public static let maxStyleRatio = 1e6
    /// Swept parameters of one job.
    public static let params = 32
    public static let priority = -1_000_000...1_000_000
    /// The largest step or image count a report may carry (about 10^12: far beyond any real
    /// run, far below where arithmetic on it could overflow).
    public static let maxCount = 1 << 40
}

// MARK: - Early stopping

/// `"early_stop": {"patience": P, "min_delta": D}`: the job ends when the weighted validation
/// total has not improved on its best by a relative `minDelta` for `patience` checkpoints; its
/// model is then the best checkpoint's.
public struct EarlyStop: Codable, Sendable, Equatable {
    public var patience: Int
    public var minDelta: Double

    public init(patience: Int, minDelta: Double = 0) {
        self.patience = patience
        self.minDelta = minDelta
    }

    enum CodingKeys: String, CodingKey {
        case patience
        case minDelta = "min_delta"
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        patience = try c.decode(Int.self, forKey: .patience)
        minDelta = try c.decodeIfPresent(Double.self, forKey: .minDelta) ?? 0
    }
}
