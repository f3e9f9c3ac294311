import Foundation

/// Where the loss network's weights come from: `--vgg-weights FILE`, else the environment
/// variable `NST_VGG16_WEIGHTS`, else torchvision's `vgg16-397923af.pth` in the torch hub cache
/// (`TorchHub.checkpointsDirectory`, where `orchestrator vgg fetch` and torchvision put it), else
/// nothing unless `--random-vgg` opts into a seeded random VGG16.
public enum VGGSource: Equatable, Sendable {
    case file(String)
    case random(seed: UInt64)

    public static let environmentKey = "NST_VGG16_WEIGHTS"
    public static let randomSeed: UInt64 = 0

    /// What to do about missing weights, naming the torch hub file that was looked for.
    public static func howToObtain(lookedAt: String?) -> String {
        let looked = lookedAt.map { "none given, and no file at \($0). " } ?? "none given. "
        return "no VGG16 weights: " + looked + """
        Run `orchestrator vgg fetch` (downloads torchvision's vgg16-397923af.pth, 528 MB, \
        into the torch hub cache, where it is then found by default), or pass --vgg-weights FILE or set \
        \(environmentKey)=FILE, a PyTorch .pth or safetensors file with torchvision's names \
        features.0.weight … features.21.bias (other keys are ignored). torchvision's ImageNet VGG16 works \
        as it is: vgg16-397923af.pth, which torchvision also downloads to ~/.cache/torch/hub/checkpoints/ \
        (python -c "import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')") \
        or from \(TorchHub.vgg16URL); `orchestrator convert` turns it \
        into safetensors if you prefer. Or pass --random-vgg for a seeded random VGG16 \
        (tests and demos only: the pictures will not look stylised)
        """
    }

    public enum ResolveError: Error, CustomStringConvertible, Equatable {
        /// No weights given, and none at `lookedAt` (the torch hub file; nil when no home
        /// directory is known).
        case missing(lookedAt: String?)
        case both
        public var description: String {
            switch self {
            case .missing(let lookedAt): return VGGSource.howToObtain(lookedAt: lookedAt)
            case .both: return "--vgg-weights and --random-vgg exclude each other"
            }
        }
    }

    /// The torch hub file `resolve` falls back on, if a home or cache directory is known.
    public static func defaultFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        TorchHub.checkpointsDirectory(environment: environment)?.appendingPathComponent(TorchHub.vgg16FileName)
    }

    /// `--vgg-weights`, `NST_VGG16_WEIGHTS`, then the torch hub file if it exists, in that order.
    public static func resolve(path: String?, random: Bool,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> VGGSource {
        if random {
            if path != nil { throw ResolveError.both }
            return .random(seed: randomSeed)
        }
        if let path { return .file(path) }
        if let env = environment[environmentKey], !env.isEmpty { return .file(env) }
        let hub = defaultFile(environment: environment)
        if let hub, FileManager.default.fileExists(atPath: hub.path) { return .file(hub.path) }
        throw ResolveError.missing(lookedAt: hub?.path)
    }

    public func load() throws -> VGG16 {
        switch self {
        case .file(let path): return try VGG16(contentsOf: URL(fileURLWithPath: path))
        case .random(let seed): return VGG16(randomSeed: seed)
        }
    }

    public var description: String {
        switch self {
        case .file(let path): return path
        case .random(let seed): return "random VGG16 (seed \(seed)) — NOT ImageNet weights; losses and pictures are for testing only"
        }
    }
}
