import ArgumentParser
import Coordinator
import Foundation
import JobStore

// MARK: - gc

struct GC: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "gc",
        abstract: "Apply checkpoint retention and delete the files no job references; print what was freed.",
        discussion: """
            Keeps the latest --keep-checkpoints checkpoints of each queued or running job, the latest \
            of each failed or cancelled job (retry resumes from it) and none of a succeeded job (its \
            model stays). Then deletes every file of the artifact store that no job references and \
            that is more than an hour old (or is the file of a checkpoint just dropped), and uploads \
            abandoned in tmp/ for more than an hour. Safe while the coordinator runs; it does the \
            same every 10 minutes (serve --gc-interval).
            """)

    @Option(name: .customLong("state-dir"), help: "The coordinator's state directory.")
    var stateDir = "./orchestrator-state"
    @OptionGroup var retention: RetentionOptions
    @Flag(name: .customLong("dry-run"), help: "Change nothing; print what would be freed.")
    var dryRun = false

    func run() async throws {
        var config = CoordinatorConfig(stateDir: URL(fileURLWithPath: stateDir))
        config.storage.keepCheckpoints = retention.keepCheckpoints
        guard FileManager.default.fileExists(atPath: config.databasePath) else {
            throw CLIError("no coordinator state in \(stateDir): \(config.databasePath) does not exist")
        }
        let store: JobStore
        do { store = try JobStore(path: config.databasePath) } catch { throw CLIError(error) }
        defer { try? store.close() }
        let report: GarbageReport
        do { report = try await GarbageCollector(config: config, store: store).collect(dryRun: dryRun) } catch {
            throw CLIError("gc: \(error)")
        }
        printOut(Self.render(report))
        if !report.errors.isEmpty {
            for error in report.errors { printErr("gc: \(error)") }
            throw CLIError("gc: \(report.errors.count) file(s) could not be deleted")
        }
    }

    /// The report's line, then one line per kind of file.
    static func render(_ report: GarbageReport) -> String {
        var lines = [report.description]
        let rows: [(String, GarbageReport.Tally)] = [
            ("pruned checkpoints", report.prunedCheckpoints), ("unreferenced artifacts", report.unreferenced),
            ("abandoned uploads (tmp/)", report.temporary), ("kept: younger than the grace age", report.young),
        ]
        for (label, tally) in rows where tally.files > 0 {
            lines.append("  " + label.padding(toLength: 34, withPad: " ", startingAt: 0)
                         + String(tally.files).leftPadded(6) + (tally.files == 1 ? " file   " : " files  ")
                         + String(tally.bytes).leftPadded(14) + " bytes")
        }
        return lines.joined(separator: "\n")
    }
}

private extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: " ", count: max(0, width - count)) + self }
}
