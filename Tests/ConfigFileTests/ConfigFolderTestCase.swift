import ConfigFile
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import XCTest

/// A temporary `configs/` folder holding `styles/wave.png` and `styles/ink.png`, and a styles
/// config's parse and problems from text (the sweep and auto-weight tests).
class ConfigFolderTestCase: XCTestCase {
    var root: URL!
    var configs: URL!

    override func setUpWithError() throws {
        root = try makeTempDir()
        configs = root.appendingPathComponent("configs", isDirectory: true)
        try FileManager.default.createDirectory(at: configs.appendingPathComponent("styles"), withIntermediateDirectories: true)
        try makePNG(width: 16, height: 16, seed: 1).write(to: configs.appendingPathComponent("styles/wave.png"))
        try makePNG(width: 16, height: 16, seed: 2).write(to: configs.appendingPathComponent("styles/ink.png"))
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: root) }

    func parse(_ text: String) throws -> StylesConfig {
        try StylesConfig.parse(Data(text.utf8), file: "c.json", baseDirectory: configs)
    }

    /// The problems reported for `text` (fails if it parses).
    func problems(_ text: String, file: StaticString = #filePath, line: UInt = #line) -> [String] {
        do {
            _ = try parse(text)
            XCTFail("expected problems", file: file, line: line)
        } catch let error as StylesConfigError { return error.problems } catch { XCTFail("\(error)", file: file, line: line) }
        return []
    }
}
