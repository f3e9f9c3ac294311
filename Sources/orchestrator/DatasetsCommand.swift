import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation

/// `orchestrator datasets`: what the coordinator serves (`serve --dataset NAME=DIR`).
struct Datasets: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the datasets the coordinator serves (the first is the default of jobs that name none).")

    @Flag(help: "Print the JSON array of GET /v1/datasets for scripts.") var json = false
    @OptionGroup var coordinator: CoordinatorOptions

    func run() async throws {
        try await coordinator.withClient { client in
            let datasets = try await client.datasets()
            if json {
                printOut(String(decoding: try APICoding.encoder(pretty: true).encode(datasets), as: UTF8.self))
                return
            }
            printOut(Self.table(datasets))
        }
    }

    static func table(_ datasets: [DatasetRef]) -> String {
        if datasets.isEmpty { return "the coordinator serves no datasets (workers train on their own --dataset folders)" }
        let rows = [["NAME", "MANIFEST", "FILES", "EXCLUDED", "SIZE", "SHARDS"]] + datasets.enumerated().map { i, d in
            [Sanitize.oneLine(d.name, limit: 64) + (i == 0 ? " (default)" : ""), String(d.sha256.prefix(12)), String(d.files),
             String(d.excluded), String(format: "%.1f MB", Double(d.bytes) / 1e6), String(d.shards)]
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}
