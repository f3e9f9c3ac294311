import ConfigFile
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import XCTest

/// Issue 14, parts 6 and 7 in a styles config: `"style_weight": "auto"` with `"style_ratio"`,
/// and `"init"`; each bad value reported with its path.
final class AutoWeightConfigTests: ConfigFolderTestCase {
    func testAutoTakesTheDefaultRatioOrTheGivenOneAndANumberTurnsItOff() throws {
        let config = try parse("""
            {"defaults": {"style_weight": "auto"},
             "styles": [{"name": "a", "image": "styles/wave.png"},
                        {"name": "b", "image": "styles/wave.png", "style_ratio": 4},
                        {"name": "c", "image": "styles/wave.png", "style_weight": 3e4},
                        {"name": "d", "image": "styles/wave.png", "style_ratio": {"sweep": [0.5, 2]}}]}
            """)
        let byName = Dictionary(uniqueKeysWithValues: config.styles.map { ($0.name, $0.config) })
        XCTAssertEqual(byName["a"]?.styleRatio, 1.5, "the default ratio (docs/tuning.md)")
        XCTAssertEqual(byName["b"]?.styleRatio, 4)
        XCTAssertNil(byName["c"]?.styleRatio)
        XCTAssertEqual(byName["c"]?.styleWeight, 3e4)
        XCTAssertEqual(byName["d-1"]?.styleRatio, 0.5)
        XCTAssertEqual(byName["d-2"]?.params, ["style_ratio": 2])
        // The wire format carries it
        let wire = try JSONEncoder().encode(byName["b"]!)
        XCTAssertEqual(try JSONDecoder().decode(JobConfig.self, from: wire).styleRatio, 4)
        XCTAssertTrue(String(decoding: wire, as: UTF8.self).contains("\"style_ratio\":4"))
    }

    func testBadAutoWeightsAreReportedWithTheirPaths() {
        let found = problems("""
            {"defaults": {},
             "styles": [{"name": "a", "image": "styles/wave.png", "style_ratio": 2},
                        {"name": "b", "image": "styles/wave.png", "style_weight": "automatic"},
                        {"name": "c", "image": "styles/wave.png", "style_weight": "auto", "style_ratio": 0},
                        {"name": "d", "image": "styles/wave.png", "style_weight": "auto", "style_ratio": 1e7},
                        {"name": "e", "image": "styles/wave.png", "style_ratio": {"sweep": [1, 2]}},
                        {"name": "f", "image": "styles/wave.png", "style_weight": "auto", "content_weight": 0}]}
            """)
        XCTAssertTrue(found.contains("styles[5]: style_weight: \"auto\" sets it relative to the content term, so content_weight must be above 0"),
                      "\(found)")
        XCTAssertTrue(found.contains("styles[0].style_ratio: needs \"style_weight\": \"auto\" (here or in defaults)"), "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("styles[1].style_weight: must be a non-negative number or \"auto\", got \"automatic\"") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("styles[2].style_ratio: must be a number above 0") }, "\(found)")
        XCTAssertTrue(found.contains { $0.hasPrefix("styles[3].style_ratio: must be a number above 0 and at most 1000000") }, "\(found)")
        XCTAssertTrue(found.contains("styles[4].style_ratio: needs \"style_weight\": \"auto\" (here or in defaults)"), "\(found)")
    }

    func testInitTakesNearestOrAJobAndNothingElse() throws {
        let config = try parse("""
            {"defaults": {"init": "nearest"},
             "styles": [{"name": "a", "image": "styles/wave.png"},
                        {"name": "b", "image": "styles/wave.png", "init": "job:12"},
                        {"name": "c", "image": "styles/wave.png", "init": null}]}
            """)
        XCTAssertEqual(config.styles.map(\.config.initSource), [.nearest, .job(12), nil])
        let found = problems("""
            {"styles": [{"name": "a", "image": "styles/wave.png", "init": "job:0"},
                        {"name": "b", "image": "styles/wave.png", "init": "job:+3"},
                        {"name": "c", "image": "styles/wave.png", "init": "closest"},
                        {"name": "d", "image": "styles/wave.png", "init": 12}]}
            """)
        XCTAssertEqual(found.filter { $0.contains(".init: expected \"nearest\", \"job:ID\" (a job id) or null") }.count, 4, "\(found)")
        // A config from elsewhere (the API) is checked the same way
        var c = JobConfig(name: "x", styleSHA256: String(repeating: "a", count: 64))
        c.initFrom = "job:99999999999999999999"
        XCTAssertEqual(c.problems().count, 1)
        c.initFrom = "job:7"
        c.styleRatio = .nan
        XCTAssertEqual(c.problems(), ["style_ratio: must be a number above 0 and at most 1000000, got nan"])
    }
}
