import APIClient
import CoordinatorTestSupport
import Foundation
import XCTest

/// Where the CLI and the worker find the coordinator and the token when not told.
final class ClientDefaultsTests: XCTestCase {
    func testTokenAndAddressDefaults() throws {
        let dir = try makeTempDir()
        defer { try? FileManager.default.removeItem(at: dir) }
        let file = dir.appendingPathComponent("token")
        try Data("  abc123\n".utf8).write(to: file)
        XCTAssertEqual(try CoordinatorDefaults.token(file: file.path, environment: ["ORCHESTRATOR_TOKEN": "env"]), "abc123")
        XCTAssertEqual(try CoordinatorDefaults.token(file: nil, environment: ["ORCHESTRATOR_TOKEN": "env"]), "env")
        XCTAssertNil(try CoordinatorDefaults.token(file: nil, environment: [:]))
        let empty = dir.appendingPathComponent("empty")
        try Data("\n".utf8).write(to: empty)
        XCTAssertThrowsError(try CoordinatorDefaults.token(file: empty.path, environment: [:])) { error in
            XCTAssertEqual(error as? TokenError, .empty(path: empty.path))
        }
        XCTAssertThrowsError(try CoordinatorDefaults.token(file: dir.appendingPathComponent("nope").path, environment: [:]))
        XCTAssertEqual(CoordinatorDefaults.address(environment: [:]), "127.0.0.1:7000")
        XCTAssertEqual(CoordinatorDefaults.address(environment: ["ORCHESTRATOR_COORDINATOR": "10.0.0.2:7100"]), "10.0.0.2:7100")
    }
}
