import Foundation

// MARK: - Retry delays

/// Exponential backoff with jitter for an unreachable coordinator: 0.5 s, 1 s, 2 s … capped at
/// 10 s, each delay scaled by a random factor in [0.75, 1.25) (still capped), so that many
/// workers cut off together do not all come back in the same instant.
struct Backoff: Sendable {
    var initial = 0.5
    var maximum = 10.0
    /// Failures since the last success.
    private(set) var failures = 0

    init(initial: Double = 0.5, maximum: Double = 10) {
        self.initial = initial
        self.maximum = maximum
    }

    /// The delay before the next try after one more failure.
    mutating func nextDelay<R: RandomNumberGenerator>(using rng: inout R) -> Double {
        let base = min(maximum, initial * pow(2, Double(min(failures, 30))))
        failures += 1
        return min(maximum, base * Double.random(in: 0.75..<1.25, using: &rng))
    }

    mutating func nextDelay() -> Double {
        var rng = SystemRandomNumberGenerator()
        return nextDelay(using: &rng)
    }

    /// Called after a request succeeded.
    mutating func reset() { failures = 0 }
}

/// A monotonic clock in seconds (not affected by wall-clock changes).
func monotonicSeconds() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }
