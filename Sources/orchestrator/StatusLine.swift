import Foundation

/// A progress line on standard error that rewrites itself on a terminal (at most 10 times a
/// second) and, on a non-terminal (a log file), prints a plain line every 5 seconds instead.
/// Used for transfers (`vgg fetch`) and folder scans (`dataset pack`); `ProgressBar` is the
/// step-based one of training.
struct StatusLine {
    let isTTY = isatty(STDERR_FILENO) != 0
    private var lastPrint = Date.distantPast
    private var shown = false

    /// Shows `text` unless a line was shown very recently; `force` shows it anyway (the last one).
    mutating func show(_ text: @autoclosure () -> String, force: Bool = false) {
        let now = Date()
        guard force || now.timeIntervalSince(lastPrint) >= (isTTY ? 0.1 : 5) else { return }
        lastPrint = now
        if isTTY {
            FileHandle.standardError.write(Data(("\r" + text() + "\u{1B}[K").utf8))
            shown = true
        } else {
            printErr(text())
        }
    }

    /// Ends the rewritten line, so that what follows starts on a new one.
    mutating func finish() {
        if isTTY && shown { FileHandle.standardError.write(Data("\n".utf8)) }
        shown = false
    }
}

/// Bytes received of a total: `███░░ 42% 221.8/528.0 MB  38.4 MB/s  ETA 0:08`.
struct ByteProgress {
    let started = Date()
    var line = StatusLine()

    mutating func update(received: Int64, total: Int64?, force: Bool = false) {
        let elapsed = Date().timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(received) / elapsed : 0
        let mb = Double(received) / 1e6
        line.show({
            guard let total, total > 0 else {
                return String(format: "%.1f MB  %.1f MB/s", mb, rate / 1e6)
            }
            let frac = min(1, max(0, Double(received) / Double(total)))
            let width = 24, filled = Int(frac * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let eta = rate > 0 ? Double(total - received) / rate : .infinity
            return String(format: "%@ %3.0f%% %.1f/%.1f MB  %.1f MB/s  ETA %@",
                          bar, frac * 100, mb, Double(total) / 1e6, rate / 1e6, formatDuration(eta))
        }(), force: force)
    }

    mutating func finish() { line.finish() }
}
