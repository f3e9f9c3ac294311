import CoordinatorAPI
import Foundation
import JobStore

// MARK: - Charts

extension DashboardPage {
    /// Content, style and total loss against step, log-scaled (the terms differ by orders of
    /// magnitude), each line drawn through at most `maxChartPoints` points; with validation
    /// points, their weighted total as a dashed line with a marker per point.
    static func lossChart(_ all: [LossPoint], validation allValidation: [ValidationPoint] = []) -> String {
        let w = 440.0, hgt = 210.0, left = 50.0, right = 10.0, top = 10.0, bottom = 26.0
        let points = downsample(all, to: maxChartPoints)
        let validation = allValidation.count <= maxChartPoints ? allValidation
            : (0..<maxChartPoints).map { allValidation[$0 * (allValidation.count - 1) / (maxChartPoints - 1)] }
        let series: [(String, KeyPath<LossPoint, Double>)] = [("content", \.content), ("style", \.style), ("total", \.total)]
        let values = (points.flatMap { p in series.map { p[keyPath: $0.1] } } + validation.map(\.total))
            .filter { $0 > 0 && $0.isFinite }
        let steps = points.map(\.step) + validation.map(\.step)
        guard let lo = values.min(), let hi = values.max(), let last = steps.max(), let first = steps.min() else {
            // A short empty frame: queued jobs take little room.
            return "<svg class=\"loss\" viewBox=\"0 0 \(Int(w)) 60\" role=\"img\" aria-label=\"no losses yet\">"
                + "<rect x=\"\(left)\" y=\"4\" width=\"\(w - left - right)\" height=\"52\" class=\"plot\"/>"
                + "<text x=\"\((left + w - right) / 2)\" y=\"34\" text-anchor=\"middle\" class=\"muted\">no losses yet</text></svg>"
        }
        var svg = "<svg class=\"loss\" viewBox=\"0 0 \(Int(w)) \(Int(hgt))\" role=\"img\" aria-label=\"loss curve\">"
        svg += "<rect x=\"\(left)\" y=\"\(top)\" width=\"\(w - left - right)\" height=\"\(hgt - top - bottom)\" class=\"plot\"/>"
        // A little margin keeps flat curves off the frame.
        let y0 = log10(lo) - 0.05, y1 = max(log10(hi) + 0.05, log10(lo) + 0.3)
        let s0 = Double(first), s1 = max(Double(last), s0 + 1, s0.nextUp)
        func x(_ step: Double) -> Double { left + (step - s0) / (s1 - s0) * (w - left - right) }
        func y(_ v: Double) -> Double { top + (1 - (log10(v) - y0) / (y1 - y0)) * (hgt - top - bottom) }
        let ticks = logTicks(from: y0, to: y1)
        let exponents = ticks.contains { $0 >= 10_000 || $0 < 0.01 }
        for v in ticks {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", left, w - right, y(v), y(v))
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" class=\"axis\">%@</text>",
                          left - 5, y(v) + 3.5, axisLabel(v, exponent: exponents))
        }
        for s in linearTicks(from: s0, to: s1) {
            svg += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" class=\"grid\"/>", x(s), x(s), top, hgt - bottom)
            // Labels near the frame's ends are aligned inwards so that none is cut off.
            let anchor = x(s) > w - right - 16 ? "end" : (x(s) < left + 16 ? "start" : "middle")
            svg += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"%@\" class=\"axis\">%d</text>",
                          x(s), hgt - bottom + 14, anchor, Int(clamping: s))
        }
        for (name, key) in series {
            let pts = points.filter { $0[keyPath: key] > 0 && $0[keyPath: key].isFinite }
                .map { String(format: "%.1f,%.1f", x(Double($0.step)), y($0[keyPath: key])) }.joined(separator: " ")
            svg += "<polyline class=\"line \(name)\" points=\"\(pts)\"><title>\(name) loss</title></polyline>"
        }
        let held = validation.filter { $0.total > 0 && $0.total.isFinite }
        if !held.isEmpty {
            let pts = held.map { String(format: "%.1f,%.1f", x(Double($0.step)), y($0.total)) }
            svg += "<polyline class=\"line validation\" points=\"\(pts.joined(separator: " "))\"><title>validation total</title></polyline>"
            for (p, xy) in zip(held, pts) {
                let c = xy.split(separator: ",")
                svg += "<circle class=\"validation\" cx=\"\(c[0])\" cy=\"\(c[1])\" r=\"2.6\"><title>"
                    + String(format: "validation at step %d: %.4g (content %.4g, style %.4g unweighted)", p.step, p.total, p.content, p.style)
                    + "</title></circle>"
            }
        }
        return svg + "</svg>"
    }

    /// A small log-scaled line of a job's sampled total losses, for the jobs table.
    static func sparkline(_ totals: [Double]) -> String {
        let values = totals.filter { $0 > 0 && $0.isFinite }
        guard values.count >= 2, let lo = values.min().map(log10), let hi = values.max().map(log10) else {
            return "<span class=\"muted\">—</span>"
        }
        let w = 90.0, h = 20.0, span = max(hi - lo, 1e-9)
        let pts = values.enumerated().map { i, v in
            String(format: "%.1f,%.1f", Double(i) / Double(values.count - 1) * w, 1 + (1 - (log10(v) - lo) / span) * (h - 2))
        }.joined(separator: " ")
        return "<svg class=\"spark\" width=\"\(Int(w))\" height=\"\(Int(h))\" role=\"img\" aria-label=\"total loss trend\">"
            + "<polyline points=\"\(pts)\"/></svg>"
    }

    // MARK: - Sampling and ticks

    /// At most `limit` points at evenly spaced indices, the first and the last always included.
    static func downsample(_ points: [LossPoint], to limit: Int) -> [LossPoint] {
        guard points.count > limit, limit >= 2 else { return points }
        return (0..<limit).map { i in points[i * (points.count - 1) / (limit - 1)] }
    }

    /// Tick values between 10^a and 10^b: decades when the range spans three or more, 1-3
    /// multiples from one and a half, else 1-2-5 multiples, else a few evenly spaced values.
    static func logTicks(from a: Double, to b: Double) -> [Double] {
        // Losses near the top of Double's range make 10^b infinite; no stride may run away.
        guard a.isFinite, b.isFinite, b - a < 700, pow(10, b).isFinite else { return [] }
        let decades = (Int(floor(a))...Int(ceil(b))).map { pow(10, Double($0)) }
        let inRange = { (v: Double) in log10(v) >= a && log10(v) <= b }
        if b - a >= 3 { return decades.filter(inRange) }
        let multiples: [Double] = b - a >= 1.5 ? [1, 3] : [1, 2, 5]
        let candidates = decades.flatMap { d in multiples.map { $0 * d } }.filter(inRange)
        if candidates.count >= 2 { return candidates }
        let lo = pow(10, a), hi = pow(10, b)
        let step = niceStep((hi - lo) / 3)
        let first = (lo / step).rounded(.up) * step
        guard first + step > first, (hi - first) / step < 20 else { return [lo, hi].filter { $0 > 0 } }
        return stride(from: first, through: hi, by: step).map { $0 }
    }

    /// Round tick values from a to b, about five of them.
    static func linearTicks(from a: Double, to b: Double) -> [Double] {
        let step = max(1, niceStep((b - a) / 5))
        let first = (a / step).rounded(.up) * step
        // Near 2^53 and beyond, adding a step may not change a double: stride would never end.
        guard a.isFinite, b.isFinite, first + step > first, (b - first) / step < 20 else { return [a, b] }
        return stride(from: first, through: b, by: step).map { $0 }
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0, raw.isFinite else { return 1 }
        let p = pow(10, floor(log10(raw)))
        return [1.0, 2, 5, 10].map { $0 * p }.first { $0 >= raw } ?? 10 * p
    }

    /// `v` as a tick label: plain (`500`, `0.2`), or `5e2` when the axis uses exponents.
    static func axisLabel(_ v: Double, exponent: Bool) -> String {
        let e = Int(floor(log10(v) + 1e-9))
        if !exponent { return String(format: "%g", v) }
        let m = v / pow(10, Double(e))
        return abs(m - 1) < 1e-6 ? "1e\(e)" : String(format: "%.3ge%d", m, e)
    }

    // MARK: - Style

    static let css = """
    :root{--bg:#111318;--panel:#1a1d24;--line:#2a2f39;--text:#e6e8eb;--muted:#8b93a1;--blue:#4c8dff;--green:#2ea043;
    --red:#e5534b;--amber:#c69026;--content:#58a6ff;--style:#f0883e;--total:#f2f4f7}
    *{box-sizing:border-box} body{font:13px/1.4 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0;background:var(--bg);color:var(--text)}
    header{display:flex;flex-wrap:wrap;align-items:center;gap:10px 28px;padding:12px 20px;background:var(--panel);border-bottom:1px solid var(--line)}
    .brand h1{font-size:17px;margin:0;letter-spacing:.2px} .brand span{color:var(--muted);font-size:12px}
    .totals{display:flex;gap:6px} .summary{display:flex;align-items:center;gap:18px;margin-left:auto}
    .try{color:#8ab4f8;text-decoration:none} .logout button{background:#262a33;color:#e6e6e6;border:1px solid #3a3f4b;border-radius:6px;padding:4px 10px;font:inherit;cursor:pointer}
    main{padding:4px 20px 0} h2{font-size:14px;margin:18px 0 8px;font-weight:600} h2 small{color:var(--muted);font-weight:400;margin-left:6px}
    .muted{color:var(--muted)} code{background:#262a33;padding:1px 5px;border-radius:4px}
    table.jobs{border-collapse:collapse;width:100%;background:var(--panel);border-radius:8px;overflow:hidden}
    table.jobs th{font-weight:500;color:var(--muted);font-size:12px;background:#20242c}
    table.jobs th,table.jobs td{padding:6px 10px;border-bottom:1px solid var(--line);text-align:left;white-space:nowrap}
    table.jobs tr:last-child td{border-bottom:0} .num{text-align:right!important;font-variant-numeric:tabular-nums}
    td.name,.name{font-weight:600} td small{color:var(--muted)}
    .badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:11px;font-weight:500;background:#3a3f4b;color:#fff}
    .badge b{margin-left:3px} .badge.queued{background:#4a5160}.badge.running{background:var(--blue)}
    .badge.succeeded{background:var(--green)}.badge.failed{background:var(--red)}.badge.cancelled{background:var(--amber)}
    svg.bar{vertical-align:middle} svg.bar .track{fill:#2c313b} svg.bar .fill{fill:var(--blue)}
    svg.bar .fill.succeeded{fill:var(--green)} svg.bar .fill.failed{fill:var(--red)} svg.bar .fill.cancelled{fill:var(--amber)}
    svg.spark{vertical-align:middle} svg.spark polyline{fill:none;stroke:var(--total);stroke-width:1.3;opacity:.85}
    tr.reason td{color:#ff9492;font-size:12px;padding-top:0}
    .previews{display:grid;grid-template-columns:repeat(auto-fill,minmax(150px,1fr));gap:10px}
    figure{margin:0;background:var(--panel);border:1px solid var(--line);border-radius:8px;padding:8px}
    figure.preview img,.placeholder{display:block;width:100%;aspect-ratio:1;object-fit:cover;border-radius:5px;background:#0c0e12}
    .placeholder{display:flex;align-items:center;justify-content:center;color:var(--muted);font-size:12px;border:1px dashed var(--line)}
    figcaption{font-size:12px;margin:6px 2px 2px;display:flex;flex-wrap:wrap;align-items:center;gap:6px} figcaption small{color:var(--muted)}
    .charts{display:grid;grid-template-columns:repeat(auto-fill,minmax(420px,1fr));gap:10px}
    figure.chart figcaption{margin:0 2px 6px} .legend{margin-left:auto;display:flex;gap:10px;align-items:center}
    .legend{font-size:11px} .legend i{font-style:normal;font-variant-numeric:tabular-nums} .legend i::before{content:"";display:inline-block;width:10px;height:3px;margin-right:4px;vertical-align:middle;border-radius:2px}
    i.total{color:var(--total)} i.total::before{background:var(--total)} i.content{color:var(--content)} i.content::before{background:var(--content)}
    i.style{color:var(--style)} i.style::before{background:var(--style)}
    svg.loss{display:block;width:100%;height:auto} svg.loss .plot{fill:#13161b} svg.loss .grid{stroke:#262b34;stroke-width:1}
    svg.loss .axis,svg.loss .muted{fill:var(--muted);font-size:10px;font-variant-numeric:tabular-nums}
    svg.loss .line{fill:none;stroke-width:1.5;stroke-linejoin:round} .line.total{stroke:var(--total);stroke-width:1.8}
    .line.content{stroke:var(--content)} .line.style{stroke:var(--style)}
    .line.validation{stroke:#e6e6e6;stroke-dasharray:4 3;stroke-width:1.4} circle.validation{fill:#e6e6e6}
    tr.reason.stopped td{color:var(--muted)}
    footer{margin:22px 20px;color:#6e7681;font-size:12px} .empty{color:var(--muted)}
    """
}
