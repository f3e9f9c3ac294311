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
    @Flag(name: .customLong("dry-run"), help: "List the jobs the config would create (sweeps expanded) and stop: nothing is uploaded, no coordinator is contacted.")
    var dryRun = false
    @Flag(help: "With --dry-run: print the jobs as JSON.") var json = false

    func validate() throws {
        if json && !dryRun { throw ValidationError("--json goes with --dry-run") }
    }

    func run() async throws {
        let styles: StylesConfig
        do {
            styles = try StylesConfig.load(contentsOf: URL(fileURLWithPath: config))
        } catch let error as StylesConfigError {
            for problem in error.problems { printErr(problem) }
            let count = error.problems.count
            throw CLIError("\(config): \(count) problem\(count == 1 ? "" : "s"), nothing submitted")
        }
        if dryRun {
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
                printOut(String(decoding: try encoder.encode(styles.styles.map(\.config)), as: UTF8.self))
            } else {
                printOut(String(Self.plan(styles).dropLast()))
            }
            return
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

    /// The `--dry-run` table: one row per job, sweeps' params shown.
    static func plan(_ styles: StylesConfig) -> String {
        func number(_ x: Double) -> String { x == x.rounded() && abs(x) < 1e5 ? String(Int64(x)) : String(format: "%g", x) }
        var rows = [["NAME", "GROUP", "PARAMS", "IMAGE", "SIZE", "BATCH", "STEPS", "LR", "CONTENT_W", "STYLE_W", "VALIDATION", "INIT"]]
        for style in styles.styles {
            let c = style.config
            rows.append([c.name, c.group ?? "-", StatusTable.params(c.params), style.imagePath,
                         "\(c.imageSize)", "\(c.batchSize)", c.steps.map(String.init) ?? "\(c.epochs) epoch(s)",
                         number(c.lr), number(c.contentWeight), c.styleRatio.map { "auto (ratio \(number($0)))" } ?? number(c.styleWeight),
                         c.validationImages == 0 ? "off" : "\(c.validationImages)" + (c.earlyStop.map { ", stop after \($0.patience)" } ?? ""),
                         c.initFrom ?? "-"])
        }
        var out = StatusTable.columns(rows).map { $0 + "\n" }.joined()
        let groups = Set(styles.styles.compactMap(\.config.group)).count
        out += "\(styles.styles.count) job\(styles.styles.count == 1 ? "" : "s")" + (groups > 0 ? " (\(groups) sweep\(groups == 1 ? "" : "s"))" : "")
            + " would be created; nothing was sent\n"
        return out
    }
}
