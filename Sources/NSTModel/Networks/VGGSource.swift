import Foundation

/// Where the loss network's weights come from: `--vgg-weights FILE`, else the environment
/// variable `NST_VGG16_WEIGHTS`, else nothing unless `--random-vgg` opts into a seeded random VGG16.
public enum VGGSource: Equatable, Sendable {
    case file(String)
    case random(seed: UInt64)

    public static let environmentKey = "NST_VGG16_WEIGHTS"
    public static let randomSeed: UInt64 = 0

    public static let howToObtain = """
        no VGG16 weights: pass --vgg-weights FILE or set \(environmentKey)=FILE, a PyTorch .pth or safetensors \
        file with torchvision's names features.0.weight … features.21.bias (other keys are ignored). \
        torchvision's ImageNet VGG16 works as it is: vgg16-397923af.pth, which torchvision downloads to \
        ~/.cache/torch/hub/checkpoints/ (python -c "import torchvision; torchvision.models.vgg16(weights='IMAGENET1K_V1')") \
        or from https://download.pytorch.org/models/vgg16-397923af.pth; `orchestrator convert` turns it \
        into safetensors if you prefer. Or pass --random-vgg for a seeded random VGG16 \
        (tests and demos only: the pictures will not look stylised)
        """

    public enum ResolveError: Error, CustomStringConvertible {
        case missing
        case both
        public var description: String {
            switch self {
            case .missing: return VGGSource.howToObtain
            case .both: return "--vgg-weights and --random-vgg exclude each other"
            }
        }
    }

    public static func resolve(path: String?, random: Bool,
                               environment: [String: String] = ProcessInfo.processInfo.environment) throws -> VGGSource {
        if random {
            if path != nil { throw ResolveError.both }
            return .random(seed: randomSeed)
        }
        if let path { return .file(path) }
        if let env = environment[environmentKey], !env.isEmpty { return .file(env) }
        throw ResolveError.missing
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
