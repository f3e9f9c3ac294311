import Foundation
@testable import NSTModel
import XCTest

/// Reading PyTorch `.pth` files written by torch.save (scripts/pth_fixtures.py): every tensor against
/// torch's own Float32 conversion, bit for bit, in the zip, legacy and protocol-4 variants; views and
/// shared storages; wrapped checkpoints; and the two networks loaded from .pth computing what
/// PyTorch computes with the same file.
final class TorchFileTests: XCTestCase {
    private let floatingKeys: Set<String> = ["f32", "f16", "f16_tail", "bf16", "f64", "scalar", "empty", "base",
                                             "column", "rows", "transposed", "strided", "expanded"]

    // MARK: - Tensor by tensor

    func testZipLegacyAndProtocol4FilesMatchTorchTensorByTensor() throws {
        let expected = try SafeTensors.read(contentsOf: PthFixture.url("dtypes.expected.safetensors"))
        XCTAssertEqual(Set(expected.tensors.keys), floatingKeys)
        let cases: [(String, TorchFile.Format)] = [("dtypes.pth", .zip), ("dtypes-legacy.pth", .legacy),
                                                   ("dtypes-protocol4.pth", .zip)]
        for (name, format) in cases {
            let file = try TorchFile.read(contentsOf: PthFixture.url(name))
            XCTAssertEqual(file.format, format, name)
            XCTAssertNil(file.wrapper, name)
            XCTAssertEqual(Set(file.weights.tensors.keys), floatingKeys, name)
            for (key, want) in expected.tensors {
                let got = try file.weights.require(key, shape: want.shape)
                XCTAssertEqual(bits(got), bits(want), "\(name): \(key)")
            }
            XCTAssertEqual(file.skipped, [SkippedTensor(name: "mask", dtype: "bool"),
                                          SkippedTensor(name: "num_batches_tracked", dtype: "int64")], name)
            XCTAssertEqual(file.weights.file, PthFixture.url(name).path)
        }
    }

    /// The same values derived by hand from the script (base = arange(12).reshape(3, 4) / 2 - 2), so a
    /// wrong expected file could not hide a wrong view.
    func testViewsOffsetsStridesAndExpandsByHand() throws {
        let w = try TorchFile.read(contentsOf: PthFixture.url("dtypes.pth")).weights
        let base: [Float] = (0..<12).map { Float($0) * 0.5 - 2 }
        XCTAssertEqual(try w.require("base", shape: [3, 4]).array, base)
        XCTAssertEqual(try w.require("column", shape: [3]).array, [base[1], base[5], base[9]])
        XCTAssertEqual(try w.require("rows", shape: [2, 4]).array, Array(base[4...]))
        XCTAssertEqual(try w.require("transposed", shape: [4, 3]).array,
                       (0..<4).flatMap { c in (0..<3).map { r in base[r * 4 + c] } })
        XCTAssertEqual(try w.require("strided", shape: [2, 2]).array, [base[0], base[3], base[8], base[11]])
        XCTAssertEqual(try w.require("expanded", shape: [2, 3]).array, [1, 2, 3, 1, 2, 3])
        XCTAssertEqual(try w.require("scalar", shape: []).array, [7.25])
        XCTAssertEqual(try w.require("empty", shape: [0, 3]).count, 0)
        let tail = try w.require("f16_tail", shape: [3])
        XCTAssertTrue(tail.data[0].isNaN)
        XCTAssertEqual(Array(tail.array[1...]).map(\.bitPattern), [(-0.0 as Float).bitPattern, Float(Float16(0.1)).bitPattern])
        XCTAssertEqual(try w.require("f64", shape: [3, 2]).array, [Float(1.0 / 3), .infinity, 0, -2.5, 0.1, 16777216])
    }

    func testWrappedCheckpointsAndParametersGiveTheStateDict() throws {
        let weight = (0..<8).map { Float($0) / 4 }
        for (name, wrapper) in [("wrapped-checkpoint.pth", "state_dict"), ("wrapped-model.pth", "model"),
                                ("parameters.pth", nil)] as [(String, String?)] {
            let file = try TorchFile.read(contentsOf: PthFixture.url(name))
            XCTAssertEqual(file.wrapper, wrapper, name)
            XCTAssertEqual(Set(file.weights.tensors.keys), ["conv.weight", "conv.bias"], name)
            XCTAssertEqual(try file.weights.require("conv.weight", shape: [2, 1, 2, 2]).array, weight, name)
            XCTAssertEqual(try file.weights.require("conv.bias", shape: [2]).array, [-1, 1], name)
        }
    }

    // MARK: - One entry point for every weights file

    func testWeightsFileTellsFormatsByContentAndReadsThemAll() throws {
        let expected = try SafeTensors.read(contentsOf: PthFixture.url("dtypes.expected.safetensors"))
        XCTAssertEqual(try WeightsFile.format(of: PthFixture.url("dtypes.pth")), .torchZip)
        XCTAssertEqual(try WeightsFile.format(of: PthFixture.url("dtypes-legacy.pth")), .torchLegacy)
        XCTAssertEqual(try WeightsFile.format(of: PthFixture.url("dtypes.expected.safetensors")), .safetensors)
        for name in ["dtypes.pth", "dtypes-legacy.pth", "dtypes.expected.safetensors"] {
            let read = try WeightsFile.read(contentsOf: PthFixture.url(name))
            XCTAssertEqual(Set(read.tensors.keys), floatingKeys, name)
            for (key, want) in expected.tensors { XCTAssertEqual(bits(read[key]), bits(want), "\(name): \(key)") }
        }
        let only = try WeightsFile.read(contentsOf: PthFixture.url("dtypes.expected.safetensors"), keys: ["base", "nope"])
        XCTAssertEqual(Array(only.tensors.keys), ["base"])
        // A safetensors file whose header length starts with 0x80 or "PK\3\4" is still safetensors.
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("WeightsFile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: folder) }
        for padding in 0..<8 {
            let url = folder.appendingPathComponent("p\(padding).safetensors")
            try SafeTensors.write([(String(repeating: "k", count: 60 + padding * 8), Tensor(shape: [1], values: [2]))], to: url)
            XCTAssertEqual(try WeightsFile.format(of: url), .safetensors)
            XCTAssertEqual(try WeightsFile.read(contentsOf: url).tensors.count, 1)
        }
        assertThrows(.unreadable(file: folder.appendingPathComponent("nope.pth").path, reason: "no such file")) {
            try WeightsFile.read(contentsOf: folder.appendingPathComponent("nope.pth"))
        }
    }

    // MARK: - The networks, loaded from .pth

    /// pytorch/examples style: module names as ours plus the deprecated in*.running_mean/var and
    /// num_batches_tracked keys, which neural_style.py deletes and our loader ignores.
    func testTransformerNetFromExamplesStylePthStylisesAsPyTorch() throws {
        let url = PthFixture.url("transformer.pth")
        let file = try TorchFile.read(contentsOf: url)
        XCTAssertNotNil(file.weights.tensors["in1.running_mean"], "the file has the deprecated keys")
        XCTAssertNotNil(file.weights.tensors["res5.in2.running_var"])
        XCTAssertEqual(file.skipped.count, 15, "one int64 num_batches_tracked per instance norm")
        XCTAssertTrue(file.skipped.allSatisfy { $0.name.hasSuffix(".num_batches_tracked") && $0.dtype == "int64" })

        let net = try TransformerNet(contentsOf: url)
        let expected = try SafeTensors.read(contentsOf: PthFixture.url("transformer.expected.safetensors"))
        assertFingerprints(net.parameters, expected)
        let y = net.forward(expected["x"])
        assertClose(y, expected["y"], 1e-4, "y")
        XCTAssertEqual(net.infer(expected["x"]).array, y.array)
    }

    /// As PyTorch 0.3 wrote pytorch/examples' pretrained models (candy.pth…): legacy format, tensors
    /// pickled with `_rebuild_tensor`, running_mean/var without num_batches_tracked.
    func testTransformerNetFromAPyTorch03StyleLegacyFile() throws {
        let old = try TorchFile.read(contentsOf: PthFixture.url("transformer-v1-legacy.pth"))
        XCTAssertEqual(old.format, .legacy)
        XCTAssertEqual(old.skipped, [])
        let current = try TorchFile.read(contentsOf: PthFixture.url("transformer.pth"))
        XCTAssertEqual(Set(old.weights.tensors.keys), Set(current.weights.tensors.keys))
        for (key, t) in current.weights.tensors { XCTAssertEqual(bits(old.weights[key]), bits(t), key) }
        let net = try TransformerNet(contentsOf: PthFixture.url("transformer-v1-legacy.pth"))
        let expected = try SafeTensors.read(contentsOf: PthFixture.url("transformer.expected.safetensors"))
        assertClose(net.forward(expected["x"]), expected["y"], 1e-4, "y")
    }

    /// torchvision's layout: features.0 … features.28 and classifier.*; only features[0:23] are used.
    func testVGG16FromTorchvisionStylePthIgnoresTheClassifier() throws {
        let url = PthFixture.url("vgg-full.pth")
        let keys = Set(try TorchFile.read(contentsOf: url).weights.tensors.keys)
        XCTAssertTrue(keys.isSuperset(of: ["classifier.0.weight", "classifier.6.bias", "features.28.weight"]))
        XCTAssertEqual(keys.count, 32, "13 convs and 3 linear layers, weight and bias each")
        let some: Set = ["features.0.weight", "features.21.bias", "classifier.6.weight"]
        XCTAssertEqual(Set(try TorchFile.read(contentsOf: url, keys: some).weights.tensors.keys), some)
        XCTAssertEqual(Set(try WeightsFile.read(contentsOf: url, keys: some).tensors.keys), some)

        let vgg = try VGG16(contentsOf: url)
        let expected = try SafeTensors.read(contentsOf: PthFixture.url("vgg.expected.safetensors"))
        assertFingerprints(vgg.parameters, expected)
        let taps = vgg.forward(expected["x"])
        for (t, name) in zip(taps, ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]) { assertClose(t, expected[name], 1e-4, name) }
        XCTAssertEqual(try VGGSource.file(url.path).load().parameters.map { $0.value.array }, vgg.parameters.map { $0.value.array },
                       "--vgg-weights and NST_VGG16_WEIGHTS go through the same reader")
    }

    /// 32 values at flat indices (j * (n - 1)) / 31, exactly, and the sum, as the script stores them.
    private func assertFingerprints(_ parameters: [Parameter], _ expected: SafeTensors,
                                    file: StaticString = #filePath, line: UInt = #line) {
        for p in parameters {
            let n = p.value.count
            let sample = (0..<32).map { p.value.data[($0 * (n - 1)) / 31] }
            XCTAssertEqual(sample.map(\.bitPattern), bits(expected["sample.\(p.name)"]), p.name, file: file, line: line)
            var sum = 0.0, magnitude = 0.0
            for i in 0..<n { sum += Double(p.value.data[i]); magnitude += abs(Double(p.value.data[i])) }
            XCTAssertEqual(sum, Double(expected["sum.\(p.name)"].data[0]), accuracy: 1e-6 * magnitude + 1e-6,
                           "sum of \(p.name)", file: file, line: line)
        }
    }

    // MARK: - Pickles that would run code

    func testPicklesThatCallFunctionsAreRefusedByName() throws {
        let cases = [("evil-os-system.pth", "posix.system"), ("evil-eval.pth", "__builtin__.eval"),
                     ("evil-legacy.pth", "posix.system"), ("whole-module.pth", "torch.nn.modules.conv.Conv2d")]
        for (name, global) in cases {
            let url = PthFixture.url(name)
            assertThrows(.forbiddenGlobal(file: url.path, global: global)) { try TorchFile.read(contentsOf: url) }
            assertThrows(.forbiddenGlobal(file: url.path, global: global)) { try TransformerNet(contentsOf: url) }
            assertThrows(.forbiddenGlobal(file: url.path, global: global)) { try VGG16(contentsOf: url) }
        }
        XCTAssertFalse(FileManager.default.fileExists(atPath: "/tmp/pth-fixture-pwned"))
        let message = WeightsError.forbiddenGlobal(file: "m.pth", global: "torch.nn.modules.conv.Conv2d").description
        XCTAssertTrue(message.hasPrefix("m.pth: refused: the pickle refers to torch.nn.modules.conv.Conv2d"), message)
        XCTAssertTrue(message.contains("model.state_dict()"), message)
        XCTAssertFalse(message.contains("\n"))
    }
}
