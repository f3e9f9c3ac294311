import CoordinatorAPI
import Foundation
import XCTest

/// `orchestrator dataset pack` as a user runs it: twice over the same folder, then after a change.
final class DatasetPackCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-pack-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func run(_ args: [String]) throws -> CommandResult {
        try runCommand(TrainCommandTests.binary, args, environment: ProcessInfo.processInfo.environment, logDir: dir)
    }

    /// The value after `key: ` on the line that starts with it.
    func value(_ key: String, in text: String) -> String? {
        text.split(separator: "\n").first { $0.hasPrefix(key + ": ") }.map { String($0.dropFirst(key.count + 2)) }
    }

    func testPackTwiceHashesOnceThenAChangeMakesANewDigest() throws {
        let data = dir.appendingPathComponent("photos"), store = dir.appendingPathComponent("store")
        XCTAssertEqual(try run(["make-dataset", "--out", data.path, "--count", "12", "--size", "32"]).status, 0)
        try Data("nope".utf8).write(to: data.appendingPathComponent("bad.png"))
        let args = ["dataset", "pack", data.path, "--out", store.path, "--threads", "2"]

        let first = try run(args)
        XCTAssertEqual(first.status, 0, first.stderr)
        let digest = try XCTUnwrap(value("digest", in: first.stdout), first.stdout)
        XCTAssertTrue(JobConfig.isSHA256(digest))
        XCTAssertTrue(first.stdout.contains("name photos: 12 files"), first.stdout)
        XCTAssertTrue(first.stdout.contains("1 excluded, 1 shards (1 written, 0 reused)"), first.stdout)
        XCTAssertTrue(first.stdout.contains("scan: 13 files hashed"), first.stdout)
        XCTAssertTrue(first.stderr.contains("excluded bad.png: bad.png is not a JPEG or PNG image"), first.stderr)
        XCTAssertEqual(try FileDigest.sha256(of: store.appendingPathComponent("\(digest.prefix(2))/\(digest)")).sha256, digest)

        let second = try run(args)
        XCTAssertEqual(second.status, 0, second.stderr)
        XCTAssertEqual(value("digest", in: second.stdout), digest)
        XCTAssertTrue(second.stdout.contains("scan: 0 files hashed (0.0 MB), 13 from the cache, "), second.stdout)
        XCTAssertTrue(second.stdout.contains("(already stored)"), second.stdout)

        // One picture replaced: a new digest, only that file hashed, the old manifest kept
        let changed = data.appendingPathComponent("img_00003.jpg")
        try Data(contentsOf: data.appendingPathComponent("img_00002.jpg")).write(to: changed)
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: changed.path)
        let third = try run(args)
        XCTAssertEqual(third.status, 0, third.stderr)
        XCTAssertNotEqual(value("digest", in: third.stdout), digest)
        XCTAssertTrue(third.stdout.contains("scan: 1 files hashed"), third.stdout)
        XCTAssertTrue(FileManager.default.fileExists(atPath: store.appendingPathComponent("\(digest.prefix(2))/\(digest)").path))
    }
}
