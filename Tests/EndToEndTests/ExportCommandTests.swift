import Foundation
import NSTModel
import XCTest

/// `orchestrator export` as a user runs it: the real executable, real files, exit codes and the
/// one-line error naming the file.
final class ExportCommandTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-export-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func orchestrator(_ args: [String]) throws -> (code: Int32, err: String) {
        let p = Process()
        p.executableURL = TrainCommandTests.binary
        p.arguments = args
        let err = Pipe()
        p.standardOutput = FileHandle.nullDevice
        p.standardError = err
        try p.run()
        let e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: e, as: UTF8.self))
    }

    func testExportsTheModelAsTheLibraryWritesIt() throws {
        let net = TransformerNet(seed: 4)
        try net.save(to: dir.appendingPathComponent("model.safetensors"))
        let r = try orchestrator(["export", "--model", path("model.safetensors"), "--onnx", path("model.onnx")])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("wrote \(path("model.onnx")) (ONNX opset 17"), r.err)
        let written = [UInt8](try Data(contentsOf: dir.appendingPathComponent("model.onnx")))
        XCTAssertEqual(written, net.onnxModel(source: "model.safetensors").serialized())

        let raw = try orchestrator(["export", "--model", path("model.safetensors"), "--onnx", path("raw.onnx"), "--no-clip"])
        XCTAssertEqual(raw.code, 0, raw.err)
        let rawBytes = [UInt8](try Data(contentsOf: dir.appendingPathComponent("raw.onnx")))
        XCTAssertEqual(rawBytes, net.onnxModel(clipOutput: false, source: "model.safetensors").serialized())
    }

    func testMissingOrCorruptModelEndsWithOneLineNamingTheFile() throws {
        try Data("not a safetensors file".utf8).write(to: dir.appendingPathComponent("corrupt.safetensors"))
        try SafeTensors.write([("conv1.conv2d.weight", Tensor(shape: [32, 3, 9, 9]))], to: dir.appendingPathComponent("partial.safetensors"))
        let cases: [(file: String, expect: String)] = [
            ("nothing.safetensors", "no such file"),
            ("corrupt.safetensors", "bad safetensors header"),
            ("partial.safetensors", "missing key conv1.conv2d.bias"),
        ]
        for c in cases {
            let r = try orchestrator(["export", "--model", path(c.file), "--onnx", path("out.onnx")])
            XCTAssertEqual(r.code, 1, "\(c)")
            let lines = r.err.split(separator: "\n")
            XCTAssertEqual(lines.count, 1, "one line: \(r.err)")
            XCTAssertTrue(lines.first?.hasPrefix("Error: \(path(c.file)): ") == true, r.err)
            XCTAssertTrue(r.err.contains(c.expect), "\(c): \(r.err)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: path("out.onnx")), "nothing written")
        }
    }

    func testUnwritableOutputIsNamed() throws {
        try TransformerNet(seed: 4).save(to: dir.appendingPathComponent("model.safetensors"))
        let target = path("missing-folder/model.onnx")
        let r = try orchestrator(["export", "--model", path("model.safetensors"), "--onnx", target])
        XCTAssertEqual(r.code, 1)
        XCTAssertEqual(r.err.split(separator: "\n").count, 1, r.err)
        XCTAssertTrue(r.err.hasPrefix("Error: \(target): cannot write the ONNX model: "), r.err)
    }
}
