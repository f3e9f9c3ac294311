import CoordinatorAPI
import Foundation
import NSTModel
import XCTest

/// `orchestrator vgg fetch` against a local HTTP server, and `train` finding the file in the
/// torch hub cache by default. The served file is a torchvision-layout VGG16 state dict (the
/// NSTModel fixture `vgg-full.pth`: features.* and classifier.*), so the loader is exercised too.
final class VGGFetchTests: XCTestCase {
    var dir: URL!
    var server: StaticHTTPServer?
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("NSTModelTests/Fixtures/pth/vgg-full.pth")

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-vgg-fetch-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        server?.stop()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    var torchHome: URL { dir.appendingPathComponent("torch") }
    var checkpoints: URL { torchHome.appendingPathComponent("hub/checkpoints") }
    var target: URL { checkpoints.appendingPathComponent("vgg16-397923af.pth") }

    /// Runs the orchestrator with TORCH_HOME in `dir` and no NST_VGG16_WEIGHTS.
    func orchestrator(_ args: [String], torchHome: URL? = nil) throws -> (code: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = TrainCommandTests.binary
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: VGGSource.environmentKey)
        environment["TORCH_HOME"] = (torchHome ?? self.torchHome).path
        p.environment = environment
        let out = dir.appendingPathComponent("out-\(UUID().uuidString)"), err = dir.appendingPathComponent("err-\(UUID().uuidString)")
        _ = FileManager.default.createFile(atPath: out.path, contents: nil)
        _ = FileManager.default.createFile(atPath: err.path, contents: nil)
        p.standardOutput = try FileHandle(forWritingTo: out)
        p.standardError = try FileHandle(forWritingTo: err)
        try p.run()
        p.waitUntilExit()
        defer { try? FileManager.default.removeItem(at: out); try? FileManager.default.removeItem(at: err) }
        return (p.terminationStatus, try String(contentsOf: out, encoding: .utf8), try String(contentsOf: err, encoding: .utf8))
    }

    func serve(_ body: Data, cutAfter: Int? = nil) throws -> String {
        let s = try StaticHTTPServer(body: body, cutAfter: cutAfter)
        server = s
        return s.url("/models/vgg16-397923af.pth")
    }

    /// Everything in the checkpoints folder, hidden files included.
    func leftovers() -> [String] { ((try? FileManager.default.contentsOfDirectory(atPath: checkpoints.path)) ?? []).sorted() }

    func testFetchVerifiesRenamesAndTrainFindsTheFileByDefault() throws {
        // Given a server with the weights, and the prefix of their real SHA-256
        let body = try Data(contentsOf: Self.fixture)
        let sha = try FileDigest.sha256(of: Self.fixture).sha256
        let url = try serve(body)

        // When they are fetched into the torch hub cache
        let r = try orchestrator(["vgg", "fetch", "--url", url, "--hash-prefix", String(sha.prefix(10))])

        // Then the file is there, whole, under the URL's name, with nothing else beside it
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertEqual(try Data(contentsOf: target), body)
        XCTAssertEqual(leftovers(), ["vgg16-397923af.pth"])
        XCTAssertTrue(r.out.contains("downloaded vgg16-397923af.pth"), r.out)
        XCTAssertTrue(r.err.contains("100%") && r.err.contains("MB/s") && r.err.contains("ETA"), "a progress bar: \(r.err)")
        XCTAssertEqual(server?.requested, ["/models/vgg16-397923af.pth"])

        // A second fetch finds it valid and asks the server for nothing
        let again = try orchestrator(["vgg", "fetch", "--url", url, "--hash-prefix", String(sha.prefix(10))])
        XCTAssertEqual(again.code, 0, again.err)
        XCTAssertTrue(again.out.contains("already present and valid"), again.out)
        XCTAssertEqual(server?.requested.count, 1)

        // train, without --vgg-weights, loads it from there (torchvision's layout, classifier ignored)
        let data = dir.appendingPathComponent("data")
        _ = try SyntheticImages.writeDataset(to: data, count: 2, size: 16)
        try SyntheticImages.contentImage(index: 1, width: 16, height: 16).write(to: dir.appendingPathComponent("style.png"))
        let train = ["train", "--style", dir.appendingPathComponent("style.png").path, "--dataset", data.path,
                     "--out", dir.appendingPathComponent("m.safetensors").path, "--image-size", "16", "--style-size", "16",
                     "--batch-size", "2", "--steps", "1", "--threads", "1"]
        let t = try orchestrator(train)
        XCTAssertEqual(t.code, 0, t.err)
        XCTAssertTrue(t.err.contains("VGG16: \(target.path)"), t.err)
        XCTAssertFalse(t.err.contains("random"), t.err)

        // and says where it looked when the file is not there
        let elsewhere = dir.appendingPathComponent("empty-torch")
        let missing = try orchestrator(train, torchHome: elsewhere)
        XCTAssertEqual(missing.code, 1)
        XCTAssertTrue(missing.err.contains("no file at \(elsewhere.path)/hub/checkpoints/vgg16-397923af.pth"), missing.err)
        XCTAssertTrue(missing.err.contains("orchestrator vgg fetch"), missing.err)
    }

    func testAHashMismatchKeepsNothing() throws {
        // The default prefix is the one in the name, 397923af, which this file does not have
        let body = try Data(contentsOf: Self.fixture)
        XCTAssertFalse(try FileDigest.sha256(of: Self.fixture).sha256.hasPrefix("397923af"))
        let r = try orchestrator(["vgg", "fetch", "--url", try serve(body)])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains("does not start with 397923af"), r.err)
        XCTAssertTrue(r.err.contains("nothing saved"), r.err)
        XCTAssertEqual(leftovers(), [], "no file, no partial file")
    }

    func testACutDownloadKeepsNothingAndAnInvalidFileIsReplaced() throws {
        let body = try Data(contentsOf: Self.fixture)
        let sha = try FileDigest.sha256(of: Self.fixture).sha256
        let args = ["vgg", "fetch", "--url", try serve(body, cutAfter: body.count / 2), "--hash-prefix", String(sha.prefix(8))]
        let r = try orchestrator(args)
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains("was cut after") && r.err.contains("of \(body.count) bytes"), r.err)
        XCTAssertEqual(leftovers(), [])

        // A damaged file already there is downloaded again and replaced
        try Data("truncated".utf8).write(to: target)
        server?.stop()
        let url = try serve(body)
        let again = try orchestrator(["vgg", "fetch", "--url", url, "--hash-prefix", String(sha.prefix(8))])
        XCTAssertEqual(again.code, 0, again.err)
        XCTAssertTrue(again.err.contains("downloading it again"), again.err)
        XCTAssertEqual(try Data(contentsOf: target), body)
        XCTAssertEqual(leftovers(), ["vgg16-397923af.pth"])
    }
}
