import CoordinatorAPI
import Foundation

// MARK: - The training keys of a styles config

/// The snake_case keys `defaults` and each style may set, how each is checked, and how it
/// lands in a `JobConfig`.
enum StyleKeys {
    /// Keys only `defaults` may hold, besides the training keys.
    static let defaultsOnly: Set<String> = []
    /// Keys only a style may hold, besides the training keys.
    static let styleOnly: Set<String> = ["name", "image"]

    /// The training keys, in the order problems are reported.
    static let training = ["dataset", "image_size", "style_size", "batch_size", "epochs", "max_images", "steps", "lr",
                           "content_weight", "style_weight", "style_ratio", "checkpoint_every", "seed", "priority", "max_attempts",
                           "validation_images", "early_stop", "init"]

    /// Held-out validation images of a job when the config does not say (the default;
    /// `orchestrator train` keeps validation off unless asked).
    static let defaultValidationImages = 8

    /// `style_ratio` when `"style_weight": "auto"` comes without one: the weighted style term
    /// this many times the content term on the first batch (chosen from sweeps with the
    /// ImageNet VGG16; docs/tuning.md).
    static let defaultStyleRatio = 1.5

    /// The keys a `{"sweep": […]}` may take (docs/tuning.md): every numeric hyper-parameter.
    static let sweepable: Set<String> = ["image_size", "style_size", "batch_size", "epochs", "max_images", "steps", "lr",
                                         "content_weight", "style_weight", "style_ratio", "checkpoint_every", "seed", "validation_images"]

    /// Checks every key of `object` (at `path`) and applies the valid training keys to `config`.
    static func apply(_ object: [String: JSONValue], path: String, to config: inout JobConfig,
                      allowed extra: Set<String>, checker: inout Checker) {
        for key in object.keys.sorted() where !training.contains(key) && !extra.contains(key) {
            let hint = suggestion(for: key, among: training + extra.sorted())
            checker.report(path, "unknown key \"\(key)\"\(hint)")
        }
        for key in training {
            guard let value = object[key] else { continue }
            if let problem = set(key, value, in: &config) {
                checker.report("\(path).\(key)", problem)
            }
        }
    }

    /// Sets `key` to `value` in `config`, or says why it cannot.
    static func set(_ key: String, _ value: JSONValue, in config: inout JobConfig) -> String? {
        // The bounds are JobLimits, the same the store and the worker check.
        func integer(_ range: ClosedRange<Int>) -> Int? {
            guard let i = value.integer, i >= Int64(range.lowerBound), i <= Int64(range.upperBound) else { return nil }
            return Int(i)
        }
        func between(_ range: ClosedRange<Int>) -> String { "from \(range.lowerBound) to \(range.upperBound)" }
        let got = ", got \(value.shown)"
        switch key {
        case "dataset":
            // A dataset the coordinator serves (`serve --dataset NAME=DIR`); null: its default.
            if value == .null { config.dataset = nil; return nil }
            guard case .string(let name) = value else { return "expected a dataset name (a string) or null\(got)" }
            if let problem = JobConfig.nameProblem(name) { return "a dataset name: \(problem)" }
            config.dataset = name
        case "image_size":
            guard let i = integer(JobLimits.imageSize), i % 4 == 0 else {
                return "must be a positive multiple of 4 (\(between(JobLimits.imageSize)))\(got)"
            }
            config.imageSize = i
        case "style_size":
            guard let i = integer(JobLimits.styleSize) else { return "must be an integer \(between(JobLimits.styleSize))\(got)" }
            config.styleSize = i
        case "batch_size":
            guard let i = integer(JobLimits.batchSize) else { return "must be an integer \(between(JobLimits.batchSize))\(got)" }
            config.batchSize = i
        case "epochs":
            guard let i = integer(JobLimits.epochs) else { return "must be an integer \(between(JobLimits.epochs))\(got)" }
            config.epochs = i
        case "max_images":
            if value == .null { config.maxImages = nil; return nil }
            guard let i = integer(JobLimits.maxImages) else { return "must be an integer \(between(JobLimits.maxImages)) or null\(got)" }
            config.maxImages = i
        case "steps":
            if value == .null { config.steps = nil; return nil }
            guard let i = integer(JobLimits.steps) else { return "must be an integer \(between(JobLimits.steps)) or null\(got)" }
            config.steps = i
        case "lr":
            guard let x = value.number, x.isFinite, x > 0 else { return "must be a positive number\(got)" }
            config.lr = x
        case "content_weight":
            guard let x = value.number, x.isFinite, x >= 0 else { return "must be a non-negative number\(got)" }
            config.contentWeight = x
        case "style_weight":
            // "auto": the worker chooses it on the first batch (style_ratio, or the default).
            if value == .string("auto") {
                config.styleRatio = config.styleRatio ?? defaultStyleRatio
                return nil
            }
            guard let x = value.number, x.isFinite, x >= 0 else { return "must be a non-negative number or \"auto\"\(got)" }
            config.styleWeight = x
            config.styleRatio = nil
        case "style_ratio":
            guard config.styleRatio != nil else { return "needs \"style_weight\": \"auto\" (here or in defaults)" }
            guard let x = value.number, x.isFinite, x > 0, x <= JobLimits.maxStyleRatio else {
                return "must be a number above 0 and at most \(Int(JobLimits.maxStyleRatio))\(got)"
            }
            config.styleRatio = x
        case "checkpoint_every":
            guard let i = integer(JobLimits.checkpointEvery) else {
                return "must be an integer \(between(JobLimits.checkpointEvery))\(got)"
            }
            config.checkpointEvery = i
        case "seed":
            guard let i = value.integer, i >= 0 else { return "must be a non-negative integer\(got)" }
            config.seed = UInt64(i)
        case "priority":
            guard let i = integer(JobLimits.priority) else { return "must be an integer \(between(JobLimits.priority))\(got)" }
            config.priority = i
        case "max_attempts":
            guard let i = integer(JobLimits.maxAttempts) else { return "must be an integer \(between(JobLimits.maxAttempts))\(got)" }
            config.maxAttempts = i
        case "validation_images":
            guard let i = integer(JobLimits.validationImages) else {
                return "must be an integer \(between(JobLimits.validationImages)) (0: no validation)\(got)"
            }
            config.validationImages = i
        case "early_stop":
            if value == .null { config.earlyStop = nil; return nil }
            guard case .object(let o) = value else { return "expected {\"patience\": P, \"min_delta\": D} or null\(got)" }
            if let extra = o.keys.sorted().first(where: { $0 != "patience" && $0 != "min_delta" }) {
                return "unknown key \"\(extra)\" (expected patience and min_delta)"
            }
            guard let p = o["patience"]?.integer, p >= Int64(JobLimits.patience.lowerBound), p <= Int64(JobLimits.patience.upperBound) else {
                return "patience must be an integer \(between(JobLimits.patience)) (checkpoints)\(got)"
            }
            let d = o["min_delta"].map { $0.number } ?? 0
            guard let d, d.isFinite, d >= 0, d < 1 else { return "min_delta must be a number from 0 to less than 1 (relative)\(got)" }
            config.earlyStop = EarlyStop(patience: Int(p), minDelta: d)
        case "init":
            if value == .null { config.initFrom = nil; return nil }
            guard case .string(let text) = value, InitSource(text) != nil else {
                return "expected \"nearest\", \"job:ID\" (a job id) or null\(got)"
            }
            config.initFrom = text
        default:
            return "unknown key"
        }
        return nil
    }

    /// ` (did you mean "lr"?)` when a known key is at most two edits away, else empty.
    static func suggestion(for key: String, among known: [String]) -> String {
        let best = known.map { ($0, editDistance(key, $0)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= 2 else { return "" }
        return " (did you mean \"\(best.0)\"?)"
    }

    /// Levenshtein distance.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let a = Array(a), b = Array(b)
        if a.isEmpty { return b.count }
        var previous = Array(0...b.count)
        for i in 1...a.count {
            var current = [i] + Array(repeating: 0, count: b.count)
            for j in stride(from: 1, through: b.count, by: 1) {
                current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }
}
