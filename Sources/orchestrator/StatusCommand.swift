import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every job: state, worker, progress, speed, ETA, latest losses and a loss sparkline.")

    @OptionGroup var coordinator: CoordinatorOptions
    @Flag(help: "Redraw every 2 seconds until Ctrl-C.") var watch = false
    @Flag(help: "Print {\"jobs\": [...], \"totals\": {...}} for scripts.") var json = false

    func validate() throws {
        if watch && json { throw ValidationError("--watch and --json cannot be combined") }
    }

    func run() async throws {
        try await coordinator.withClient { client in
            if json {
                let data = try APICoding.encoder(pretty: true).encode(try await client.jobs())
                printOut(String(decoding: data, as: UTF8.self))
                return
            }
            guard watch else {
                printOut(StatusTable.render(try await client.jobs()))
                return
            }
            let tty = isatty(STDOUT_FILENO) != 0
            while !Task.isCancelled {
                var text: String
                do {
                    text = StatusTable.render(try await client.jobs())
                } catch {
                    text = "\(error)\n"
                }
                let stamp = DateFormatter.localizedString(from: Date(), dateStyle: .none, timeStyle: .medium)
                text = "orchestrator status — \(client.address) — \(stamp) (Ctrl-C to stop)\n\n" + text
                printOut(tty ? "\u{1B}[H\u{1B}[2J" + text : text)
                try await Task.sleep(for: .seconds(2))
            }
        }
    }
}

// MARK: - Table

/// The text of `orchestrator status`.
enum StatusTable {
    static func render(_ response: JobsResponse) -> String {
        let withParams = response.jobs.contains { $0.params != nil }
        var header = ["ID", "NAME", "DATA", "STATE", "WORKER", "PROGRESS", "IMG/S", "ETA", "CONTENT", "STYLE", "LOSS"]
        if withParams { header.insert("PARAMS", at: 2) }
        var rows: [[String]] = [header]
        // A sweep's jobs together, under a line naming the group, where its first job stands.
        var groupHeaders: [Int: String] = [:]
        for job in grouped(response.jobs) {
            if let group = job.group, !groupHeaders.values.contains(where: { $0.hasPrefix(Sanitize.oneLine(group, limit: 64) + " ") }) {
                let members = response.jobs.filter { $0.group == group }
                let keys = Set(members.flatMap { $0.params?.keys.map { $0 } ?? [] }).sorted()
                let done = members.filter { $0.state == .succeeded }.count
                groupHeaders[rows.count] = "\(Sanitize.oneLine(group, limit: 64)) (sweep of \(keys.joined(separator: ", ")): "
                    + "\(members.count) jobs, \(done) succeeded)"
            }
            let indent = job.group == nil ? "" : "  "
            let name: String = indent + Sanitize.oneLine(job.name, limit: 64)
            var row: [String] = [
                "\(job.id)", name, data(job), state(job),
                job.worker.map { Sanitize.oneLine($0, limit: 64) } ?? "-",
                progress(job),
                job.imagesPerS.map { $0 < 1e6 ? String(format: "%.1f", $0) : String(format: "%.3g", $0) } ?? "-",
                job.etaS.map(formatDuration) ?? "-",
                job.content.map { String(format: "%.4g", $0) } ?? "-",
                job.style.map { String(format: "%.4g", $0) } ?? "-",
                sparkline(job.recentTotals, width: 24),
            ]
            if withParams { row.insert(params(job.params), at: 2) }
            rows.append(row)
        }
        let rightAligned: Set<Int> = withParams ? [0, 7, 8, 9, 10] : [0, 6, 7, 8, 9]
        var out = ""
        for (index, line) in columns(rows, rightAligned: rightAligned).enumerated() {
            if let text = groupHeaders[index] { out += text + "\n" }
            out += line + "\n"
        }
        if response.jobs.isEmpty { out += "(no jobs)\n" }
        for job in response.jobs where job.state == .failed {
            out += "job \(job.id) (\(Sanitize.oneLine(job.name, limit: 64))) failed: "
                + "\(job.failureReason.map { Sanitize.oneLine($0) } ?? "no reason recorded")\n"
        }
        for job in response.jobs {
            for choice in job.choices { out += "job \(job.id) (\(Sanitize.oneLine(job.name, limit: 64))) \(Sanitize.oneLine(choice))\n" }
        }
        for job in response.jobs where job.state == .succeeded {
            if let reason = job.stopReason {
                out += "job \(job.id) (\(Sanitize.oneLine(job.name, limit: 64))) \(Sanitize.oneLine(reason))\n"
            }
        }
        let t = response.totals
        out += "\(response.jobs.count) jobs: \(t.queued) queued, \(t.running) running, \(t.succeeded) succeeded, "
            + "\(t.failed) failed, \(t.cancelled) cancelled · " + String(format: "%.1f img/s", t.imagesPerS) + "\n"
        return out
    }

    /// `rows` as lines of columns two spaces apart, each as wide as its widest cell (left
    /// aligned unless in `rightAligned`), without trailing spaces.
    static func columns(_ rows: [[String]], rightAligned: Set<Int> = []) -> [String] {
        var widths: [Int] = []
        for row in rows {
            for (i, cell) in row.enumerated() {
                if i == widths.count { widths.append(0) }
                widths[i] = max(widths[i], cell.count)
            }
        }
        return rows.map { row in
            var line = row.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return rightAligned.contains(i) ? pad + cell : cell + pad
            }.joined(separator: "  ")
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }
    }

    /// The jobs in id order, except that the jobs of a group follow its first job.
    static func grouped(_ jobs: [JobStatus]) -> [JobStatus] {
        var out: [JobStatus] = []
        var placed = Set<String>()
        for job in jobs {
            guard let group = job.group else { out.append(job); continue }
            guard placed.insert(group).inserted else { continue }
            out += jobs.filter { $0.group == group }
        }
        return out
    }

    /// A sweep job's params, short: `lr=0.001 style_weight=30000`.
    static func params(_ params: [String: Double]?) -> String {
        guard let params, !params.isEmpty else { return "-" }
        return Sanitize.oneLine(JobConfig.paramsText(params), limit: 200)
    }

    /// The dataset, short: `coco@3f2a1b` (name and manifest digest prefix), `-` for the
    /// workers' own folders.
    static func data(_ job: JobStatus) -> String {
        guard let name = job.dataset else { return "-" }
        let shown = name.count > 20 ? name.prefix(19) + "…" : Substring(name)
        return Sanitize.oneLine(String(shown), limit: 64) + (job.datasetSHA256.map { "@" + $0.prefix(6) } ?? "")
    }

    static func state(_ job: JobStatus) -> String {
        job.attempt > 1 && !job.state.isTerminal
            ? "\(job.state.rawValue) (attempt \(job.attempt)/\(job.maxAttempts))" : job.state.rawValue
    }

    /// `█████░░░░░  50% 500/1000`, or `step 500` while the total is unknown.
    static func progress(_ job: JobStatus) -> String {
        guard let total = job.stepsTotal, total > 0 else {
            return job.state == .succeeded ? bar(1) + " 100%" : "step \(job.step)"
        }
        let frac = min(1, max(0, Double(job.step) / Double(total)))
        return bar(frac) + String(format: " %3.0f%% ", frac * 100) + "\(job.step)/\(total)"
    }

    static func bar(_ frac: Double, width: Int = 16) -> String {
        let filled = Int(clamping: (min(1, max(0, frac)) * Double(width)).rounded(.down))
        return String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
    }

    /// `▇▆▅▄▃▂▁` of `values` resampled to at most `width` characters, scaled between their
    /// minimum and maximum.
    static func sparkline(_ values: [Double], width: Int) -> String {
        let finite = values.filter(\.isFinite)
        guard !finite.isEmpty else { return "" }
        var sampled = finite.count <= width ? finite
            : (0..<width).map { finite[$0 * (finite.count - 1) / (width - 1)] }
        // Losses fall by orders of magnitude: on a log scale the later progress stays visible.
        if sampled.allSatisfy({ $0 > 0 }) { sampled = sampled.map(log10) }
        let levels = Array("▁▂▃▄▅▆▇█")
        let lo = sampled.min()!, hi = sampled.max()!
        guard hi > lo else { return String(repeating: "▄", count: sampled.count) }
        return String(sampled.map { levels[min(7, max(0, Int(clamping: ($0 - lo) / (hi - lo) * 7.999)))] })
    }
}
