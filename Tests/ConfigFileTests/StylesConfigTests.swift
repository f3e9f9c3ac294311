import ConfigFile
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import XCTest

final class StylesConfigTests: XCTestCase {
    var root: URL!
    var configs: URL!

    override func setUpWithError() throws {
        root = try makeTempDir()
        configs = root.appendingPathComponent("configs", isDirectory: true)
        let styles = configs.appendingPathComponent("styles", isDirectory: true)
        try FileManager.default.createDirectory(at: styles, withIntermediateDirectories: true)
        try makePNG(width: 16, height: 16, seed: 1).write(to: styles.appendingPathComponent("candy.png"))
        try makePNG(width: 20, height: 12, seed: 2).write(to: styles.appendingPathComponent("mosaic.png"))
        try Data("hello, not an image\n".utf8).write(to: styles.appendingPathComponent("notes.png"))
        try (Data([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) + Data(repeating: 0x42, count: 40))
            .write(to: styles.appendingPathComponent("broken.png"))
        try FileManager.default.createDirectory(at: styles.appendingPathComponent("folder.png"), withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: root)
    }

    func parse(_ text: String) throws -> StylesConfig {
        try StylesConfig.parse(Data(text.utf8), file: "configs/styles.json", baseDirectory: configs)
    }

    /// The problems reported for `text` (fails if it parses).
    func problems(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        do {
            _ = try parse(text)
            XCTFail("expected problems", file: file, line: line)
            return []
        } catch let error as StylesConfigError {
            XCTAssertEqual(error.file, "configs/styles.json", file: file, line: line)
            return error.problems
        } catch {
            XCTFail("unexpected \(error)", file: file, line: line)
            return []
        }
    }

    // MARK: - Valid

    func testValidConfigResolvesDefaultsOverridesPathsAndDigests() throws {
        let absolute = configs.appendingPathComponent("styles/mosaic.png").path
        let config = try parse("""
            {"defaults": {"dataset": "coco-2014", "image_size": 64, "style_size": 48, "batch_size": 2, "steps": 100,
                          "lr": 0.002, "content_weight": 1e5, "style_weight": 1e10, "checkpoint_every": 25,
                          "seed": 7, "priority": 1, "max_attempts": 5, "epochs": 2, "max_images": 1000},
             "styles": [{"name": "candy", "image": "styles/candy.png"},
                        {"name": "mosaic", "image": "\(absolute)", "style_weight": 5e10, "steps": null,
                         "image_size": 32.0, "priority": -2}]}
            """)
        XCTAssertEqual(config.dataset, "coco-2014")
        XCTAssertEqual(config.styles.map(\.name), ["candy", "mosaic"])
        let candyData = try Data(contentsOf: configs.appendingPathComponent("styles/candy.png"))
        let candy = config.styles[0]
        XCTAssertEqual(candy.image.standardizedFileURL.path, configs.appendingPathComponent("styles/candy.png").standardizedFileURL.path)
        XCTAssertEqual(candy.imageSHA256, sha256Hex(candyData))
        XCTAssertEqual(candy.imageBytes, Int64(candyData.count))
        XCTAssertEqual(candy.imagePath, "configs/styles/candy.png")
        XCTAssertEqual(config.styles[1].imagePath, absolute)
        XCTAssertEqual(candy.config, JobConfig(name: "candy", styleSHA256: sha256Hex(candyData), imageSize: 64, styleSize: 48,
                                               batchSize: 2, epochs: 2, maxImages: 1000, steps: 100, lr: 0.002,
                                               contentWeight: 1e5, styleWeight: 1e10, checkpointEvery: 25, seed: 7,
                                               priority: 1, maxAttempts: 5, dataset: "coco-2014", validationImages: 8))
        let mosaic = config.styles[1].config
        XCTAssertEqual(mosaic.styleWeight, 5e10)
        XCTAssertNil(mosaic.steps)
        XCTAssertEqual(mosaic.imageSize, 32)
        XCTAssertEqual(mosaic.priority, -2)
        XCTAssertEqual(mosaic.lr, 0.002)
        XCTAssertEqual(mosaic.styleSHA256, sha256Hex(try Data(contentsOf: URL(fileURLWithPath: absolute))))
    }

    func testDatasetNamesAServedDatasetInDefaultsAndInAStyle() throws {
        let config = try parse("""
            {"defaults": {"dataset": "coco-2014"},
             "styles": [{"name": "candy", "image": "styles/candy.png"},
                        {"name": "mosaic", "image": "styles/mosaic.png", "dataset": "tiny"},
                        {"name": "plain", "image": "styles/candy.png", "dataset": null}]}
            """)
        XCTAssertEqual(config.dataset, "coco-2014")
        XCTAssertEqual(config.styles.map(\.config.dataset), ["coco-2014", "tiny", nil])
        XCTAssertEqual(config.styles.map(\.config.datasetSHA256), [nil, nil, nil], "the coordinator pins the digest")
        // Without the key the coordinator's default dataset is used (or the workers' folders)
        let none = try parse(#"{"styles": [{"name": "candy", "image": "styles/candy.png"}]}"#)
        XCTAssertNil(none.styles[0].config.dataset)

        XCTAssertEqual(problems("""
            {"defaults": {"dataset": "coco2017-test (first 40000 images)"},
             "styles": [{"name": "a", "image": "styles/candy.png", "dataset": "../x"},
                        {"name": "b", "image": "styles/candy.png", "dataset": 3}]}
            """), [
                "defaults.dataset: a dataset name: only letters, digits, '.', '_' and '-' are allowed, got \"coco2017-test (first 40000 images)\"",
                "styles[0].dataset: a dataset name: must not start with '.'",
                "styles[1].dataset: expected a dataset name (a string) or null, got 3",
            ])
    }

    func testMinimalConfigTakesJobConfigDefaults() throws {
        let config = try parse(#"{"styles": [{"name": "candy", "image": "styles/candy.png"}]}"#)
        XCTAssertNil(config.dataset)
        let c = config.styles[0].config
        XCTAssertEqual([c.imageSize, c.styleSize, c.batchSize, c.epochs, c.checkpointEvery, c.maxAttempts], [256, 256, 4, 1, 100, 3])
    }

    func testLoadFromFileResolvesRelativeToTheConfig() throws {
        let file = configs.appendingPathComponent("styles.json")
        try Data(#"{"styles": [{"name": "candy", "image": "styles/candy.png"}]}"#.utf8).write(to: file)
        XCTAssertEqual(try StylesConfig.load(contentsOf: file).styles.first?.name, "candy")
        XCTAssertThrowsError(try StylesConfig.load(contentsOf: configs.appendingPathComponent("nope.json"))) { error in
            XCTAssertEqual((error as? StylesConfigError)?.problems, ["cannot read the config: file not found"])
        }
    }

    // MARK: - Malformed JSON

    func testMalformedJSONGivesLineAndColumn() {
        XCTAssertEqual(problems("{\n  \"styles\": [\n    {\"name\": \"a\",, \"image\": \"x\"}\n  ]\n}"),
                       ["malformed JSON at line 3, column 18: invalid value"])
        let unterminated = problems("{\"styles\": [")
        XCTAssertEqual(unterminated.count, 1)
        XCTAssertTrue(unterminated[0].hasPrefix("malformed JSON"), unterminated[0])
        XCTAssertEqual(problems("  \n"), ["malformed JSON: the file is empty"])
        XCTAssertEqual(problems("[1, 2]"), ["(top level): expected an object with \"defaults\" and \"styles\", got an array"])
    }

    // MARK: - Unknown keys and shapes

    func testUnknownKeysAreReportedWithTheirPath() {
        XCTAssertEqual(problems("""
            {"defaults": {"lrr": 0.1, "imagesize": 64}, "style": [],
             "styles": [{"name": "candy", "image": "styles/candy.png", "datset": "x", "colour": 1}]}
            """), [
                "(top level): unknown key \"style\" (did you mean \"styles\"?)",
                "defaults: unknown key \"imagesize\" (did you mean \"image_size\"?)",
                "defaults: unknown key \"lrr\" (did you mean \"lr\"?)",
                "styles[0]: unknown key \"colour\"",
                "styles[0]: unknown key \"datset\" (did you mean \"dataset\"?)",
            ])
    }

    func testMissingAndMistypedStructure() {
        XCTAssertEqual(problems(#"{"defaults": {}}"#), [#"styles: missing: expected an array of {"name", "image", …}"#])
        XCTAssertEqual(problems(#"{"styles": {}}"#), ["styles: expected an array, got an object"])
        XCTAssertEqual(problems(#"{"styles": []}"#), ["styles: empty: nothing to train"])
        XCTAssertEqual(problems(#"{"defaults": 3, "styles": ["candy", {"image": "styles/candy.png"}, {"name": "b", "image": 7}]}"#), [
            "defaults: expected an object, got 3",
            "styles[0]: expected an object with \"name\" and \"image\", got \"candy\"",
            "styles[1].name: missing",
            "styles[2].image: expected a file path, got 7",
        ])
    }

    // MARK: - Style images

    func testMissingAndNonImageStyleFiles() {
        let found = problems("""
            {"styles": [{"name": "a", "image": "styles/candy.png"}, {"name": "b", "image": "styles/notes.png"},
                        {"name": "c", "image": "styles/broken.png"}, {"name": "wave", "image": "styles/wave.png"},
                        {"name": "d", "image": "styles/folder.png"}, {"name": "e"}]}
            """)
        XCTAssertEqual(found.count, 5, "\(found)")
        guard found.count == 5 else { return }
        XCTAssertEqual(found[0], "styles[1].image: not a JPEG or PNG image: configs/styles/notes.png")
        // PNG magic bytes, but the decoder rejects the rest
        XCTAssertTrue(found[1].hasPrefix("styles[2].image: corrupt image configs/styles/broken.png: "), found[1])
        XCTAssertEqual(found[2], "styles[3].image: file not found: configs/styles/wave.png")
        XCTAssertEqual(found[3], "styles[4].image: not a file: configs/styles/folder.png")
        XCTAssertEqual(found[4], "styles[5].image: missing")
    }

    // MARK: - Values

    func testNegativeAndInvalidValues() {
        XCTAssertEqual(problems("""
            {"defaults": {"image_size": -3, "batch_size": 0, "style_size": 4, "lr": -1, "epochs": "two",
                          "content_weight": -5, "seed": -1, "max_attempts": 0, "checkpoint_every": 2.5, "dataset": 5},
             "styles": [{"name": "a", "image": "styles/candy.png", "image_size": 30, "steps": 0, "max_images": -10}]}
            """), [
                "defaults.dataset: expected a dataset name (a string) or null, got 5",
                "defaults.image_size: must be a positive multiple of 4 (from 8 to 2048), got -3",
                "defaults.style_size: must be an integer from 8 to 2048, got 4",
                "defaults.batch_size: must be an integer from 1 to 64, got 0",
                "defaults.epochs: must be an integer from 1 to 10000, got \"two\"",
                "defaults.lr: must be a positive number, got -1",
                "defaults.content_weight: must be a non-negative number, got -5",
                "defaults.checkpoint_every: must be an integer from 1 to 100000000, got 2.5",
                "defaults.seed: must be a non-negative integer, got -1",
                "defaults.max_attempts: must be an integer from 1 to 20, got 0",
                "styles[0].image_size: must be a positive multiple of 4 (from 8 to 2048), got 30",
                "styles[0].max_images: must be an integer from 1 to 100000000 or null, got -10",
                "styles[0].steps: must be an integer from 1 to 100000000 or null, got 0",
            ])
    }

    // MARK: - Names

    func testPathCharactersAndDuplicateNames() {
        let found = problems("""
            {"styles": [{"name": "candy", "image": "styles/candy.png"}, {"name": "../evil", "image": "styles/candy.png"},
                        {"name": "a/b", "image": "styles/candy.png"}, {"name": ".hidden", "image": "styles/candy.png"},
                        {"name": "", "image": "styles/candy.png"}, {"name": "candy", "image": "styles/mosaic.png"},
                        {"name": "naïve", "image": "styles/candy.png"}]}
            """)
        XCTAssertEqual(found, [
            "styles[1].name: must not start with '.'",
            "styles[2].name: only letters, digits, '.', '_' and '-' are allowed, got \"a/b\"",
            "styles[3].name: must not start with '.'",
            "styles[4].name: must not be empty",
            "styles[5].name: duplicate name \"candy\" (also styles[0])",
            "styles[6].name: only letters, digits, '.', '_' and '-' are allowed, got \"naïve\"",
        ])
    }

    func testEveryProblemIsReportedAtOnce() {
        let found = problems("""
            {"defaults": {"lrr": 1, "image_size": -3},
             "styles": [{"name": "../x", "image": "styles/wave.png"}, {"name": "ok", "image": "styles/notes.png"}]}
            """)
        XCTAssertEqual(found.count, 5, "\(found)")
    }
}
