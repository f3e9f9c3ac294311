import Foundation
import NSTModel
import XCTest

/// `orchestrator convert` as a user runs it: the real executable on the .pth fixtures written by
/// torch.save (scripts/pth_fixtures.py).
final class ConvertCommandTests: XCTestCase {
    var dir: URL!
    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("NSTModelTests/Fixtures/pth")

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-convert-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    private func convert(_ args: [String]) throws -> CommandResult {
        try runCommand(TrainCommandTests.binary, ["convert"] + args, environment: ProcessInfo.processInfo.environment,
                       logDir: dir)
    }

    func testConvertsATorchFileToSafetensorsTensorByTensor() throws {
        let out = dir.appendingPathComponent("dtypes.safetensors")
        let r = try convert([Self.fixtures.appendingPathComponent("dtypes-legacy.pth").path, out.path])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("(PyTorch legacy) to \(out.path): 13 tensors, 78 floats (312 bytes of F32)"), r.stdout)
        XCTAssertTrue(r.stdout.contains("left out 2 non-floating tensors: mask (bool), num_batches_tracked (int64)"), r.stdout)

        let written = try SafeTensors.read(contentsOf: out)
        let expected = try SafeTensors.read(contentsOf: Self.fixtures.appendingPathComponent("dtypes.expected.safetensors"))
        XCTAssertEqual(Set(written.tensors.keys), Set(expected.tensors.keys))
        for (key, want) in expected.tensors {
            let got = try written.require(key, shape: want.shape)
            XCTAssertEqual(got.array.map { $0.isNaN ? 0x7FC0_0000 : $0.bitPattern },
                           want.array.map { $0.isNaN ? 0x7FC0_0000 : $0.bitPattern }, key)
        }
        XCTAssertTrue(r.stdout.contains("file \(try Data(contentsOf: out).count) bytes"), r.stdout)

        // The converted TransformerNet loads as the .pth does.
        let net = dir.appendingPathComponent("net.safetensors")
        let n = try convert([Self.fixtures.appendingPathComponent("transformer.pth").path, net.path])
        XCTAssertEqual(n.status, 0, n.stderr)
        let fromPth = try TransformerNet(contentsOf: Self.fixtures.appendingPathComponent("transformer.pth"))
        let fromSafetensors = try TransformerNet(contentsOf: net)
        XCTAssertEqual(fromSafetensors.parameters.map { $0.value.array }, fromPth.parameters.map { $0.value.array })
    }

    func testBadInputsExitNonZeroWithOneLine() throws {
        let evil = Self.fixtures.appendingPathComponent("evil-os-system.pth").path
        let out = dir.appendingPathComponent("x.safetensors")
        let r = try convert([evil, out.path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertEqual(r.stderr.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").count, 1, r.stderr)
        XCTAssertTrue(r.stderr.contains("\(evil): refused: the pickle refers to posix.system"), r.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), "nothing is written")

        let garbage = dir.appendingPathComponent("garbage.pth")
        try Data("PK\u{3}\u{4} not really a zip".utf8).write(to: garbage)
        let g = try convert([garbage.path, out.path])
        XCTAssertNotEqual(g.status, 0)
        XCTAssertTrue(g.stderr.contains("\(garbage.path): bad PyTorch file: not a readable zip archive"), g.stderr)

        let missing = try convert([dir.appendingPathComponent("nope.pth").path, out.path])
        XCTAssertNotEqual(missing.status, 0)
        XCTAssertTrue(missing.stderr.contains("nope.pth: cannot read: no such file"), missing.stderr)
    }
}
