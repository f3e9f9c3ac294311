import Foundation

/// The trade-off between a sweep's trials: each trial's unweighted content and style loss on the
/// held-out images (`ValidationPoint.content`, `.style`), both to be minimised. A trial is on the
/// Pareto front when no other trial is at least as good on both losses and better on one: the
/// trials worth looking at when choosing a style weight.
///
/// The values come from workers, so they may be anything: a point counts only when both losses
/// are finite and positive (NaN, ±infinity, zero and negative values are left out, neither on
/// the front nor dominating anyone; a log–log plot could not place them either).
public enum TradeOff {
    /// The validation point that stands for a trial's model: the latest one, or for a job that
    /// early stopping ended (its model is the best checkpoint's) the one with the lowest
    /// weighted total, the earliest on a tie — the `EarlyStopping.best` rule.
    public static func modelPoint(_ points: [ValidationPoint], earlyStopped: Bool) -> ValidationPoint? {
        guard earlyStopped else { return points.max { $0.step < $1.step } }
        return points.filter { $0.total.isFinite }.min { ($0.total, $0.step) < ($1.total, $1.step) }
    }

    /// True when `content` and `style` can be compared and plotted on log axes.
    public static func isUsable(content: Double, style: Double) -> Bool {
        content.isFinite && style.isFinite && content > 0 && style > 0
    }

    /// For each point, in the order given, whether it is on the Pareto front. Points equal on
    /// both losses do not dominate each other (duplicates are all on the front or all off it);
    /// a point equal on one loss and worse on the other is dominated.
    ///
    /// O(n log n): sorted by (content, style), a point is dominated exactly when some point
    /// before its run of duplicates has a style loss no larger than its own.
    public static func paretoFront(_ points: [(content: Double, style: Double)]) -> [Bool] {
        var onFront = [Bool](repeating: false, count: points.count)
        let order = points.indices.filter { isUsable(content: points[$0].content, style: points[$0].style) }
            .sorted { a, b in
                let p = points[a], q = points[b]
                return p.content != q.content ? p.content < q.content : p.style < q.style
            }
        var bestStyle = Double.infinity  // the least style loss of the points before the current run
        var k = 0
        while k < order.count {
            let p = points[order[k]]
            var end = k
            while end < order.count, points[order[end]].content == p.content, points[order[end]].style == p.style { end += 1 }
            let dominated = bestStyle <= p.style
            for i in order[k..<end] { onFront[i] = !dominated }
            bestStyle = min(bestStyle, p.style)
            k = end
        }
        return onFront
    }

    /// The indices of the front's points ordered by content loss (then style loss): the order in
    /// which a line joins them (style loss falls as content loss rises along it).
    public static func frontPath(_ points: [(content: Double, style: Double)]) -> [Int] {
        let front = paretoFront(points)
        return points.indices.filter { front[$0] }.sorted { a, b in
            points[a].content != points[b].content ? points[a].content < points[b].content : points[a].style < points[b].style
        }
    }
}
