import ArgumentParser
import CCPU
import Foundation
import NSTModel

@main
struct Orchestrator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orchestrator",
        abstract: "Train fast neural style transfer networks (Johnson et al.), one per style, on many machines.",
        subcommands: [Train.self, Stylize.self, StylizeVideo.self, Export.self, Convert.self, Bench.self, MakeDataset.self, MakeStyles.self,
                      Demo.self, Serve.self, Submit.self, Status.self, Cancel.self, Retry.self, Promote.self, Fetch.self, Gallery.self,
                      BenchCoordinator.self, Backup.self, GC.self, TLS.self, Token.self, VGGCommands.self, DatasetCommands.self, Datasets.self]
    )

    /// Every subcommand may run NSTModel code, compiled for AVX2 + FMA: check the CPU first.
    static func main() async {
        nst_require_supported_cpu()
        await main(nil)
    }
}

/// `--vgg-weights FILE` / `--random-vgg`, shared by train and the worker.
struct VGGOptions: ParsableArguments {
    @Option(name: .customLong("vgg-weights"), help: "VGG16 weights with torchvision's names: safetensors, or torchvision's own vgg16-397923af.pth (default: $NST_VGG16_WEIGHTS, else vgg16-397923af.pth in the torch hub cache, ~/.cache/torch/hub/checkpoints/, where `orchestrator vgg fetch` puts it).")
    var vggWeights: String?

    @Flag(name: .customLong("random-vgg"), help: "Use a seeded random VGG16 instead of real weights (tests and demos only).")
    var randomVGG = false

    func resolve() throws -> VGGSource {
        do { return try VGGSource.resolve(path: vggWeights, random: randomVGG) } catch { throw CLIError(error) }
    }
}

/// An error shown as one line on standard error with a non-zero exit code.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
    init(_ error: any Error) { description = String(describing: error) }
}

func printErr(_ s: String) { FileHandle.standardError.write((s + "\n").data(using: .utf8)!) }
