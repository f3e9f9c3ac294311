import CoordinatorAPI
import XCTest

/// Issue 11, findings 2 and 11: text and numbers from the other end are shown safely.
final class SanitizeTests: XCTestCase {
    func testControlCharactersAreEscapedAndTextIsBounded() {
        XCTAssertEqual(Sanitize.oneLine("ok\u{1B}[31mred\nnext\u{7F}\u{9B}\u{2028}"),
                       #"ok\u{1B}[31mred\u{A}next\u{7F}\u{9B}\u{2028}"#)
        XCTAssertEqual(Sanitize.oneLine("plain text, ünïcode ✓"), "plain text, ünïcode ✓")
        let long = String(repeating: "é", count: 5000)
        let cut = Sanitize.oneLine(long)
        XCTAssertLessThanOrEqual(cut.utf8.count, Sanitize.maxFreeText + "…".utf8.count)
        XCTAssertTrue(cut.hasSuffix("…"))
        XCTAssertTrue(Sanitize.isClean("host-1.example"))
        XCTAssertFalse(Sanitize.isClean("a\tb"))
        XCTAssertFalse(Sanitize.isClean(String(repeating: "a", count: 1025)))
    }

    func testDoublesClampIntoInt() {
        XCTAssertEqual(Int(clamping: 1e300), .max)
        XCTAssertEqual(Int(clamping: -1e300), .min)
        XCTAssertEqual(Int(clamping: Double.infinity), .max)
        XCTAssertEqual(Int(clamping: Double.nan), 0)
        XCTAssertEqual(Int(clamping: 9.223372036854775807e18), .max)
        XCTAssertEqual(Int(clamping: 41.9), 41)
        XCTAssertEqual(Int(clamping: -41.9), -41)
    }
}
