import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - StylesConfig

/// `configs/styles.json`, checked and resolved:
///
/// ```json
/// {"defaults": {"dataset": "coco-2014", "image_size": 256, "steps": 2000, …},
///  "styles": [{"name": "wave", "image": "styles/wave.jpg", "style_weight": 5e10}, …]}
/// ```
///
/// `defaults` may hold `dataset, image_size, style_size, batch_size, epochs, max_images, steps,
/// lr, content_weight, style_weight, checkpoint_every, seed, priority, max_attempts`; each style
/// has `name` and `image` (relative to the config file) and may override any of those keys.
/// `dataset` names a dataset the coordinator serves (`serve --dataset NAME=DIR`; left out: its
/// default one, or the workers' own folders when it serves none). Loading reports every problem
/// at once, each with its JSON path: `styles[3].image: file not found: configs/styles/wave.png`.
public struct StylesConfig: Sendable {
    /// The `style_ratio` of `"style_weight": "auto"` when a config gives none.
    public static let defaultStyleRatio = StyleKeys.defaultStyleRatio

    /// The `defaults.dataset` name, if any (each style's `config.dataset` is what is submitted).
    public var dataset: String?
    /// The styles in file order.
    public var styles: [Style]

    /// One style, resolved: its image checked (a JPEG or PNG that decodes) and hashed.
    public struct Style: Sendable, Equatable {
        public var name: String
        /// The style image file.
        public var image: URL
        /// The image's path as messages show it (relative to the working directory when the
        /// config was given by a relative path, e.g. `configs/styles/wave.png`).
        public var imagePath: String
        /// SHA-256 of the image file (lowercase hex).
        public var imageSHA256: String
        /// Size of the image file in bytes.
        public var imageBytes: Int64
        /// The job to submit: defaults, then this style's overrides, `styleSHA256` set.
        public var config: JobConfig
    }

    /// Reads and checks the config at `url`.
    /// - Throws: `StylesConfigError` listing every problem found.
    public static func load(contentsOf url: URL) throws -> StylesConfig {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            let reason = FileManager.default.fileExists(atPath: url.path)
                ? (error as NSError).localizedDescription : "file not found"
            throw StylesConfigError(file: url.relativePath, problems: ["cannot read the config: \(reason)"])
        }
        return try parse(data, file: url.relativePath, baseDirectory: url.deletingLastPathComponent())
    }

    /// Checks the config text `data`; image paths are relative to `baseDirectory`, and shown
    /// in messages relative to the directory of `file` as given (e.g. `configs/styles/a.png`).
    /// - Throws: `StylesConfigError` listing every problem found.
    public static func parse(_ data: Data, file: String, baseDirectory: URL) throws -> StylesConfig {
        let root: JSONValue
        switch JSONValue.parse(data) {
        case .success(let value): root = value
        case .failure(let error): throw StylesConfigError(file: file, problems: [error.description])
        }
        var checker = Checker(displayBase: (file as NSString).deletingLastPathComponent, baseDirectory: baseDirectory)
        let config = checker.check(root)
        if !checker.problems.isEmpty { throw StylesConfigError(file: file, problems: checker.problems) }
        return config
    }
}

/// Everything wrong with a styles config.
public struct StylesConfigError: Error, CustomStringConvertible, Equatable {
    /// The config file, as given.
    public let file: String
    /// One line per problem, each starting with its JSON path.
    public let problems: [String]

    /// All problems on one line.
    public var description: String {
        "\(file): " + problems.joined(separator: "; ")
    }
}

// MARK: - Checker

/// Walks the document, collecting every problem with its path.
struct Checker {
    let displayBase: String
    let baseDirectory: URL
    var problems: [String] = []

    mutating func report(_ path: String, _ message: String) {
        problems.append(path.isEmpty ? message : "\(path): \(message)")
    }

    mutating func check(_ root: JSONValue) -> StylesConfig {
        var result = StylesConfig(dataset: nil, styles: [])
        guard case .object(let top) = root else {
            report("(top level)", "expected an object with \"defaults\" and \"styles\", got \(root.shown)")
            return result
        }
        for key in top.keys.sorted() where key != "defaults" && key != "styles" {
            report("(top level)", "unknown key \"\(key)\"\(StyleKeys.suggestion(for: key, among: ["defaults", "styles"]))")
        }
        var defaults = JobConfig(name: "", styleSHA256: "")
        defaults.validationImages = StyleKeys.defaultValidationImages
        var defaultSweeps: [String: [JSONValue]] = [:]
        switch top["defaults"] {
        case nil, .null?:
            break
        case .object(let object)?:
            let (plain, sweeps) = Sweeps.split(object, path: "defaults", checker: &self)
            defaultSweeps = sweeps
            StyleKeys.apply(plain, path: "defaults", to: &defaults, allowed: StyleKeys.defaultsOnly, checker: &self)
            result.dataset = defaults.dataset
        case let other?:
            report("defaults", "expected an object, got \(other.shown)")
        }
        guard let stylesValue = top["styles"] else {
            report("styles", "missing: expected an array of {\"name\", \"image\", …}")
            return result
        }
        guard case .array(let entries) = stylesValue else {
            report("styles", "expected an array, got \(stylesValue.shown)")
            return result
        }
        if entries.isEmpty { report("styles", "empty: nothing to train") }
        var firstIndex: [String: Int] = [:]
        for (i, entry) in entries.enumerated() {
            let path = "styles[\(i)]"
            guard case .object(let object) = entry else {
                report(path, "expected an object with \"name\" and \"image\", got \(entry.shown)")
                continue
            }
            var config = defaults
            let name = checkName(object["name"], path: path)
            if let name {
                if let first = firstIndex[name] {
                    report("\(path).name", "duplicate name \"\(name)\" (also styles[\(first)])")
                } else {
                    firstIndex[name] = i
                }
            }
            let image = checkImage(object["image"], path: path)
            let (plain, ownSweeps) = Sweeps.split(object, path: path, checker: &self)
            StyleKeys.apply(plain, path: path, to: &config, allowed: StyleKeys.styleOnly, checker: &self)
            // A plain value in the style overrides a swept default; the style's own sweep replaces it.
            var sweeps = defaultSweeps.filter { plain[$0.key] == nil }
            sweeps.merge(ownSweeps) { _, own in own }
            guard let name, let image else { continue }
            config.name = name
            config.styleSHA256 = image.sha256
            if sweeps.isEmpty {
                for problem in config.problems() { report(path, problem) }
                result.styles.append(.init(name: name, image: image.url, imagePath: image.shown, imageSHA256: image.sha256,
                                           imageBytes: image.size, config: config))
                continue
            }
            let count = Sweeps.count(sweeps)
            guard count <= Sweeps.maxJobsPerStyle else {
                let sizes = sweeps.keys.sorted().map { "\($0) (\(sweeps[$0]!.count))" }.joined(separator: " × ")
                report(path, "the sweep makes \(count) jobs (\(sizes)), more than \(Sweeps.maxJobsPerStyle) for one style")
                continue
            }
            var reported = Set<String>()
            for (k, combination) in Sweeps.combinations(sweeps).enumerated() {
                var job = config
                job.name = "\(name)-\(k + 1)"
                job.group = name
                var params: [String: Double] = [:]
                for (key, value) in combination {
                    // Each value was checked on its own; what is left is a key that needs another
                    // (style_ratio without "style_weight": "auto").
                    if let problem = StyleKeys.set(key, value, in: &job), reported.insert(problem).inserted {
                        report("\(path).\(key)", problem)
                    }
                    params[key] = value.number
                }
                job.params = params
                if let problem = JobConfig.nameProblem(job.name) { report("\(path).name", "the sweep's job name \(job.name): \(problem)") }
                for problem in job.problems() where reported.insert(problem).inserted {
                    report("\(path) (\(job.name): \(JobConfig.paramsText(params)))", problem)
                }
                result.styles.append(.init(name: job.name, image: image.url, imagePath: image.shown, imageSHA256: image.sha256,
                                           imageBytes: image.size, config: job))
            }
        }
        if result.styles.count > Sweeps.maxJobsPerConfig {
            report("styles", "the config makes \(result.styles.count) jobs, more than \(Sweeps.maxJobsPerConfig)")
        }
        // A sweep's `wave-1` must not meet a style named `wave-1`.
        var jobNames: [String: String] = [:]
        for style in result.styles {
            let origin = style.config.group.map { "the sweep of \($0)" } ?? "a style"
            if let other = jobNames[style.name], style.config.group != nil || other != origin {  // two plain styles: reported above
                report("styles", "job name \"\(style.name)\" is made twice: by \(other) and by \(origin)")
            }
            jobNames[style.name] = jobNames[style.name] ?? origin
        }
        return result
    }

    mutating func checkName(_ value: JSONValue?, path: String) -> String? {
        guard let value else { report("\(path).name", "missing"); return nil }
        guard case .string(let name) = value else {
            report("\(path).name", "expected a string, got \(value.shown)")
            return nil
        }
        if let problem = JobConfig.nameProblem(name) {
            report("\(path).name", problem)
            return nil
        }
        return name
    }

    /// The image file, read, recognised by its magic bytes, decoded and hashed.
    mutating func checkImage(_ value: JSONValue?, path: String) -> (url: URL, shown: String, sha256: String, size: Int64)? {
        let key = "\(path).image"
        guard let value else { report(key, "missing"); return nil }
        guard case .string(let relative) = value, !relative.isEmpty else {
            report(key, "expected a file path, got \(value.shown)")
            return nil
        }
        let url = relative.hasPrefix("/") ? URL(fileURLWithPath: relative)
            : baseDirectory.appendingPathComponent(relative)
        let shown = relative.hasPrefix("/") || displayBase.isEmpty || displayBase == "."
            ? relative : (displayBase as NSString).appendingPathComponent(relative)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
            report(key, "file not found: \(shown)")
            return nil
        }
        if isDirectory.boolValue { report(key, "not a file: \(shown)"); return nil }
        let data: Data
        do { data = try Data(contentsOf: url) } catch {
            report(key, "cannot read \(shown): \((error as NSError).localizedDescription)")
            return nil
        }
        let jpeg: [UInt8] = [0xFF, 0xD8, 0xFF]
        let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
        guard data.starts(with: jpeg) || data.starts(with: png) else {
            report(key, "not a JPEG or PNG image: \(shown)")
            return nil
        }
        do {
            _ = try RGBImage(decoding: data, name: shown)
        } catch {
            report(key, error.description)
            return nil
        }
        return (url, shown, FileDigest.sha256(of: data), Int64(data.count))
    }
}
