import ArgumentParser
import Coordinator
import CoordinatorAPI
import Foundation
import JobStore

struct Backup: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Copy the coordinator's job table (STATE/jobs.sqlite) into one consistent file, safely while it runs.",
        discussion: """
            Uses SQLite's backup API on a read-only connection: the copy holds every committed \
            transaction, including those still in jobs.sqlite-wal, which a plain cp would lose, and \
            the live database is not changed. The artifacts (STATE/artifacts/) are not in it: copy \
            that folder as it is (cp -a, rsync) after taking the backup. See README, "Backup and restore".
            """)

    @Argument(help: "The backup file to write (refused if it exists, unless --force).")
    var output: String
    @Option(name: .customLong("state-dir"), help: "The coordinator's state directory, as given to serve.")
    var stateDir = "./orchestrator-state"
    @Flag(help: "Replace OUTPUT if it exists.")
    var force = false

    func run() throws {
        let config = CoordinatorConfig(stateDir: URL(fileURLWithPath: stateDir))
        let summary: BackupSummary
        do {
            summary = try JobStore.backup(databaseAt: config.databasePath, to: output, replacing: force)
        } catch BackupError.destinationExists(let path) {
            throw CLIError("\(path) already exists; pass --force to replace it")
        } catch {
            throw CLIError(error)
        }
        let states = JobState.allCases.compactMap { state in
            summary.jobs[state].flatMap { $0 > 0 ? "\($0) \(state.rawValue)" : nil }
        }
        let jobs = "\(summary.jobCount) job\(summary.jobCount == 1 ? "" : "s")"
            + (states.isEmpty ? "" : " (\(states.joined(separator: ", ")))")
        printOut("""
            wrote \(output): \(formatBytes(summary.bytes)), \(jobs), \(summary.checkpoints) checkpoints, \
            \(summary.lossPoints) loss points
            to restore: copy \(config.artifactsDir.path)/ to NEWSTATE/artifacts/, copy this file to \
            NEWSTATE/jobs.sqlite, then run `orchestrator serve --state-dir NEWSTATE` (README: "Backup and restore")
            """)
    }
}

/// `1234567` → `1.2 MB` (decimal units, as `ls -h --si`).
private func formatBytes(_ bytes: Int64) -> String {
    if bytes < 1000 { return "\(bytes) bytes" }
    let units = ["kB", "MB", "GB", "TB"]
    var value = Double(bytes) / 1000, unit = 0
    while value >= 1000, unit < units.count - 1 { value /= 1000; unit += 1 }
    return String(format: "%.1f", value) + " \(units[unit]) (\(bytes) bytes)"
}
