import Foundation

// MARK: - Clock

/// The source of "now" for the store. Injected so that lease expiry can be tested without
/// sleeping: the store never calls `Date()` itself.
public protocol StoreClock: Sendable {
    /// The current time.
    func now() -> Date
}

/// The wall clock, read once, then advanced by the monotonic clock: within a process, lease
/// deadlines and the time since a heartbeat follow real elapsed time, so a wall-clock jump
/// (an NTP step, a suspended VM, an operator's `date -s`) neither expires leases nor prolongs
/// them. Across restarts the coordinator grants every running lease a full period of grace
/// (`JobStore.grantGrace`), which covers a jump between two runs.
public struct SystemClock: StoreClock {
    private let wallAtStart: Date
    private let monotonicAtStart: UInt64

    public init() {
        wallAtStart = Date()
        monotonicAtStart = DispatchTime.now().uptimeNanoseconds
    }

    /// The wall time at creation plus the monotonic time since.
    public func now() -> Date {
        wallAtStart.addingTimeInterval(Double(DispatchTime.now().uptimeNanoseconds - monotonicAtStart) / 1e9)
    }
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

/// A thread-safe boolean.
final class Flag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false

    var isSet: Bool { lock.withLock { value } }
    func set() { lock.withLock { value = true } }
    func clear() { lock.withLock { value = false } }
}
