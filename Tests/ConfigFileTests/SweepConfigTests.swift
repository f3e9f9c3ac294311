import ConfigFile
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import XCTest

/// Issue 14, part 1: `{"sweep": [...]}` in place of a numeric hyper-parameter expands a style
/// into one job per combination, named `<style>-<k>`, grouped, with its params; and the
/// validation keys (`validation_images`, default 8; `early_stop`).
final class SweepConfigTests: ConfigFolderTestCase {
    func testASweepBecomesOneJobPerCombinationInADocumentedOrder() throws {
        let config = try parse("""
            {"defaults": {"image_size": 128, "steps": 100, "lr": {"sweep": [0.001, 0.002]}},
             "styles": [{"name": "wave", "image": "styles/wave.png", "style_weight": {"sweep": [1e4, 3e4, 1e5]}},
                        {"name": "ink", "image": "styles/ink.png", "lr": 0.005}]}
            """)
        // Keys sorted (lr, style_weight), values in the given order, the last key fastest
        XCTAssertEqual(config.styles.map(\.name), ["wave-1", "wave-2", "wave-3", "wave-4", "wave-5", "wave-6", "ink"])
        let wave = config.styles.prefix(6).map(\.config)
        XCTAssertEqual(wave.map(\.lr), [0.001, 0.001, 0.001, 0.002, 0.002, 0.002])
        XCTAssertEqual(wave.map(\.styleWeight), [1e4, 3e4, 1e5, 1e4, 3e4, 1e5])
        XCTAssertTrue(wave.allSatisfy { $0.group == "wave" && $0.imageSize == 128 && $0.steps == 100 })
        XCTAssertEqual(wave[4].params, ["lr": 0.002, "style_weight": 3e4])
        // A plain value in a style overrides the swept default: one job, no group
        let ink = config.styles[6].config
        XCTAssertEqual(ink.lr, 0.005)
        XCTAssertNil(ink.group)
        XCTAssertNil(ink.params)
        XCTAssertTrue(config.styles.allSatisfy { $0.config.problems().isEmpty })
    }

    func testAStylesOwnSweepReplacesTheDefaultsSweepOfTheSameKey() throws {
        let config = try parse("""
            {"defaults": {"steps": {"sweep": [10, 20, 30]}},
             "styles": [{"name": "wave", "image": "styles/wave.png", "steps": {"sweep": [5, 50]}}]}
            """)
        XCTAssertEqual(config.styles.map(\.name), ["wave-1", "wave-2"])
        XCTAssertEqual(config.styles.map(\.config.steps), [5, 50])
    }

    func testAConfigWithoutSweepsIsUnchangedAndValidationIsOnByDefault() throws {
        let config = try parse(#"{"styles": [{"name": "wave", "image": "styles/wave.png"}]}"#)
        XCTAssertEqual(config.styles.map(\.name), ["wave"])
        XCTAssertNil(config.styles[0].config.group)
        XCTAssertEqual(config.styles[0].config.validationImages, 8)
        XCTAssertNil(config.styles[0].config.earlyStop)
        let off = try parse("""
            {"defaults": {"validation_images": 4, "early_stop": {"patience": 3, "min_delta": 0.01}},
             "styles": [{"name": "wave", "image": "styles/wave.png"}, {"name": "ink", "image": "styles/ink.png", "validation_images": 0, "early_stop": null}]}
            """)
        XCTAssertEqual(off.styles[0].config.validationImages, 4)
        XCTAssertEqual(off.styles[0].config.earlyStop, EarlyStop(patience: 3, minDelta: 0.01))
        XCTAssertEqual(off.styles[1].config.validationImages, 0)
        XCTAssertNil(off.styles[1].config.earlyStop)
    }

    func testBadSweepsAreReportedWithTheirPath() {
        let found = problems("""
            {"defaults": {"lr": {"sweep": []}, "seed": {"sweep": [1, 1]}},
             "styles": [{"name": "wave", "image": "styles/wave.png",
                         "image_size": {"sweep": [64, 66, "big"]}, "style_weight": {"sweep": [1e4], "note": "x"},
                         "batch_size": {"sweep": [1.5]}, "dataset": {"sweep": [1, 2]}, "steps": {"sweep": 5}}]}
            """)
        XCTAssertEqual(found, [
            "defaults.lr.sweep: empty: give at least one value",
            "defaults.seed.sweep[1]: duplicate value 1 (also sweep[0])",
            "styles[0].batch_size.sweep[0]: must be an integer from 1 to 64, got 1.5",
            "styles[0].dataset: cannot be swept (a sweep takes one of: batch_size, checkpoint_every, content_weight, epochs, image_size, lr, max_images, seed, steps, style_ratio, style_size, style_weight, validation_images)",
            "styles[0].image_size.sweep[1]: must be a positive multiple of 4 (from 8 to 2048), got 66",
            "styles[0].image_size.sweep[2]: expected a number, got \"big\"",
            "styles[0].steps.sweep: expected an array of numbers, got 5",
            "styles[0].style_weight: a sweep is {\"sweep\": [values]} and nothing else, got the key \"note\" beside it",
        ])
    }

    func testLimitsOnTheNumberOfJobsAndNameCollisions() {
        let seventy = (1...70).map(String.init).joined(separator: ", ")
        XCTAssertEqual(problems("""
            {"styles": [{"name": "wave", "image": "styles/wave.png", "seed": {"sweep": [\(seventy)]}}]}
            """), ["styles[0].seed.sweep: 70 values, more than 64"])
        XCTAssertEqual(problems(#"{"styles": [{"name": "wave", "image": "styles/wave.png", "seed": {"sweep": [1, 9007199254740993]}}]}"#),
                       ["styles[0].seed.sweep[1]: a swept value must be at most 2^53 in size (params hold it exactly), got 9007199254740993"])
        let eight = (1...8).map(String.init).joined(separator: ", ")
        XCTAssertEqual(problems("""
            {"styles": [{"name": "wave", "image": "styles/wave.png", "seed": {"sweep": [\(eight)]}, "steps": {"sweep": [\(eight), 9]}}]}
            """), ["styles[0]: the sweep makes 72 jobs (seed (8) × steps (9)), more than 64 for one style"])
        let sixtyFour = (1...64).map(String.init).joined(separator: ", ")
        let styles = (0..<5).map { #"{"name": "s\#($0)", "image": "styles/wave.png", "seed": {"sweep": [\#(sixtyFour)]}}"# }
        XCTAssertEqual(problems(#"{"styles": [\#(styles.joined(separator: ", "))]}"#),
                       ["styles: the config makes 320 jobs, more than 256"])
        XCTAssertEqual(problems("""
            {"styles": [{"name": "wave", "image": "styles/wave.png", "lr": {"sweep": [0.001, 0.002]}},
                        {"name": "wave-2", "image": "styles/ink.png"}]}
            """), [#"styles: job name "wave-2" is made twice: by the sweep of wave and by a style"#])
    }

    func testACombinationThatBreaksACrossFieldLimitNamesTheJob() {
        // 64 × 256² pixels a step is past the limit: only that combination is wrong
        XCTAssertEqual(problems("""
            {"defaults": {"image_size": 256}, "styles": [{"name": "wave", "image": "styles/wave.png", "batch_size": {"sweep": [4, 64]}}]}
            """), ["styles[0] (wave-2: batch_size=64): batch_size × image_size²: 64 × 256² is more than 2097152 pixels a step"])
        XCTAssertEqual(problems("""
            {"styles": [{"name": "wave", "image": "styles/wave.png", "validation_images": 0, "early_stop": {"patience": 0, "extra": 1}}]}
            """), [#"styles[0].early_stop: unknown key "extra" (expected patience and min_delta)"#])
    }
}
