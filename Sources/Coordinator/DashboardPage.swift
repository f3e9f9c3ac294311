import CoordinatorAPI
import Foundation
import JobStore

/// The web dashboard: one self-contained HTML page (inline CSS and SVG, no scripts, no assets from
/// elsewhere) that reloads itself. Read-only; rendered from the same data as `GET /v1/jobs`.
public enum DashboardPage {
    /// What the page shows.
    public struct Input {
        /// Every job, as `GET /v1/jobs` lists them; `previewStep` says which have a preview
        /// (served at `/v1/jobs/{id}/preview`).
        public var jobs: [JobStatus]
        /// Each job's loss curve (the charts draw at most `maxChartPoints` of it).
        public var losses: [Int64: [LossPoint]]
        /// Each job's validation points (their weighted totals are drawn beside the training total;
        /// a sweep's gallery plots its trials' latest unweighted losses).
        public var validation: [Int64: [ValidationPoint]]
        public var refreshSeconds: Int
        public var now: Date
        /// Show the log-out button (the page was opened with a dashboard session).
        public var logout: Bool

        public init(jobs: [JobStatus], losses: [Int64: [LossPoint]], validation: [Int64: [ValidationPoint]] = [:],
                    refreshSeconds: Int = 5, now: Date, logout: Bool = false) {
            self.jobs = jobs; self.losses = losses; self.validation = validation; self.logout = logout
            self.refreshSeconds = refreshSeconds; self.now = now
        }
    }

    /// The most points drawn per chart line (first and last always among them).
    public static let maxChartPoints = 400

    /// The page's HTML.
    public static func render(_ input: Input) -> String {
        var counts: [JobState: Int] = [:]
        for j in input.jobs { counts[j.state, default: 0] += 1 }
        let rate = input.jobs.compactMap(\.imagesPerS).reduce(0, +)
        let active = JobState.allCases.filter { (counts[$0] ?? 0) > 0 }
            .map { "\(counts[$0] ?? 0) \($0.rawValue)" }.joined(separator: ", ")
        var html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta http-equiv="refresh" content="\(input.refreshSeconds)">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>nst-orchestrator — \(active.isEmpty ? "no jobs" : active)</title>
        <style>\(css)\n\(galleryCSS)</style></head><body>
        <header><div class="brand"><h1>nst-orchestrator</h1><span>fast neural style transfer · \(input.jobs.count) jobs</span></div>
        <div class="totals">
        """
        for s in JobState.allCases {
            html += "<span class=\"badge \(s.rawValue)\">\(s.rawValue) <b>\(counts[s] ?? 0)</b></span>"
        }
        html += "</div><div class=\"summary\">"
        html += overallBar(input.jobs)
        html += String(format: "<span><b>%.2f</b> images/s</span>", rate)
        html += "<span class=\"muted\">updated \(timeString(input.now)) · refreshes every \(input.refreshSeconds) s</span>"
        html += "<a class=\"try\" href=\"/try\">Try a photo</a>"
        if input.logout {
            html += "<form class=\"logout\" method=\"post\" action=\"/logout\"><button type=\"submit\">Log out</button></form>"
        }
        html += "</div></header>\n<main>\n"
        html += jobsTable(input.jobs)
        html += previewGrid(input.jobs)
        html += galleries(input.jobs, validation: input.validation)
        html += "<section><h2>Loss curves <small>log scale · total, content and style loss against step</small></h2>"
        html += "<div class=\"charts\">\n"
        for j in input.jobs {
            html += "<figure class=\"chart\" id=\"chart-\(j.id)\"><figcaption><span class=\"name\">\(escape(j.name))</span>"
            html += " <span class=\"badge \(j.state.rawValue)\">\(j.state.rawValue)</span>"
            html += legend(j) + "</figcaption>"
            html += lossChart(input.losses[j.id] ?? [], validation: input.validation[j.id] ?? [])
            html += "</figure>\n"
        }
        if input.jobs.isEmpty { html += "<p class=\"empty\">No jobs yet: submit some with <code>orchestrator submit</code>.</p>" }
        html += "</div></section>\n</main>\n"
        html += "<footer>Read-only view · JSON: <code>/v1/jobs</code> · Prometheus: <code>/metrics</code></footer></body></html>\n"
        return html
    }

    // MARK: - Parts

    static func overallBar(_ jobs: [JobStatus]) -> String {
        let planned = jobs.filter { $0.state != .cancelled }
        guard !planned.isEmpty else { return "" }
        let frac = planned.map(progressFraction).reduce(0, +) / Double(planned.count)
        return "<span class=\"overall\">" + bar(frac, state: "running", width: 220)
            + " <b>\(Int((frac * 100).rounded()))%</b> of all training</span>"
    }

    static func jobsTable(_ jobs: [JobStatus]) -> String {
        var h = "<section><h2>Jobs</h2><table class=\"jobs\"><thead><tr><th class=\"num\">#</th><th>job</th>"
        h += "<th>state</th><th>worker</th><th>progress</th><th class=\"num\">images/s</th><th class=\"num\">ETA</th>"
        h += "<th class=\"num\">content loss</th><th class=\"num\">style loss</th><th class=\"num\">total loss</th>"
        h += "<th>total trend</th><th class=\"num\">attempt</th></tr></thead><tbody>\n"
        for j in jobs {
            let frac = progressFraction(j)
            h += "<tr class=\"job\" data-state=\"\(j.state.rawValue)\"><td class=\"num muted\">\(j.id)</td>"
            h += "<td class=\"name\">\(escape(j.name))\(jobNotes(j))</td>"
            h += "<td><span class=\"badge \(j.state.rawValue)\">\(j.state.rawValue)</span></td>"
            h += "<td>\(escape(j.worker ?? "—"))</td>"
            h += "<td class=\"progress\">" + bar(frac, state: j.state.rawValue, width: 150)
            h += " <b>\(Int((frac * 100).rounded()))%</b> <small>\(j.step)/\(j.stepsTotal.map(String.init) ?? "?")</small>"
            if j.resumedFromStep > 0 { h += " <small>↻\(j.resumedFromStep)</small>" }
            h += "</td><td class=\"num\">\(j.imagesPerS.map(short) ?? "—")</td>"
            h += "<td class=\"num\">\(j.etaS.map(duration) ?? "—")</td>"
            h += "<td class=\"num\">\(j.content.map(short) ?? "—")</td><td class=\"num\">\(j.style.map(short) ?? "—")</td>"
            h += "<td class=\"num\"><b>\(j.total.map(short) ?? "—")</b></td>"
            h += "<td>\(sparkline(j.recentTotals))</td>"
            h += "<td class=\"num\">\(j.attempt)/\(j.maxAttempts)</td></tr>\n"
            if let reason = j.failureReason, j.state == .failed {
                h += "<tr class=\"reason\"><td></td><td colspan=\"11\">\(escape(reason))</td></tr>\n"
            }
            if let reason = j.stopReason, j.state == .succeeded {
                h += "<tr class=\"reason stopped\"><td></td><td colspan=\"11\">\(escape(reason))</td></tr>\n"
            }
        }
        if jobs.isEmpty { h += "<tr><td colspan=\"12\" class=\"empty\">No jobs.</td></tr>" }
        return h + "</tbody></table></section>\n"
    }

    /// Under a job's name: its dataset (`coco@3f2a1b`) and a sweep job's params, when it has them.
    static func jobNotes(_ j: JobStatus) -> String {
        var notes: [String] = []
        if let name = j.dataset { notes.append(name + (j.datasetSHA256.map { "@" + $0.prefix(6) } ?? "")) }
        if let params = j.params, !params.isEmpty {
            notes.append(JobConfig.paramsText(params))
        }
        notes.append(contentsOf: j.choices)
        return notes.isEmpty ? "" : "<br><small class=\"muted\">\(escape(notes.joined(separator: " · ")))</small>"
    }

    /// Every job's latest preview side by side (a placeholder for jobs without one yet).
    static func previewGrid(_ jobs: [JobStatus]) -> String {
        guard !jobs.isEmpty else { return "" }
        let shown = jobs.filter { $0.previewStep != nil }.count
        var h = "<section><h2>Latest previews <small>\(shown) of \(jobs.count) · the worker renders one picture (the first held-out photo, else a synthetic scene)"
        h += " through each new checkpoint</small></h2><div class=\"previews\">\n"
        for j in jobs {
            h += "<figure class=\"preview\">"
            if let step = j.previewStep {
                h += "<img src=\"/v1/jobs/\(j.id)/preview?step=\(step)\" alt=\"preview of \(escape(j.name)) at step \(step)\">"
                h += "<figcaption><span class=\"name\">\(escape(j.name))</span> <small>step \(step)</small></figcaption>"
            } else {
                h += "<div class=\"placeholder\">no preview yet</div>"
                h += "<figcaption><span class=\"name\">\(escape(j.name))</span></figcaption>"
            }
            h += "</figure>\n"
        }
        return h + "</div></section>\n"
    }

    /// The latest losses, coloured like the chart's lines.
    static func legend(_ j: JobStatus) -> String {
        guard let total = j.total, let content = j.content, let style = j.style else {
            return "<span class=\"legend muted\">no losses yet</span>"
        }
        return "<span class=\"legend\"><i class=\"total\">total \(short(total))</i><i class=\"content\">content \(short(content))</i>"
            + "<i class=\"style\">style \(short(style))</i></span>"
    }

    static func bar(_ frac: Double, state: String, width: Int) -> String {
        String(format: "<svg class=\"bar\" width=\"%d\" height=\"10\" role=\"img\" aria-label=\"%d%%\">"
               + "<rect width=\"%d\" height=\"10\" rx=\"5\" class=\"track\"/>"
               + "<rect width=\"%.1f\" height=\"10\" rx=\"5\" class=\"fill %@\"/></svg>",
               width, Int((frac * 100).rounded()), width, Double(width) * frac, state)
    }

    // MARK: - Helpers

    static func progressFraction(_ j: JobStatus) -> Double {
        if j.state == .succeeded { return 1 }
        guard let total = j.stepsTotal, total > 0 else { return 0 }
        return min(1, max(0, Double(j.step) / Double(total)))
    }

    /// Four significant digits; powers of ten as `1.23e5` outside 0.01…9999.
    static func short(_ v: Double) -> String {
        guard v.isFinite else { return "\(v)" }
        let a = abs(v)
        if a == 0 || (a >= 0.01 && a < 10_000) { return String(format: "%.4g", v) }
        let e = Int(floor(log10(a)))
        return String(format: "%.3ge%d", v / pow(10, Double(e)), e)
    }

    /// `1h02m` or `3m07s`; `—` for what is not a time a person would wait (negative, not
    /// finite, or beyond a year: a worker's `images_per_s: 1e-300` makes such an ETA).
    static func duration(_ s: Double) -> String {
        guard s.isFinite, s >= 0, s < 366 * 86_400 else { return "—" }
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t / 60 % 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }

    static func timeString(_ d: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: d) + " UTC"
    }

    /// `s` with `& < > " '` escaped, safe in text and in quoted attributes; control
    /// characters shown as `\u{1B}` and the text bounded (it may come from a worker).
    static func escape(_ s: String) -> String {
        var out = ""
        for ch in Sanitize.oneLine(s, limit: 4 * Sanitize.maxFreeText) {
            switch ch {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(ch)
            }
        }
        return out
    }
}
