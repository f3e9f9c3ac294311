import CoordinatorAPI
import Foundation

// MARK: - Sweeps

/// `{"sweep": [v1, v2, …]}` in place of a numeric hyper-parameter (docs/tuning.md): a style's
/// jobs are the cartesian product of its swept keys, named `<style>-<k>`, with `group` the style
/// and `params` the swept values.
enum Sweeps {
    /// The most jobs one style's sweep may make, and a whole config.
    static let maxJobsPerStyle = 64
    static let maxJobsPerConfig = 256
    /// The most values one sweep may list.
    static let maxValues = 64

    /// `object` without its sweeps, and the sweeps (checked: each value as the plain key would
    /// be, reported at `path.key.sweep[j]`; bad sweeps are left out).
    static func split(_ object: [String: JSONValue], path: String, checker: inout Checker)
        -> (plain: [String: JSONValue], sweeps: [String: [JSONValue]])
    {
        var plain: [String: JSONValue] = [:]
        var sweeps: [String: [JSONValue]] = [:]
        for key in object.keys.sorted() {
            let value = object[key]!
            guard case .object(let o) = value, let list = o["sweep"] else {
                plain[key] = value
                continue
            }
            let at = "\(path).\(key)"
            guard StyleKeys.sweepable.contains(key) else {
                checker.report(at, "cannot be swept (a sweep takes one of: \(StyleKeys.sweepable.sorted().joined(separator: ", ")))")
                continue
            }
            if let extra = o.keys.sorted().first(where: { $0 != "sweep" }) {
                checker.report(at, "a sweep is {\"sweep\": [values]} and nothing else, got the key \"\(extra)\" beside it")
                continue
            }
            guard case .array(let values) = list else {
                checker.report("\(at).sweep", "expected an array of numbers, got \(list.shown)")
                continue
            }
            guard !values.isEmpty else { checker.report("\(at).sweep", "empty: give at least one value"); continue }
            guard values.count <= maxValues else {
                checker.report("\(at).sweep", "\(values.count) values, more than \(maxValues)")
                continue
            }
            var good = true
            var seen: [Double: Int] = [:]
            for (j, v) in values.enumerated() {
                let vat = "\(at).sweep[\(j)]"
                guard let number = v.number else {
                    checker.report(vat, "expected a number, got \(v.shown)")
                    good = false
                    continue
                }
                let limit: Int64 = 1 << 53  // params hold the values as doubles, exact up to 2^53
                if abs(number) > Double(limit) || (v.integer.map { $0 > limit || $0 < -limit } ?? false) {
                    checker.report(vat, "a swept value must be at most 2^53 in size (params hold it exactly), got \(v.shown)")
                    good = false
                    continue
                }
                var scratch = JobConfig(name: "", styleSHA256: "")
                if key == "style_ratio" { scratch.styleRatio = StyleKeys.defaultStyleRatio }  // "auto" is checked per job
                if let problem = StyleKeys.set(key, v, in: &scratch) {
                    checker.report(vat, problem)
                    good = false
                }
                if let first = seen[number] {
                    checker.report(vat, "duplicate value \(v.shown) (also sweep[\(first)])")
                    good = false
                }
                seen[number] = seen[number] ?? j
            }
            if good { sweeps[key] = values }
        }
        return (plain, sweeps)
    }

    /// Every combination of the sweeps' values: keys in sorted order, each key's values in the
    /// order given, the last key changing fastest.
    static func combinations(_ sweeps: [String: [JSONValue]]) -> [[(key: String, value: JSONValue)]] {
        var out: [[(key: String, value: JSONValue)]] = [[]]
        for key in sweeps.keys.sorted() {
            out = out.flatMap { prefix in sweeps[key]!.map { prefix + [(key: key, value: $0)] } }
        }
        return out
    }

    /// The number of combinations, saturating (a config cannot make it overflow).
    static func count(_ sweeps: [String: [JSONValue]]) -> Int {
        sweeps.values.reduce(1) { n, values in
            let (product, overflow) = n.multipliedReportingOverflow(by: values.count)
            return overflow ? Int.max : product
        }
    }
}
