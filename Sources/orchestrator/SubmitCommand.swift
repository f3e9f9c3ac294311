import APIClient
import ArgumentParser
import ConfigFile
import CoordinatorAPI
import Foundation

struct Submit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue one training job per style of a styles config (validated first; nothing is sent if it has problems).")

    @Argument(help: "The styles config (e.g. configs/styles.json).") var config: String
    @OptionGroup var coordinator: CoordinatorOptions
    @Flag(help: "Also submit styles whose job is already queued or running.") var force = false

    func run() async throws {
        let styles: StylesConfig
        do {
            styles = try StylesConfig.load(contentsOf: URL(fileURLWithPath: config))
        } catch let error as StylesConfigError {
            for problem in error.problems { printErr(problem) }
            let count = error.problems.count
            throw CLIError("\(config): \(count) problem\(count == 1 ? "" : "s"), nothing submitted")
        }
        try await coordinator.withClient { client in
            var seen = Set<String>()
            for style in styles.styles where seen.insert(style.imageSHA256).inserted {
                if try await client.hasArtifact(sha256: style.imageSHA256) { continue }
                try await client.uploadArtifact(file: style.image)
                printOut("uploaded \(style.imagePath) (\(style.imageBytes) bytes, sha256 \(style.imageSHA256.prefix(12)))")
            }
            let result = try await client.submit(styles.styles.map(\.config), force: force)
            let skipped = Set(result.skipped)
            var ids = result.created.makeIterator()
            for style in styles.styles where !skipped.contains(style.name) {
                if let id = ids.next() { printOut("created job \(id): \(style.name)") }
            }
            for name in result.skipped {
                printOut("skipped \(name): a job of that name is already queued or running (--force to submit anyway)")
            }
            printOut("\(result.created.count) job\(result.created.count == 1 ? "" : "s") created, \(result.skipped.count) skipped")
        }
    }
}
