import Foundation

/// Early stopping over the weighted validation totals of one run (issue 14), a pure function of
/// the points so far, so that a resumed attempt continues from the stored history:
///
///   with points t_1…t_k (by step) and b = min(t_1…t_{k−P}), stop after point k when k > P and
///   min(t_{k−P+1}…t_k) ≥ b · (1 − minDelta)
///
/// i.e. none of the last `patience` (P) points improved on the best before them by a relative
/// `minDelta`. The model kept is the one with the lowest total of all (the earliest on a tie),
/// whether or not its improvement counted.
public struct EarlyStopping: Sendable, Equatable {
    public struct Point: Sendable, Equatable {
        public var step: Int
        public var total: Double
        public init(step: Int, total: Double) { self.step = step; self.total = total }
    }

    public let patience: Int
    public let minDelta: Double
    /// The points by step; a point replaces an earlier one of the same step.
    public private(set) var points: [Point] = []

    public init(patience: Int, minDelta: Double, history: [Point] = []) {
        precondition(patience >= 1 && minDelta >= 0 && minDelta < 1, "patience \(patience), min_delta \(minDelta)")
        self.patience = patience
        self.minDelta = minDelta
        for p in history { record(p) }
    }

    /// Adds a point (non-finite totals count as no improvement). Returns true when it is the new best.
    @discardableResult
    public mutating func record(_ point: Point) -> Bool {
        points.removeAll { $0.step == point.step }
        let at = points.firstIndex { $0.step > point.step } ?? points.endIndex
        points.insert(point, at: at)
        return best?.step == point.step
    }

    /// The point with the lowest finite total, the earliest on a tie.
    public var best: Point? {
        points.reduce(nil) { b, p in
            guard p.total.isFinite else { return b }
            guard let b else { return p }
            return p.total < b.total ? p : b
        }
    }

    /// True once the last `patience` points did not improve on the best before them by `minDelta`.
    public var shouldStop: Bool {
        guard points.count > patience else { return false }
        let before = points.dropLast(patience).map(\.total).filter(\.isFinite).min()
        guard let before else { return false }
        let recent = points.suffix(patience).map(\.total).filter(\.isFinite).min() ?? .infinity
        return !(recent < before * (1 - minDelta))
    }
}
