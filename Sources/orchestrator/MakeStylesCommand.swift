import ArgumentParser
import Foundation
import NSTModel

/// `orchestrator make-styles`: writes the project's eight procedural style images.
struct MakeStyles: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-styles",
        abstract: "Write the eight procedural style images (\(SyntheticStyles.names.joined(separator: ", "))) as <name>.png.")

    @Option(help: "Output folder (created if needed).") var out = "configs/styles"
    @Option(help: "Side of the square images in pixels.") var size = 256

    func validate() throws {
        guard size >= 8 else { throw ValidationError("--size must be at least 8, got \(size)") }
    }

    func run() throws {
        do {
            let files = try SyntheticStyles.writeAll(to: URL(fileURLWithPath: out), size: size)
            printErr("wrote \(files.count) styles of \(size)×\(size) to \(out)")
        } catch { throw CLIError(error) }
    }
}
