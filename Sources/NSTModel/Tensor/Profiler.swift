import Dispatch

/// Wall time per named stage of a step, for `orchestrator bench`'s per-layer table.
/// Disabled (a plain call) unless `enabled` is set.
public enum Profiler {
    nonisolated(unsafe) public static var enabled = false
    nonisolated(unsafe) private static var totals: [String: Double] = [:]
    nonisolated(unsafe) private static var order: [String] = []

    @inline(__always)
    public static func time<T>(_ label: @autoclosure () -> String, _ body: () throws -> T) rethrows -> T {
        guard enabled else { return try body() }
        let t0 = DispatchTime.now().uptimeNanoseconds
        let r = try body()
        let key = label()
        if totals[key] == nil { order.append(key) }
        totals[key, default: 0] += Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        return r
    }

    public static func reset() { totals = [:]; order = [] }

    /// Stages in first-seen order with their total seconds.
    public static var report: [(label: String, seconds: Double)] { order.map { ($0, totals[$0]!) } }
}
