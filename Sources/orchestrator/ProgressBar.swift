import CoordinatorAPI
import Foundation

/// A one-line progress bar on standard error with rate and ETA; on a non-terminal it prints a
/// plain line every few seconds instead.
struct ProgressBar {
    let total: Int
    let unit: String
    let isTTY = isatty(STDERR_FILENO) != 0
    let started = Date()
    let startStep: Int
    /// Whether the line shows items per second (not for work that has no natural unit).
    let showsRate: Bool
    var items = 0
    var lastPrint = Date.distantPast

    init(total: Int, unit: String, start: Int = 0, showsRate: Bool = true) {
        self.total = total; self.unit = unit; self.startStep = start; self.showsRate = showsRate
    }

    mutating func update(step: Int, items n: Int, detail: String) {
        items += n
        let now = Date()
        let elapsed = now.timeIntervalSince(started)
        let rate = elapsed > 0 ? Double(items) / elapsed : 0
        let stepsDone = step - startStep
        let eta = stepsDone > 0 ? elapsed / Double(stepsDone) * Double(total - step) : 0
        let frac = total > 0 ? Double(step) / Double(total) : 1
        let speed = showsRate ? String(format: "  %.2f %@/s", rate, unit) : ""
        if isTTY {
            let width = 24, filled = Int(clamping: min(1, max(0, frac)) * Double(width))
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            let line = String(format: "\r%@ %3.0f%% %d/%d%@  ETA %@  %@\u{1B}[K",
                              bar, frac * 100, step, total, speed, formatDuration(eta), detail)
            FileHandle.standardError.write(Data(line.utf8))
        } else if now.timeIntervalSince(lastPrint) >= 5 || step == total {
            lastPrint = now
            printErr(String(format: "step %d/%d (%.0f%%)%@  ETA %@  %@",
                            step, total, frac * 100, speed, formatDuration(eta), detail))
        }
    }

    func finish() { if isTTY { FileHandle.standardError.write(Data("\n".utf8)) } }
}

/// `1:02:03` or `2:05`; `--:--` for what is not a time a person would wait (negative, not
/// finite, or beyond a year).
func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite, seconds >= 0, seconds < 366 * 86_400 else { return "--:--" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? String(format: "%d:%02d:%02d", s / 3600, s / 60 % 60, s % 60) : String(format: "%d:%02d", s / 60, s % 60)
}
