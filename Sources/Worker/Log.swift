import Foundation

// MARK: - Logging

/// One line per event on standard error: `HH:MM:SS.mmm NAME: message`. Thread-safe (the
/// training thread and the async driver both log).
enum Log {
    nonisolated(unsafe) private static var name = "worker"
    private static let lock = NSLock()

    /// Sets the worker name shown on every line (called once at start).
    static func setName(_ worker: String) {
        lock.lock(); defer { lock.unlock() }
        name = worker
    }

    static func info(_ message: String) {
        var t = timeval()
        gettimeofday(&t, nil)
        var seconds = time_t(t.tv_sec)
        var parts = tm()
        localtime_r(&seconds, &parts)
        let stamp = String(format: "%02d:%02d:%02d.%03d", parts.tm_hour, parts.tm_min, parts.tm_sec,
                           Int(t.tv_usec) / 1000)
        lock.lock(); defer { lock.unlock() }
        FileHandle.standardError.write(Data("\(stamp) \(name): \(message)\n".utf8))
    }
}

/// `1.23e+05`-style numbers for losses in log lines.
func short(_ x: Double) -> String { String(format: "%.4g", x) }
