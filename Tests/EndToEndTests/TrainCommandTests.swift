import Foundation
import NSTModel
import XCTest

/// `orchestrator train`, `stylize` and `make-dataset` as a user runs them: the real executable,
/// real image files, exit codes and messages.
final class TrainCommandTests: XCTestCase {
    var dir: URL!
    static let binary = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent(".build/debug/orchestrator")

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: Self.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-train-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    /// Runs the orchestrator with `args`; returns exit code, stdout and stderr.
    func orchestrator(_ args: [String], env: [String: String] = [:], unset: [String] = []) throws -> (code: Int32, out: String, err: String) {
        let p = Process()
        p.executableURL = Self.binary
        p.arguments = args
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: VGGSource.environmentKey)
        // No torch hub file of this machine's (VGGSource's default) may stand in for the weights.
        environment["TORCH_HOME"] = dir.appendingPathComponent("torch-home").path
        for key in unset { environment.removeValue(forKey: key) }
        environment.merge(env) { $1 }
        p.environment = environment
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        try p.run()
        let o = out.fileHandleForReading.readDataToEndOfFile(), e = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: o, as: UTF8.self), String(decoding: e, as: UTF8.self))
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func makeData() throws {
        let r = try orchestrator(["make-dataset", "--out", path("data"), "--count", "5", "--size", "16"])
        XCTAssertEqual(r.code, 0, r.err)
        try SyntheticImages.contentImage(index: 3, width: 40, height: 30, seed: 9).write(to: dir.appendingPathComponent("style.png"))
    }

    func testTrainsLogsLossesSkipsBadFilesAndStylizes() throws {
        try makeData()
        try Data("hello".utf8).write(to: dir.appendingPathComponent("data/readme.png"))
        try Data(repeating: 0xFF, count: 40).write(to: dir.appendingPathComponent("data/broken.jpg"))
        let r = try orchestrator(["train", "--style", path("style.png"), "--dataset", path("data"), "--out", path("model.safetensors"),
                                  "--random-vgg", "--image-size", "16", "--style-size", "16", "--batch-size", "2", "--steps", "4",
                                  "--threads", "1", "--loss-log", path("losses.csv"),
                                  "--checkpoint-every", "2", "--checkpoint-dir", path("ckpt")])
        XCTAssertEqual(r.code, 0, r.err)
        XCTAssertTrue(r.err.contains("random VGG16"), "a run on a random VGG16 says so: \(r.err)")
        XCTAssertTrue(r.err.contains("2 unreadable files skipped"), r.err)
        let rows = try String(contentsOfFile: path("losses.csv"), encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(rows.first, "step,images,content,style,total")
        // Sorted: broken.jpg img_00000 | img_00001 img_00002 | img_00003 img_00004 | readme.png:
        // step 4's batch has no readable image, so it trains nothing and logs no row.
        XCTAssertEqual(rows.dropFirst().map { $0.split(separator: ",")[0] }, ["1", "2", "3"])
        XCTAssertEqual(rows.dropFirst().map { $0.split(separator: ",")[1] }, ["1", "3", "5"], "images seen")
        for row in rows.dropFirst() {
            let f = row.split(separator: ",").map { Double($0)! }
            XCTAssertEqual(f[4], f[2] + f[3], accuracy: 1e-6 * f[4])
        }
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("ckpt/step-000002.safetensors")))
        XCTAssertTrue(FileManager.default.fileExists(atPath: path("ckpt/step-000004.safetensors")))
        let s = try orchestrator(["stylize", "--model", path("model.safetensors"), "--content", path("style.png"), "--output", path("out.png"),
                                  "--raw-output", path("raw.safetensors")])
        XCTAssertEqual(s.code, 0, s.err)
        let out = try RGBImage(contentsOf: dir.appendingPathComponent("out.png"))
        XCTAssertEqual([out.width, out.height], [40, 32], "30 rows: 15, 8 after the stride-2 convs, 32 after upsampling, as in PyTorch")
        // The raw tensors: the input is the image's pixels; the output, clamped and truncated, is the PNG.
        let raw = try SafeTensors.read(contentsOf: dir.appendingPathComponent("raw.safetensors"))
        let style = try RGBImage(contentsOf: dir.appendingPathComponent("style.png"))
        let x = try XCTUnwrap(raw.tensors["input"]), y = try XCTUnwrap(raw.tensors["output"])
        XCTAssertEqual(x.shape, [1, 3, style.height, style.width])
        XCTAssertEqual(y.shape, [1, 3, 32, 40])
        let expectedInput = Tensor(shape: x.shape)
        style.writeCHW(to: expectedInput.data)
        XCTAssertEqual(x.array, expectedInput.array)
        XCTAssertEqual(RGBImage(chw: y.data, width: 40, height: 32), out)
    }

    /// `bench --json`: PyTorch's keys, and the process re-executed itself with OpenBLAS's idle
    /// threads told not to spin, unless the user chose a value.
    func testBenchJSONAndTheBLASThreadTimeout() throws {
        let args = ["bench", "--json", "--steps", "1", "--image-size", "32", "--batch-size", "1", "--infer", "32"]
        func run(_ extra: [String] = [], env: [String: String] = [:]) throws -> [String: Any] {
            let r = try orchestrator(args + extra, env: env, unset: env.isEmpty ? ["OPENBLAS_THREAD_TIMEOUT"] : [])
            XCTAssertEqual(r.code, 0, r.err)
            return try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.out.utf8)) as? [String: Any], r.out)
        }
        let plain = try run()
        for key in ["train_step_s_median", "train_step_s_min", "images_per_s", "infer_s", "infer_px", "threads", "size", "batch", "peak_rss_gib"] {
            XCTAssertNotNil(plain[key], "torch_reference.py bench's key \(key)")
        }
        XCTAssertEqual(plain["blas_thread_timeout"] as? String, "4")
        XCTAssertEqual(plain["winograd"] as? Bool, true)
        let chosen = try run(["--no-winograd"], env: ["OPENBLAS_THREAD_TIMEOUT": "9"])
        XCTAssertEqual(chosen["blas_thread_timeout"] as? String, "9", "the user's value is kept")
        XCTAssertEqual(chosen["winograd"] as? Bool, false)
    }

    func testMissingVGGWeightsSayHowToGetThem() throws {
        try makeData()
        let r = try orchestrator(["train", "--style", path("style.png"), "--dataset", path("data"), "--out", path("m.safetensors")])
        XCTAssertNotEqual(r.code, 0)
        XCTAssertTrue(r.err.contains("no VGG16 weights"), r.err)
        XCTAssertTrue(r.err.contains("NST_VGG16_WEIGHTS"), r.err)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("m.safetensors")))
    }

    func testMalformedWeightsFilesEndWithAClearMessage() throws {
        try makeData()
        try Data([1, 2, 3]).write(to: dir.appendingPathComponent("tiny.safetensors"))
        var header = Data()
        var n = UInt64(1000).littleEndian
        withUnsafeBytes(of: &n) { header.append(contentsOf: $0) }
        header.append(Data("{\"a\": 1}".utf8))
        try header.write(to: dir.appendingPathComponent("cut.safetensors"))
        let cases: [(flag: String, file: String, expect: String)] = [
            ("--vgg-weights", "tiny.safetensors", "too short"),
            ("--vgg-weights", "cut.safetensors", "runs past the end"),
            ("--vgg-weights", "nothing.safetensors", "no such file"),
            ("--init", "tiny.safetensors", "too short"),
        ]
        for c in cases {
            var args = ["train", "--style", path("style.png"), "--dataset", path("data"), "--out", path("m.safetensors"),
                        "--image-size", "16", "--steps", "1", c.flag, path(c.file)]
            if c.flag == "--init" { args.append("--random-vgg") }
            let r = try orchestrator(args)
            XCTAssertEqual(r.code, 1, "\(c)")
            XCTAssertTrue(r.err.contains(c.file) && r.err.contains(c.expect), "\(c): \(r.err)")
            let errors = r.err.split(separator: "\n").filter { $0.hasPrefix("Error: ") }
            XCTAssertEqual(errors.count, 1, "one error line: \(r.err)")
            XCTAssertTrue(errors.first?.contains(c.expect) == true, r.err)
        }
        // A model with a tensor of the wrong shape is named with the key and both shapes.
        let net = TransformerNet(seed: 1)
        var tensors = net.namedTensors
        tensors[0] = (name: "conv1.conv2d.weight", tensor: Tensor(shape: [32, 3, 3, 3]))
        try SafeTensors.write(tensors, to: dir.appendingPathComponent("shape.safetensors"))
        let r = try orchestrator(["stylize", "--model", path("shape.safetensors"), "--content", path("style.png"), "--output", path("o.png")])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains("conv1.conv2d.weight has shape [32, 3, 3, 3], expected [32, 3, 9, 9]"), r.err)
    }

    func testMissingDatasetAndStyleAreNamed() throws {
        try makeData()
        var r = try orchestrator(["train", "--style", path("style.png"), "--dataset", path("nope"), "--out", path("m.safetensors"), "--random-vgg"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains(path("nope")), r.err)
        r = try orchestrator(["train", "--style", path("data"), "--dataset", path("data"), "--out", path("m.safetensors"), "--random-vgg"])
        XCTAssertEqual(r.code, 1)
        XCTAssertTrue(r.err.contains(path("data")), r.err)
    }
}
