import CoordinatorAPI
import XCTest

/// Issue 14, part 4: which trials of a sweep are on the content/style Pareto front.
final class TradeOffTests: XCTestCase {
    func testFrontIsTheUndominatedPoints() {
        // Given a trade-off curve with two points behind it
        let points: [(content: Double, style: Double)] = [
            (1, 10), (2, 5), (4, 2), (8, 1),   // the front, style falling as content rises
            (3, 6),                            // dominated by (2, 5)
            (9, 9),                            // dominated by everything but (1, 10)
        ]
        // Then the front is the first four, in the given order, and its path runs by content
        XCTAssertEqual(TradeOff.paretoFront(points), [true, true, true, true, false, false])
        XCTAssertEqual(TradeOff.frontPath(points), [0, 1, 2, 3])
        // And the order of the input does not matter
        let reversed = Array(points.reversed())
        XCTAssertEqual(TradeOff.paretoFront(reversed), [false, false, true, true, true, true])
        XCTAssertEqual(TradeOff.frontPath(reversed), [5, 4, 3, 2])
    }

    func testTiesAndDuplicates() {
        // Equal on one loss and worse on the other: dominated.
        XCTAssertEqual(TradeOff.paretoFront([(1, 3), (1, 2)]), [false, true])
        XCTAssertEqual(TradeOff.paretoFront([(2, 1), (1, 1)]), [false, true])
        // Duplicates do not dominate each other: all on the front, or all off it.
        XCTAssertEqual(TradeOff.paretoFront([(1, 2), (1, 2), (2, 1)]), [true, true, true])
        XCTAssertEqual(TradeOff.paretoFront([(3, 3), (1, 1), (3, 3)]), [false, true, false])
        XCTAssertEqual(TradeOff.frontPath([(1, 2), (2, 1), (1, 2)]), [0, 2, 1])
        // One point is its own front; none is empty.
        XCTAssertEqual(TradeOff.paretoFront([(5, 5)]), [true])
        XCTAssertEqual(TradeOff.paretoFront([]), [])
    }

    func testHostileValuesAreLeftOut() {
        let nan = Double.nan, inf = Double.infinity
        // Given points a worker could report: NaN, ±infinity, zero and negative losses
        let points: [(content: Double, style: Double)] = [
            (nan, 1), (1, nan), (-inf, -inf), (-1, 0.5), (0, 0), (inf, 0.1), (1e-300, -1),
            (2, 2), (3, 1),
        ]
        // Then none of them is on the front nor keeps the good points off it
        XCTAssertEqual(TradeOff.paretoFront(points), [false, false, false, false, false, false, false, true, true])
        XCTAssertEqual(TradeOff.frontPath(points), [7, 8])
        XCTAssertFalse(TradeOff.isUsable(content: .greatestFiniteMagnitude, style: nan))
        XCTAssertTrue(TradeOff.isUsable(content: .leastNonzeroMagnitude, style: .greatestFiniteMagnitude))
        // And a large hostile list is decided quickly (no quadratic work) and sanely
        let many: [(content: Double, style: Double)] = (0..<50_000).map { (i: Int) -> (content: Double, style: Double) in
            let k = Double(i % 997)
            return (content: k + 1, style: 997 - k)
        }
        let front = TradeOff.paretoFront(many)
        XCTAssertEqual(front.filter { $0 }.count, 50_000, "a strict trade-off: every point and its duplicates on the front")
    }

    func testAnEarlyStoppedTrialIsPlacedAtTheStepOfItsModel() {
        func point(_ step: Int, _ total: Double) -> ValidationPoint {
            ValidationPoint(step: step, content: total, style: total / 2, contentWeighted: total / 2, styleWeighted: total / 2)
        }
        // Given points whose best (lowest weighted total) is not the latest, with a tie and a NaN
        let points = [point(50, 9), point(100, 4), point(150, 6), point(200, 4), point(250, .nan)]
        // Then a running or finished trial is at its latest point, an early-stopped one at its
        // model's: the lowest total, the earliest on a tie (EarlyStopping.best)
        XCTAssertEqual(TradeOff.modelPoint(points, earlyStopped: false)?.step, 250)
        XCTAssertEqual(TradeOff.modelPoint(points, earlyStopped: true)?.step, 100)
        XCTAssertNil(TradeOff.modelPoint([], earlyStopped: true))
        XCTAssertNil(TradeOff.modelPoint([point(10, .infinity)], earlyStopped: true))
    }
}
