import Foundation
import JobStore

/// The web dashboard: one self-contained HTML page (inline CSS and SVG, no scripts, no assets from
/// elsewhere) that reloads itself. Read-only; rendered from the same data as `GET /v1/jobs`.
public enum DashboardPage {
    public struct Input {
        public var jobs: [JobStatus]
        public var losses: [Int64: [LossPoint]]
        /// Jobs that have a preview image (served at /v1/jobs/{id}/preview).
        public var previews: Set<Int64>
        public var refreshSeconds: Int
        public var now: Date
        public init(jobs: [JobStatus], losses: [Int64: [LossPoint]], previews: Set<Int64>, refreshSeconds: Int = 5, now: Date) {
            self.jobs = jobs; self.losses = losses; self.previews = previews
            self.refreshSeconds = refreshSeconds; self.now = now
        }
    }

    public static func render(_ input: Input) -> String {
        var counts: [JobState: Int] = [:]
        for j in input.jobs { counts[j.state, default: 0] += 1 }
        let rate = input.jobs.compactMap(\.imagesPerS).reduce(0, +)
        var html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8">
        <meta http-equiv="refresh" content="\(input.refreshSeconds)">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>nst-orchestrator — \(input.jobs.count) jobs</title>
        <style>\(css)</style></head><body>
        <header><h1>nst-orchestrator</h1><p class="totals">
        """
        for s in JobState.allCases { html += "<span class=\"badge \(s.rawValue)\">\(s.rawValue) \(counts[s] ?? 0)</span> " }
        html += String(format: "<span class=\"rate\">%.2f images/s in all</span>", rate)
        html += "<span class=\"time\">updated \(timeString(input.now))</span></p></header>\n"
        html += jobsTable(input.jobs)
        html += previewGrid(input)
        html += "<section><h2>Loss curves</h2><div class=\"charts\">\n"
        for j in input.jobs {
            html += "<figure class=\"chart\" id=\"chart-\(j.id)\"><figcaption>\(escape(j.name))</figcaption>"
            html += lossChart(input.losses[j.id] ?? [])
            html += "</figure>\n"
        }
        html += "</div></section>\n<footer>Refreshes every \(input.refreshSeconds) s · API: /v1/jobs · metrics: /metrics</footer></body></html>\n"
        return html
    }

    // MARK: - Parts

    static func jobsTable(_ jobs: [JobStatus]) -> String {
        var h = "<section><h2>Jobs</h2><table class=\"jobs\"><thead><tr><th>#</th><th>style</th><th>state</th><th>worker</th>"
        h += "<th>progress</th><th>images/s</th><th>ETA</th><th>content</th><th>style loss</th><th>attempt</th></tr></thead><tbody>\n"
        for j in jobs {
            let frac = progressFraction(j)
            h += "<tr class=\"job\" data-state=\"\(j.state.rawValue)\"><td>\(j.id)</td><td>\(escape(j.name))</td>"
            h += "<td><span class=\"badge \(j.state.rawValue)\">\(j.state.rawValue)</span></td>"
            h += "<td>\(escape(j.worker ?? "—"))</td>"
            h += "<td><svg class=\"bar\" width=\"160\" height=\"14\" role=\"img\" aria-label=\"\(Int(frac * 100))%\">"
            h += "<rect width=\"160\" height=\"14\" rx=\"3\" class=\"track\"/>"
            h += String(format: "<rect width=\"%.1f\" height=\"14\" rx=\"3\" class=\"fill %@\"/>", 160 * frac, j.state.rawValue)
            h += "</svg> \(Int((frac * 100).rounded()))% <small>\(j.step)/\(j.stepsTotal.map(String.init) ?? "?")</small>"
            if j.resumedFromStep > 0 { h += " <small>(resumed at \(j.resumedFromStep))</small>" }
            h += "</td><td>\(j.imagesPerS.map { String(format: "%.2f", $0) } ?? "—")</td>"
            h += "<td>\(j.etaS.map(duration) ?? "—")</td>"
            h += "<td>\(j.content.map(short) ?? "—")</td><td>\(j.style.map(short) ?? "—")</td>"
            h += "<td>\(j.attempt)/\(j.maxAttempts)</td></tr>\n"
            if let reason = j.failureReason, j.state == .failed {
                h += "<tr class=\"reason\"><td></td><td colspan=\"9\">\(escape(reason))</td></tr>\n"
            }
        }
        return h + "</tbody></table></section>\n"
    }

    static func previewGrid(_ input: Input) -> String {
        let shown = input.jobs.filter { input.previews.contains($0.id) }
        guard !shown.isEmpty else { return "<section><h2>Previews</h2><p class=\"empty\">No previews yet: workers upload one with each checkpoint.</p></section>\n" }
        var h = "<section><h2>Previews</h2><div class=\"grid\">\n"
        for j in shown {
            h += "<figure><img src=\"/v1/jobs/\(j.id)/preview?step=\(j.step)\" alt=\"preview of \(escape(j.name))\" width=\"192\" height=\"192\">"
            h += "<figcaption>\(escape(j.name)) · step \(j.step)</figcaption></figure>\n"
        }
        return h + "</div></section>\n"
    }

    /// Content, style and total loss against step, log-scaled (the terms differ by orders of magnitude).
    static func lossChart(_ points: [LossPoint]) -> String {
        let w = 360.0, hgt = 200.0, left = 52.0, right = 8.0, top = 8.0, bottom = 24.0
        let series: [(String, KeyPath<LossPoint, Double>)] = [("total", \.total), ("content", \.content), ("style", \.style)]
        let values = points.flatMap { p in series.map { p[keyPath: $0.1] } }.filter { $0 > 0 && $0.isFinite }
        var svg = "<svg class=\"loss\" viewBox=\"0 0 \(Int(w)) \(Int(hgt))\" width=\"\(Int(w))\" height=\"\(Int(hgt))\" role=\"img\" aria-label=\"loss curve\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w - left - right)\" height=\"\(hgt - top - bottom)\" class=\"plot\"/>"
        guard let lo = values.min(), let hi = values.max(), let last = points.last, let first = points.first else {
            return svg + "<text x=\"\(w / 2)\" y=\"\(hgt / 2)\" text-anchor=\"middle\" class=\"muted\">no losses yet</text></svg>"
        }
        let y0 = log10(lo), y1 = max(log10(hi), y0 + 1e-9)
        let s0 = Double(first.step), s1 = max(Double(last.step), s0 + 1)
        func x(_ step: Int) -> Double { left + (Double(step) - s0) / (s1 - s0) * (w - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (log10(v) - y0) / (y1 - y0)) * (hgt - top - bottom) }
        for k in Int(floor(y0))...Int(ceil(y1)) where Double(k) >= y0 - 1e-9 && Double(k) <= y1 + 1e-9 {
            let yy = y(pow(10, Double(k)))
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", left, w - right, yy, yy)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"axis\">1e%d</text>", left - 4, yy + 4, k)
        }
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" class=\"axis\">%d</text>", left, hgt - 6, first.step)
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"axis\">step %d</text>", w - right, hgt - 6, last.step)
        for (name, key) in series {
            let pts = points.filter { $0[keyPath: key] > 0 && $0[keyPath: key].isFinite }
                .map { String(format: "%.1f,%.1f", x($0.step), y($0[keyPath: key])) }.joined(separator: " ")
            svg += "<polyline class=\"line \(name)\" points=\"\(pts)\"><title>\(name)</title></polyline>"
        }
        var lx = left + 8
        for (name, _) in series {
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" class=\"legend %@\">%@</text>", lx, top + 14, name, name)
            lx += 58
        }
        return svg + "</svg>"
    }

    // MARK: - Helpers

    static func progressFraction(_ j: JobStatus) -> Double {
        if j.state == .succeeded { return 1 }
        guard let total = j.stepsTotal, total > 0 else { return 0 }
        return min(1, max(0, Double(j.step) / Double(total)))
    }

    static func short(_ v: Double) -> String { String(format: "%.4g", v) }

    static func duration(_ s: Double) -> String {
        let t = Int(s.rounded())
        return t >= 3600 ? String(format: "%dh%02dm", t / 3600, t / 60 % 60) : String(format: "%dm%02ds", t / 60, t % 60)
    }

    static func timeString(_ d: Date) -> String {
        let f = DateFormatter()
        f.dateFormat = "yyyy-MM-dd HH:mm:ss"
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: d) + " UTC"
    }

    static func escape(_ s: String) -> String {
        var out = ""
        for ch in s {
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

    static let css = """
    body{font:14px/1.4 system-ui,sans-serif;margin:0;background:#16181d;color:#e6e6e6}
    header{padding:12px 20px;background:#1f2229;border-bottom:1px solid #2c3038}
    h1{font-size:18px;margin:0 0 6px} h2{font-size:15px;margin:18px 20px 8px}
    .totals span{margin-right:10px} .rate,.time{color:#9aa3b2}
    table.jobs{border-collapse:collapse;margin:0 20px;width:calc(100% - 40px)}
    table.jobs th,table.jobs td{padding:5px 8px;border-bottom:1px solid #2c3038;text-align:left;white-space:nowrap}
    .badge{padding:1px 7px;border-radius:9px;font-size:12px;background:#3a3f4b}
    .badge.queued{background:#4a4f5c}.badge.running{background:#1f6feb}.badge.succeeded{background:#238636}
    .badge.failed{background:#b62324}.badge.cancelled{background:#6e5b1f}
    svg.bar .track{fill:#2c3038} svg.bar .fill{fill:#1f6feb} svg.bar .fill.succeeded{fill:#238636} svg.bar .fill.failed{fill:#b62324}
    tr.reason td{color:#ff9492;font-size:12px}
    .grid,.charts{display:flex;flex-wrap:wrap;gap:14px;margin:0 20px}
    figure{margin:0;background:#1f2229;padding:8px;border-radius:6px} figcaption{font-size:12px;color:#9aa3b2;margin:4px 0}
    .grid img{display:block;image-rendering:auto;border-radius:3px}
    svg.loss .plot{fill:#16181d} svg.loss .grid{stroke:#2c3038} svg.loss .axis,.muted{fill:#9aa3b2;font-size:11px}
    svg.loss .line{fill:none;stroke-width:1.6} .line.total{stroke:#e6e6e6} .line.content{stroke:#58a6ff} .line.style{stroke:#f0883e}
    .legend{font-size:11px} .legend.total{fill:#e6e6e6} .legend.content{fill:#58a6ff} .legend.style{fill:#f0883e}
    footer{margin:24px 20px;color:#6e7681;font-size:12px} .empty{margin:0 20px;color:#9aa3b2}
    """
}
