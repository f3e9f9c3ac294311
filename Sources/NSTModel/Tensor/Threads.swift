import CBLAS
import Dispatch
import Foundation

/// The thread budget of the numerical code.
///
/// OpenBLAS runs each large GEMM on `count` threads; the vector loops around the GEMMs
/// (instance norm, padding, im2col, …) split their outer loop over the same number of threads
/// with `concurrentPerform`. The two never run at the same time, so the machine is never
/// oversubscribed.
public enum Threads {
    nonisolated(unsafe) private static var current = 1

    public static var count: Int { current }

    /// Sets the thread count for OpenBLAS and for the vector loops.
    public static func configure(_ n: Int) {
        current = max(1, n)
        openblas_set_num_threads(Int32(current))
    }

    /// The number of cores the process may use.
    public static var available: Int { ProcessInfo.processInfo.activeProcessorCount }

    /// OpenBLAS's idle threads spin (sched_yield) for about 2^28 cycles after each threaded GEMM,
    /// taking a core from the vector loops and the Winograd threads that run in between: about 5%
    /// of a training step on 2 cores. The timeout is read only when the library loads, so the
    /// executables call this first: if OPENBLAS_THREAD_TIMEOUT is unset, the process executes
    /// itself again, same arguments, with OPENBLAS_THREAD_TIMEOUT=4 (idle threads sleep at once).
    /// A value the user set is kept; if the re-execution fails, it carries on as it is.
    public static func reexecWithShortBLASSpin() {
        guard getenv("OPENBLAS_THREAD_TIMEOUT") == nil else { return }
        setenv("OPENBLAS_THREAD_TIMEOUT", "4", 1)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
    }
}

/// Runs `body(i)` for i in 0..<count, split over `Threads.count` threads when the work is
/// large enough (`work` is the approximate number of floats touched in total).
@inline(__always)
public func parallelFor(_ count: Int, work: Int, _ body: (Int) -> Void) {
    let threads = Threads.count
    if threads <= 1 || count <= 1 || work < 1 << 15 {
        for i in 0..<count { body(i) }
        return
    }
    let chunks = min(threads, count)
    DispatchQueue.concurrentPerform(iterations: chunks) { c in
        let lo = count * c / chunks, hi = count * (c + 1) / chunks
        for i in lo..<hi { body(i) }
    }
}
