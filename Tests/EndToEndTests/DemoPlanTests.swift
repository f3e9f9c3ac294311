import Foundation
import XCTest

/// `orchestrator demo` times a few training steps first and sizes the run to its time budget,
/// so that it takes about as long on a slow machine as on a fast one.
final class DemoPlanTests: XCTestCase {
    struct Plan {
        var styles: Int, steps: Int, size: Int, workers: Int, stepSeconds: Double, expected: Double
    }

    /// Runs `orchestrator demo --plan ARGS`; returns the parsed plan line and the whole output.
    func plan(_ args: [String]) throws -> (Plan, String, String) {
        let bin = try Cluster.binDirectory().appendingPathComponent("orchestrator")
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("demo-plan-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: logs) }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let state = logs.appendingPathComponent("state")
        let r = try runCommand(bin, ["demo", "--plan", "--state-dir", state.path,
                                     "--config", root.appendingPathComponent("configs/styles.json").path] + args,
                               environment: ProcessInfo.processInfo.environment, logDir: logs, timeout: 300)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: state.path), "--plan starts nothing and writes nothing")
        let line = try XCTUnwrap(r.stdout.split(separator: "\n").first { $0.hasPrefix("plan (") }.map(String.init), r.stdout)
        // plan (sized to a 3:00 demo): 8 styles × 170 steps at 64×64, batch 2, on 2 workers × 1 thread; a step takes 0.123 s here, so training should take about 2:05
        let numbers = line.split(whereSeparator: { !"0123456789.:".contains($0) })
        func duration(_ text: Substring) -> Double {
            text.split(separator: ":").reduce(0) { $0 * 60 + (Double($1) ?? .nan) }
        }
        let ints = numbers.compactMap { Int($0) }
        let stepSeconds = try XCTUnwrap(numbers.compactMap { $0.contains(".") ? Double($0) : nil }.first, line)
        let plan = Plan(styles: ints[0], steps: ints[1], size: ints[2], workers: ints[5],
                        stepSeconds: stepSeconds, expected: duration(numbers.last!))
        return (plan, line, r.stdout)
    }

    func testTheRunIsSizedFromTheMeasuredStepTimeToFitTheBudget() throws {
        let (p, line, _) = try plan(["--time-budget", "120", "--workers", "2"])
        print(line)
        XCTAssertTrue(line.hasPrefix("plan (sized to a 2:00 demo): 8 styles × "), line)
        XCTAssertTrue([64, 48, 32].contains(p.size), line)
        XCTAssertEqual(p.workers, 2)
        XCTAssertGreaterThan(p.stepSeconds, 0)
        // The training time the plan expects follows from the step time it measured…
        let expected = Double((8 + 1) / 2) * Double(p.steps) * p.stepSeconds * 1.05
        XCTAssertEqual(p.expected, expected.rounded(), accuracy: 1.5, line)
        // …and fits the budget less the fixed part of a demo (unless even one step does not).
        if p.steps > 1 { XCTAssertLessThanOrEqual(p.expected, 120 - 15 - 4 * 2 + 1, line) }
        // A larger size is only given up for a smaller one when it leaves too few steps.
        if p.size < 64 { XCTAssertLessThan(Double(p.steps), 80 * 64 * 64 / Double(p.size * p.size) * 1.5, line) }
    }

    func testGivenSizeAndStepsAreKeptAndSaidSo() throws {
        let (p, line, _) = try plan(["--image-size", "32", "--steps", "7", "--workers", "1"])
        XCTAssertTrue(line.hasPrefix("plan (as given): 8 styles × 7 steps at 32×32, batch 2, on 1 worker × "), line)
        XCTAssertEqual(p.steps, 7)
        XCTAssertEqual(p.size, 32)
    }

    func testATighterBudgetNeverPlansMoreSteps() throws {
        let (loose, _, _) = try plan(["--time-budget", "600", "--image-size", "32"])
        let (tight, _, _) = try plan(["--time-budget", "60", "--image-size", "32"])
        XCTAssertLessThanOrEqual(tight.steps, loose.steps)
        XCTAssertLessThan(tight.steps, 400)
    }

    func testAutoStyleWeightIsSaidAndABadWeightIsRefused() throws {
        let (_, _, out) = try plan(["--image-size", "16", "--steps", "2", "--style-weight", "auto"])
        XCTAssertTrue(out.contains("style weight: auto, chosen by each job on its first batch (style ratio 1.5)"), out)
        let bin = try Cluster.binDirectory().appendingPathComponent("orchestrator")
        let logs = FileManager.default.temporaryDirectory.appendingPathComponent("demo-bad-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: logs) }
        for bad in ["heavy", "-1", "nan"] {
            let r = try runCommand(bin, ["demo", "--plan", "--style-weight=\(bad)"], environment: ProcessInfo.processInfo.environment,
                                   logDir: logs)
            XCTAssertNotEqual(r.status, 0)
            XCTAssertTrue(r.stderr.contains("--style-weight must be a non-negative number or auto, got \(bad)"), r.stderr)
        }
    }
}
