import Dispatch
import Foundation

// MARK: - SIGINT / SIGTERM

/// The first SIGINT or SIGTERM asks for a graceful stop (finish the step, checkpoint, hand the
/// job back, exit 0); a second one exits at once with 128 + the signal number.
final class ShutdownSignals: @unchecked Sendable {
    private let lock = NSLock()
    private var received: Int32?
    private var receivedAt: Double?
    private var sources: [DispatchSourceSignal] = []

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)  // the default action would kill us before the source sees it
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.handle(sig) }
            source.resume()
            sources.append(source)
        }
    }

    /// True once a first signal arrived.
    var isRequested: Bool {
        lock.lock(); defer { lock.unlock() }
        return received != nil
    }

    /// When the first signal arrived (`monotonicSeconds()`), nil before.
    var requestedAt: Double? {
        lock.lock(); defer { lock.unlock() }
        return receivedAt
    }

    private func handle(_ sig: Int32) {
        lock.lock()
        let first = received == nil
        if first { received = sig; receivedAt = monotonicSeconds() }
        lock.unlock()
        let name = sig == SIGINT ? "SIGINT" : sig == SIGTERM ? "SIGTERM" : "signal \(sig)"
        if first {
            Log.info("\(name): finishing the current step, then checkpoint, hand the job back and exit (again to exit now)")
        } else {
            Log.info("\(name) again: exiting now")
            exit(128 + sig)
        }
    }
}
