import Foundation

// MARK: - Clock

/// The source of "now" for the store. Injected so that lease expiry can be tested without
/// sleeping: the store never calls `Date()` itself.
public protocol StoreClock: Sendable {
    /// The current time.
    func now() -> Date
}

/// The wall clock.
public struct SystemClock: StoreClock {
    public init() {}

    /// `Date()`.
    public func now() -> Date { Date() }
}

/// A clock that only moves when told to, for tests. Thread-safe.
public final class ManualClock: StoreClock, @unchecked Sendable {
    private let lock = NSLock()
    private var current: Date

    /// Starts at `start` (by default 2025-01-01T00:00:00Z, a whole second, so that times
    /// round-trip exactly through the database).
    public init(start: Date = Date(timeIntervalSince1970: 1_735_689_600)) {
        current = start
    }

    /// The clock's current time.
    public func now() -> Date {
        lock.lock()
        defer { lock.unlock() }
        return current
    }

    /// Moves the clock forward (or backward, for a negative interval) by `seconds`.
    public func advance(by seconds: TimeInterval) {
        lock.lock()
        defer { lock.unlock() }
        current = current.addingTimeInterval(seconds)
    }

    /// Sets the clock to `date`.
    public func set(_ date: Date) {
        lock.lock()
        defer { lock.unlock() }
        current = date
    }
}
