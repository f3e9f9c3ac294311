import ArgumentParser
import CoordinatorAPI
import Foundation
import NSTModel

/// What `stylize` and `stylize-video` share: how the output is mixed, tiling, memory, threads.
struct StylizeOptions: ParsableArguments {
    @Option(help: "Blend the stylised output with the content in pixel space: 0 gives the content, 1 the plain output.")
    var strength: Double = 1

    @Flag(name: .customLong("preserve-color"),
          help: "Keep the content's colours: the output's luminance on the content's chroma (YCbCr).")
    var preserveColor = false

    @Option(help: ArgumentHelp(
        "Stylise in overlapping tiles of at most N×N pixels (\(StylizeSettings.tileSizes.lowerBound)…\(StylizeSettings.tileSizes.upperBound)), in memory that does not grow with the image.",
        discussion: "The tiles share the whole image's instance-norm statistics, so the result is the whole-image one. Without --tile, an image whose whole-image run would need more than --max-memory is tiled automatically."))
    var tile: Int?

    @Option(name: .customLong("max-memory"),
            help: "Memory budget for one image (e.g. 4G, 512M); larger images are tiled. Default: a quarter of RAM.")
    var maxMemory: ByteCount?

    @Option(help: "Threads (default: every core).") var threads: Int?

    @Flag(name: .customLong("print-peak-memory"), help: .hidden) var printPeakMemory = false

    func validate() throws {
        if !(0...1).contains(strength) { throw ValidationError("--strength must be between 0 and 1") }
        if let tile, !StylizeSettings.tileSizes.contains(tile) {
            throw ValidationError("--tile must be between \(StylizeSettings.tileSizes.lowerBound) and \(StylizeSettings.tileSizes.upperBound)")
        }
        if let maxMemory, maxMemory.bytes < Int64(StylizeSettings.minimumMemoryBytes) {
            throw ValidationError("--max-memory must be at least \(StylizeSettings.minimumMemoryBytes >> 20)M")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
    }

    var settings: StylizeSettings {
        StylizeSettings(strength: strength, preserveColor: preserveColor, tiling: tile.map { .tiles($0) } ?? .automatic,
                        maxMemoryBytes: maxMemory.map { Int(clamping: $0.bytes) } ?? StylizeSettings.defaultMaxMemoryBytes)
    }

    /// OpenBLAS's short spin and the thread count: first thing in `run()`.
    func startThreads() {
        Threads.reexecWithShortBLASSpin()
        Threads.configure(threads ?? Threads.available)
    }

    /// With the hidden `--print-peak-memory`: the process's peak resident memory on standard
    /// output (the tests compare it across image sizes).
    func reportPeakMemory() {
        guard printPeakMemory, let bytes = PeakMemory.residentBytes() else { return }
        print("peak_rss_bytes \(bytes)")
    }
}

/// One or several models: `--model A --model B` and/or `--models DIR`.
struct ModelOptions: ParsableArguments {
    @Option(name: .customLong("model"),
            help: "Trained model: safetensors, or a PyTorch .pth state dict (PyTorch names). Repeat for several.")
    var models: [String] = []

    @Option(name: .customLong("models"), help: "A folder of models (*.safetensors, *.pth, *.pt): one output per model.")
    var modelDir: String?

    func validate() throws {
        if models.isEmpty && modelDir == nil { throw ValidationError("give --model FILE (repeatable) or --models DIR") }
    }

    /// The models with their names (file names without extension), in the order given, a
    /// folder's sorted by name. Two models of one name are an error.
    func resolve() throws -> [(name: String, url: URL)] {
        var urls = models.map { URL(fileURLWithPath: $0) }
        if let modelDir {
            let dir = URL(fileURLWithPath: modelDir)
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: dir.path) else {
                throw CLIError("\(modelDir): not a readable folder")
            }
            let found = names.filter { ["safetensors", "pth", "pt"].contains(($0 as NSString).pathExtension.lowercased()) }.sorted()
            guard !found.isEmpty else { throw CLIError("\(modelDir): no *.safetensors, *.pth or *.pt models") }
            urls += found.map { dir.appendingPathComponent($0) }
        }
        var seen = Set<String>()
        return try urls.map { url in
            let name = url.deletingPathExtension().lastPathComponent
            guard seen.insert(name).inserted else { throw CLIError("two models are named \(name); their outputs would collide") }
            return (name, url)
        }
    }
}

enum PeakMemory {
    /// VmHWM of /proc/self/status in bytes (Linux), nil elsewhere.
    static func residentBytes() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
            let kib = line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first.flatMap { Int($0) }
            return kib.map { $0 * 1024 }
        }
        return nil
    }
}
