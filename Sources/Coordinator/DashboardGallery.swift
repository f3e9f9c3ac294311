import CoordinatorAPI
import Foundation
import JobStore

// MARK: - Sweep galleries

extension DashboardPage {
    /// One trial of a sweep: its job and the validation point of its model (`TradeOff.modelPoint`), if any.
    struct Trial {
        var job: JobStatus
        var latest: ValidationPoint?

        /// The latest point when both its unweighted losses can go on log axes.
        var plotted: ValidationPoint? {
            latest.flatMap { TradeOff.isUsable(content: $0.content, style: $0.style) ? $0 : nil }
        }
    }

    /// The sweep groups among `jobs` (jobs with a `group`), in the order of their first job, each
    /// with its trials in job order.
    static func sweepGroups(_ jobs: [JobStatus], validation: [Int64: [ValidationPoint]]) -> [(group: String, trials: [Trial])] {
        var order: [String] = [], trials: [String: [Trial]] = [:]
        for j in jobs {
            guard let group = j.group else { continue }
            if trials[group] == nil { order.append(group) }
            trials[group, default: []].append(Trial(job: j, latest: TradeOff.modelPoint(validation[j.id] ?? [], earlyStopped: j.stopReason != nil)))
        }
        return order.map { ($0, trials[$0] ?? []) }
    }

    /// For each sweep group, every trial's latest preview side by side and the trade-off plot of
    /// their latest validation losses.
    static func galleries(_ jobs: [JobStatus], validation: [Int64: [ValidationPoint]]) -> String {
        var h = ""
        for (n, (group, trials)) in sweepGroups(jobs, validation: validation).enumerated() {
            h += "<section class=\"gallery\" id=\"gallery-\(n + 1)\" data-group=\"\(escape(group))\">"
            h += "<h2>Sweep <span class=\"name\">\(escape(group))</span> <small>\(trials.count) trials · latest previews"
            h += " · unweighted content against style loss on the held-out images</small></h2>\n<div class=\"gallery-body\">"
            h += "<div class=\"previews trials\">\n"
            for t in trials { h += trialFigure(t) }
            h += "</div>\n<figure class=\"tradeoff\">" + tradeOffChart(trials)
            let waiting = trials.filter { $0.plotted == nil }
            if !waiting.isEmpty {
                h += "<figcaption class=\"pending\">No validation yet: "
                h += waiting.map { t in
                    "<span class=\"name\">\(escape(t.job.name))</span>" + (t.latest == nil ? "" : " <small>(losses not plottable)</small>")
                }.joined(separator: ", ")
                h += "</figcaption>"
            }
            h += "</figure></div></section>\n"
        }
        return h
    }

    /// A trial's preview (or a placeholder) with its name, params, state and step.
    static func trialFigure(_ t: Trial) -> String {
        let j = t.job
        var h = "<figure class=\"preview trial\" data-job=\"\(j.id)\">"
        if let step = j.previewStep {
            h += "<img src=\"/v1/jobs/\(j.id)/preview?step=\(step)\" alt=\"preview of \(escape(j.name)) at step \(step)\">"
        } else {
            h += "<div class=\"placeholder\">no preview yet</div>"
        }
        h += "<figcaption><span class=\"name\">\(escape(j.name))</span>"
        h += " <span class=\"badge \(j.state.rawValue)\">\(j.state.rawValue)</span> <small>step \(j.step)</small>"
        if let params = j.params, !params.isEmpty {
            h += "<small class=\"params\">\(escape(JobConfig.paramsText(params)))</small>"
        }
        if let p = t.plotted {
            h += "<small class=\"val\">content \(short(p.content)) · style \(short(p.style)) at step \(p.step)</small>"
        } else {
            h += "<small class=\"val muted\">no validation yet</small>"
        }
        return h + "</figcaption></figure>\n"
    }

    /// Each trial's latest unweighted content loss (x) against style loss (y), log–log, labelled
    /// with its name; the Pareto front's points (`TradeOff`) are marked and joined by a line.
    static func tradeOffChart(_ trials: [Trial]) -> String {
        let w = 460.0, hgt = 300.0, left = 56.0, right = 16.0, top = 12.0, bottom = 40.0
        let shown = trials.compactMap { t in t.plotted.map { (job: t.job, point: $0) } }
        guard let cLo = shown.map(\.point.content).min(), let cHi = shown.map(\.point.content).max(),
              let sLo = shown.map(\.point.style).min(), let sHi = shown.map(\.point.style).max() else {
            return "<svg class=\"tradeoff\" viewBox=\"0 0 \(Int(w)) 60\" role=\"img\" aria-label=\"no validation points yet\">"
                + "<rect x=\"\(left)\" y=\"4\" width=\"\(w - left - right)\" height=\"52\" class=\"plot\"/>"
                + "<text x=\"\((left + w - right) / 2)\" y=\"34\" text-anchor=\"middle\" class=\"muted\">no validation points yet</text></svg>"
        }
        /// The log10 range of [lo, hi] with a margin, at least half a decade either side of one value.
        func span(_ lo: Double, _ hi: Double) -> (Double, Double) {
            let mid = (log10(lo) + log10(hi)) / 2, half = max((log10(hi) - log10(lo)) / 2 + 0.08, 0.5)
            return (mid - half, mid + half)
        }
        let (x0, x1) = span(cLo, cHi), (y0, y1) = span(sLo, sHi)
        func x(_ v: Double) -> Double { left + (log10(v) - x0) / (x1 - x0) * (w - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (log10(v) - y0) / (y1 - y0)) * (hgt - top - bottom) }
        var svg = "<svg class=\"tradeoff\" viewBox=\"0 0 \(Int(w)) \(Int(hgt))\" role=\"img\" aria-label=\"content against style loss\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w - left - right)\" height=\"\(hgt - top - bottom)\" class=\"plot\"/>"
        let yTicks = logTicks(from: y0, to: y1), yExp = yTicks.contains { $0 >= 10_000 || $0 < 0.01 }
        for v in yTicks {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", left, w - right, y(v), y(v))
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"axis\">%@</text>",
                          left - 5, y(v) + 3.5, axisLabel(v, exponent: yExp))
        }
        let xTicks = logTicks(from: x0, to: x1), xExp = xTicks.contains { $0 >= 10_000 || $0 < 0.01 }
        for v in xTicks {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x(v), x(v), top, hgt - bottom)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"axis\">%@</text>",
                          x(v), hgt - bottom + 14, axisLabel(v, exponent: xExp))
        }
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" class=\"axis title\">content loss (unweighted) →</text>",
                      (left + w - right) / 2, hgt - 6)
        svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" class=\"axis title\">style ↑</text>", 4.0, top + 8)
        let losses = shown.map { (content: $0.point.content, style: $0.point.style) }
        let front = TradeOff.paretoFront(losses)
        let path = TradeOff.frontPath(losses).map { String(format: "%.1f,%.1f", x(losses[$0].content), y(losses[$0].style)) }
        svg += "<polyline class=\"front\" points=\"\(path.joined(separator: " "))\"><title>Pareto front</title></polyline>"
        var placed: [LabelBox] = []
        for (k, s) in shown.enumerated() {
            let cx = x(s.point.content), cy = y(s.point.style)
            let title = String(format: "%@: content %.4g, style %.4g (unweighted) at step %d%@", escape(s.job.name),
                               s.point.content, s.point.style, s.point.step, front[k] ? ", on the Pareto front" : "")
            svg += String(format: "<circle class=\"trial%@\" cx=\"%.1f\" cy=\"%.1f\" r=\"%@\" data-job=\"%lld\"><title>%@</title></circle>",
                          front[k] ? " front" : "", cx, cy, front[k] ? "4.5" : "3.5", s.job.id, title)
            let label = LabelBox.place(name: s.job.name, x: cx, y: cy, within: (left, w - right), avoiding: &placed)
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%@\" class=\"point-label%@\">%@</text>",
                          label.textX, label.textY, label.end ? "end" : "start", front[k] ? " front" : "", escape(s.job.name))
        }
        return svg + "</svg>"
    }

    /// Where a point's label goes: right of the point and above it, else below it, else left
    /// (above, then below), whichever first overlaps no label placed before (10 px text, about
    /// 6 px a character); the first try when all overlap. Labels left of a point near the right
    /// edge start on the left.
    struct LabelBox {
        var x0, y0, x1, y1: Double
        var textX, textY: Double
        var end: Bool

        func overlaps(_ o: LabelBox) -> Bool { x0 < o.x1 && o.x0 < x1 && y0 < o.y1 && o.y0 < y1 }

        static func place(name: String, x: Double, y: Double, within: (Double, Double), avoiding placed: inout [LabelBox]) -> LabelBox {
            let width = 6.0 * Double(min(name.count, 40)), height = 11.0
            let rightFirst = x + 7 + width <= within.1 || x - 7 - width < within.0
            let sides = rightFirst ? [false, true] : [true, false]
            var tries: [LabelBox] = []
            for end in sides {
                for baseline in [y - 5, y + 13] {
                    let x0 = end ? x - 7 - width : x + 7
                    tries.append(LabelBox(x0: x0, y0: baseline - 9, x1: x0 + width, y1: baseline - 9 + height,
                                          textX: end ? x - 7 : x + 7, textY: baseline, end: end))
                }
            }
            let chosen = tries.first { t in !placed.contains { $0.overlaps(t) } } ?? tries[0]
            placed.append(chosen)
            return chosen
        }
    }

    // MARK: - Style

    static let galleryCSS = """
    .gallery-body{display:grid;grid-template-columns:minmax(0,1fr) minmax(320px,460px);gap:10px;align-items:start}
    .previews.trials figcaption small.params,.previews.trials figcaption small.val{flex-basis:100%}
    figure.tradeoff svg{display:block;width:100%;height:auto} svg.tradeoff .plot{fill:#13161b} svg.tradeoff .grid{stroke:#262b34;stroke-width:1}
    svg.tradeoff .axis,svg.tradeoff .muted{fill:var(--muted);font-size:10px;font-variant-numeric:tabular-nums}
    svg.tradeoff circle.trial{fill:var(--content)} svg.tradeoff circle.trial.front{fill:var(--style);stroke:#fff;stroke-width:1}
    svg.tradeoff polyline.front{fill:none;stroke:var(--style);stroke-width:1.5;stroke-dasharray:5 3}
    svg.tradeoff .point-label{fill:var(--text);font-size:10px} svg.tradeoff .point-label.front{fill:var(--style)}
    figcaption.pending{color:var(--muted)}
    @media (max-width:900px){.gallery-body{grid-template-columns:1fr}}
    """
}
