import Foundation
import NSTModel
import XCTest

/// Early stopping and divergence on injected series (issue 14).
final class StoppingRulesTests: XCTestCase {
    typealias P = EarlyStopping.Point

    func run(_ rule: inout EarlyStopping, _ totals: [Double], every: Int = 100) -> Int? {
        for (i, t) in totals.enumerated() {
            rule.record(P(step: (i + 1) * every, total: t))
            if rule.shouldStop { return (i + 1) * every }
        }
        return nil
    }

    func testStopsWhenTheLastPatiencePointsDoNotImproveByMinDelta() {
        // Improving by 10 % each point, then within 1 % for two points
        var rule = EarlyStopping(patience: 2, minDelta: 0.05)
        XCTAssertEqual(run(&rule, [100, 90, 81, 80.5, 80.9, 70]), 500)
        XCTAssertEqual(rule.best, P(step: 400, total: 80.5))
    }

    func testAnImprovementByMinDeltaResetsThePatience() {
        var rule = EarlyStopping(patience: 2, minDelta: 0.05)
        XCTAssertNil(run(&rule, [100, 99, 90, 89, 80]))
        XCTAssertEqual(rule.best?.step, 500)
    }

    func testMinDeltaZeroStopsOnlyWithoutAnyImprovement() {
        var rule = EarlyStopping(patience: 3, minDelta: 0)
        XCTAssertNil(run(&rule, [10, 9, 9.5, 9.9, 8.99]))
        for step in [600, 700] {
            rule.record(P(step: step, total: 9))
            XCTAssertFalse(rule.shouldStop)
        }
        rule.record(P(step: 800, total: 8.99))  // equal to the best is no improvement
        XCTAssertTrue(rule.shouldStop)
        XCTAssertEqual(rule.best, P(step: 500, total: 8.99))
    }

    func testPatienceOneWithALargeMinDeltaStopsAtTheSecondPoint() {
        var rule = EarlyStopping(patience: 1, minDelta: 0.99)
        XCTAssertEqual(run(&rule, [100, 50, 20]), 200)
        XCTAssertEqual(rule.best, P(step: 200, total: 50))
    }

    func testTheHistoryOfAResumedRunCounts() {
        // Resumed with two stored points: one more without improvement stops at once
        var rule = EarlyStopping(patience: 2, minDelta: 0.1,
                                 history: [P(step: 200, total: 95), P(step: 100, total: 100), P(step: 300, total: 80)])
        XCTAssertEqual(rule.points.map(\.step), [100, 200, 300])
        XCTAssertFalse(rule.shouldStop)
        rule.record(P(step: 400, total: 79))
        XCTAssertFalse(rule.shouldStop)
        rule.record(P(step: 500, total: 78))
        XCTAssertTrue(rule.shouldStop)
        XCTAssertEqual(rule.best, P(step: 500, total: 78))
        // A point of the same step replaces the earlier one
        rule.record(P(step: 500, total: 50))
        XCTAssertEqual(rule.points.count, 5)
        XCTAssertFalse(rule.shouldStop)
    }

    func testNonFiniteTotalsNeverImprove() {
        var rule = EarlyStopping(patience: 1, minDelta: 0)
        XCTAssertEqual(run(&rule, [5, .nan]), 200)
        XCTAssertEqual(rule.best?.total, 5)
    }

    // MARK: - Divergence

    func divergesAt(_ totals: [Double]) -> Int? {
        var d = Divergence()
        for (i, t) in totals.enumerated() {
            do { try d.observe(step: i + 1, total: t) } catch {
                guard case .diverged(let step, _) = error else { XCTFail("\(error)"); return nil }
                XCTAssertTrue(error.description.hasPrefix("diverged at step \(step) ("), error.description)
                return step
            }
        }
        return nil
    }

    func testALossAboveTenTimesItsMinimumForTwentyStepsDiverges() {
        let falling = (0..<50).map { 1000 / Double($0 + 1) }  // minimum 20
        XCTAssertNil(divergesAt(falling))
        XCTAssertEqual(divergesAt(falling + Array(repeating: 201, count: 25)), 70)
        // Nineteen bad steps and one back under the bar: the count starts again
        let bumpy = falling + Array(repeating: 201, count: 19) + [199] + Array(repeating: 201, count: 19)
        XCTAssertNil(divergesAt(bumpy))
        XCTAssertEqual(divergesAt(bumpy + [500]), 90)
        // Exactly ten times is not above
        XCTAssertNil(divergesAt(falling + Array(repeating: 200, count: 30)))
        // Non-finite totals are another rule's
        XCTAssertNil(divergesAt([1, .nan, .infinity] + Array(repeating: .nan, count: 30)))
    }

    func testAConstantOutputIsACollapse() throws {
        let flat = RGBImage(width: 8, height: 8, pixels: Array(repeating: 7, count: 8 * 8 * 3))
        XCTAssertThrowsError(try Divergence.checkOutput(flat, step: 300)) { error in
            XCTAssertEqual("\(error)".prefix(22), "diverged at step 300 (")
        }
        var one = flat
        one.pixels[0] = 200  // one bright red pixel of 64: std about 23
        XCTAssertNoThrow(try Divergence.checkOutput(one, step: 300))
        let scene = SyntheticImages.contentImage(index: 1, width: 32, height: 32, seed: 7)
        XCTAssertNoThrow(try Divergence.checkOutput(scene, step: 1))
        XCTAssertEqual(Divergence.channelStandardDeviations(flat), [0, 0, 0])
    }
}
