import Foundation
import NSTModel
import XCTest

/// Reading and writing safetensors files: round trips, files written by Python's
/// `safetensors.torch.save_file` (scripts/make_safetensors_fixtures.py), and every malformed input
/// we can think of, each made as a real file in a temporary folder.
final class SafeTensorsTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("SafeTensorsTests-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws {
        try? FileManager.default.removeItem(at: folder)
    }

    // MARK: - Round trips

    func testRoundTripKeepsShapesValuesAndMetadata() throws {
        var rng = SplitMix64(seed: 42)
        let shapes: [String: [Int]] = ["conv1.weight": [4, 3, 5, 5], "conv1.bias": [4], "scalar": [],
                                       "empty": [0, 3], "one": [1, 1, 1]]
        var tensors: [(name: String, tensor: Tensor)] = []
        for (name, shape) in shapes.sorted(by: { $0.key > $1.key }) {
            let t = Tensor(shape: shape)
            rng.fillUniform(t, bound: 3)
            tensors.append((name, t))
        }
        tensors[0].tensor.data[0] = -.infinity
        let metadata = ["format": "pt", "note": "é \"quoted\" back\\slash\nnew line\u{1}", "empty": ""]
        let url = folder.appendingPathComponent("round.safetensors")

        try SafeTensors.write(tensors, metadata: metadata, to: url)
        let read = try SafeTensors.read(contentsOf: url)

        XCTAssertEqual(read.file, url.path)
        XCTAssertEqual(read.metadata, metadata)
        XCTAssertEqual(Set(read.tensors.keys), Set(shapes.keys))
        for (name, original) in tensors {
            let copy = try read.require(name, shape: original.shape)
            XCTAssertEqual(copy.array.map(\.bitPattern), original.array.map(\.bitPattern), name)
        }
        XCTAssertEqual(read.tensors["scalar"]?.count, 1)
        XCTAssertEqual(read.tensors["empty"]?.count, 0)

        // The header is padded to 8 bytes and the data is laid out by name, right after it.
        let bytes = try Data(contentsOf: url)
        let headerLength = bytes.prefix(8).enumerated().reduce(0) { $0 | Int($1.element) << (8 * $1.offset) }
        XCTAssertEqual(headerLength % 8, 0)
        XCTAssertEqual(bytes.count, 8 + headerLength + 4 * (4 * 3 * 5 * 5 + 4 + 1 + 0 + 1))
        let firstValue = bytes.subdata(in: (8 + headerLength) ..< (12 + headerLength)).withUnsafeBytes { $0.load(as: Float.self) }
        XCTAssertEqual(firstValue, read.tensors["conv1.bias"]!.data[0], "conv1.bias sorts first")
        XCTAssertEqual(try read.data(), bytes, "data() is the same image write() produces")
    }

    func testWriteReplacesTheFileAndLeavesNoTemporaryFiles() throws {
        let url = folder.appendingPathComponent("w.safetensors")
        try SafeTensors.write([("a", Tensor(shape: [2], values: [1, 2]))], to: url)
        try SafeTensors.write([("a", Tensor(shape: [3], values: [4, 5, 6]))], metadata: ["v": "2"], to: url)

        let read = try SafeTensors.read(contentsOf: url)
        XCTAssertEqual(try read.require("a", shape: [3]).array, [4, 5, 6])
        XCTAssertEqual(read.metadata, ["v": "2"])
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["w.safetensors"])
    }

    func testWriterMatchesPythonByteForByte() throws {
        let python = try Data(contentsOf: fixture("python_f32_plain"))
        let read = try SafeTensors.read(contentsOf: fixture("python_f32_plain"))
        let url = folder.appendingPathComponent("again.safetensors")
        try read.write(to: url)
        XCTAssertEqual(try Data(contentsOf: url), python)
    }

    // MARK: - Files written by Python

    func testReadsPythonFileWithExactValuesAndMetadata() throws {
        let st = try SafeTensors.read(contentsOf: fixture("python_f32"))
        XCTAssertEqual(st.metadata, ["format": "pt", "source": "make_safetensors_fixtures.py", "note": "é \"quoted\""])
        XCTAssertEqual(Set(st.tensors.keys), ["conv1.conv2d.weight", "in1.bias", "scale", "empty"])

        let conv = try st.require("conv1.conv2d.weight", shape: [2, 3, 3, 3])
        XCTAssertEqual(conv.array, (0..<54).map { Float($0) * 0.25 - 3 })
        let awkward: [Double] = [1.0 / 3.0, -0.1, 1e-38, 3.4e38, -0.0, 1e-45, 7.0]
        XCTAssertEqual(try st.require("in1.bias", shape: [7]).array.map(\.bitPattern), awkward.map { Float($0).bitPattern })
        XCTAssertEqual(try st.require("scale", shape: []).array, [2.5])
        XCTAssertEqual(try st.require("empty", shape: [0, 4]).count, 0)
    }

    func testConvertsF64F16AndBF16ExactlyAsTorchDoes() throws {
        let st = try SafeTensors.read(contentsOf: fixture("python_dtypes"))
        for name in ["f64", "f16", "bf16"] {
            let converted = try st.require(name, shape: [13, 1])
            let torch = try st.require(name + "_as_f32", shape: [13, 1])
            // Bit for bit, except NaN: torch's CPU F16 path turns 0x7E00 into 0x7FFFFFFF, not
            // IEEE's 0x7FC00000; any NaN is fine for weights.
            let bits = { (x: Float) in x.isNaN ? Float.nan.bitPattern : x.bitPattern }
            XCTAssertEqual(converted.array.map(bits), torch.array.map(bits), name)
        }
        // Spot checks that the fixture covers what it should: F16 overflow, subnormal and NaN.
        let f16 = try st.require("f16", shape: [13, 1]).array
        XCTAssertEqual(f16[5], .infinity)
        XCTAssertEqual(f16[6], 0x1p-24, "6e-8 is the smallest F16 subnormal")
        XCTAssertTrue(f16[12].isNaN)
    }

    func testPythonI64TensorIsUnsupported() {
        let url = fixture("python_i64")
        XCTAssertEqual(readError(url), .unsupportedDType(file: url.path, key: "bn.num_batches_tracked", dtype: "I64"))
    }

    // MARK: - require / load

    func testRequireAndLoad() throws {
        let url = folder.appendingPathComponent("model.safetensors")
        try SafeTensors.write([("w", Tensor(shape: [2, 2], values: [1, 2, 3, 4]))], to: url)
        let st = try SafeTensors.read(contentsOf: url)

        let into = Tensor(shape: [2, 2])
        try st.load("w", into: into)
        XCTAssertEqual(into.array, [1, 2, 3, 4])

        XCTAssertEqual(catching { _ = try st.require("features.0.weight", shape: [2, 2]) },
                       .missingKey(file: url.path, key: "features.0.weight"))
        let wrong = catching { _ = try st.require("w", shape: [4]) }
        XCTAssertEqual(wrong, .wrongShape(file: url.path, key: "w", expected: [4], found: [2, 2]))
        XCTAssertEqual(wrong?.description, "\(url.path): tensor w has shape [2, 2], expected [4]")
        XCTAssertEqual(catching { try st.load("w", into: Tensor(shape: [1, 4])) },
                       .wrongShape(file: url.path, key: "w", expected: [1, 4], found: [2, 2]))
        XCTAssertEqual(catching { try st.load("nope", into: into) }?.description, "\(url.path): missing key nope")
    }

    // MARK: - Unreadable and truncated files

    func testMissingFileAndDirectoryAreUnreadable() throws {
        let missing = folder.appendingPathComponent("missing.safetensors")
        XCTAssertEqual(readError(missing), .unreadable(file: missing.path, reason: "no such file"))
        let directory = folder.appendingPathComponent("dir.safetensors")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: false)
        XCTAssertEqual(readError(directory), .unreadable(file: directory.path, reason: "is a directory"))
    }

    func testCutFileIsTruncated() throws {
        let url = folder.appendingPathComponent("cut.safetensors")
        try SafeTensors.write([("a", Tensor(shape: [10])), ("b", Tensor(shape: [3]))], to: url)
        let whole = try Data(contentsOf: url)
        try whole.prefix(whole.count - 3).write(to: url)
        XCTAssertEqual(readError(url), .truncated(file: url.path, expectedBytes: whole.count, actualBytes: whole.count - 3))
    }

    // MARK: - Bad headers

    func testTooShortFilesAndBadHeaderLengths() throws {
        assertBadHeader(try raw("empty", bytes: []), mentions: "0 bytes")
        assertBadHeader(try raw("three", bytes: [1, 2, 3]), mentions: "3 bytes")
        assertBadHeader(try raw("huge", header: "{}", length: .max), mentions: "100 MB")
        assertBadHeader(try raw("past", header: "{}", length: 200), mentions: "past the end")
        assertBadHeader(try raw("tiny", header: "{}", length: 1), mentions: "minimum")
    }

    func testHeaderThatIsNotAJSONObject() throws {
        assertBadHeader(try raw("notjson", header: "{\"a\": nope"), mentions: "not valid JSON")
        assertBadHeader(try raw("array", header: "[1, 2, 3]"), mentions: "not an object")
        assertBadHeader(try raw("badutf8", bytes: header8([0x7B, 0x22, 0xFF, 0xFE, 0x22, 0x3A, 0x31, 0x7D])),  // {"\xFF\xFE":1}
                        mentions: "not valid UTF-8")
    }

    func testBadEntries() throws {
        let f32 = #""dtype":"F32","shape":[2]"#
        assertBadHeader(try raw("nooffsets", header: "{\"a\":{\(f32)}}", buffer: 8), mentions: "tensor a: no data_offsets")
        assertBadHeader(try raw("nodtype", header: #"{"a":{"shape":[2],"data_offsets":[0,8]}}"#, buffer: 8), mentions: "no dtype")
        assertBadHeader(try raw("notobject", header: #"{"a":[1,2]}"#), mentions: "tensor a: the entry is not an object")
        assertBadHeader(try raw("floatshape", header: #"{"a":{"dtype":"F32","shape":[2.5],"data_offsets":[0,8]}}"#, buffer: 8),
                        mentions: "shape must be a list of integers")
        assertBadHeader(try raw("dtypeint", header: #"{"a":{"dtype":4,"shape":[2],"data_offsets":[0,8]}}"#, buffer: 8),
                        mentions: "dtype must be a string")
        assertBadHeader(try raw("negdim", header: #"{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}"#, buffer: 8),
                        mentions: "negative dimension")
        assertBadHeader(try raw("reversed", header: "{\"a\":{\(f32),\"data_offsets\":[8,0]}}", buffer: 8), mentions: "reversed")
        assertBadHeader(try raw("threeoffsets", header: "{\"a\":{\(f32),\"data_offsets\":[0,4,8]}}", buffer: 8), mentions: "[begin, end]")
        assertBadHeader(try raw("badmeta", header: #"{"__metadata__":{"k":1}}"#), mentions: "__metadata__")
        assertBadHeader(try raw("overflow", header: #"{"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}}"#,
                                buffer: 8), mentions: "too large")
    }

    func testOffsetsThatDoNotFitTheShapeOrOverlap() throws {
        assertBadHeader(try raw("mismatch", header: #"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, buffer: 8),
                        mentions: "span 8 bytes but F32 [3] needs 12")
        let overlapping = #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#
        assertBadHeader(try raw("overlap", header: overlapping, buffer: 12), mentions: "overlap")
        let beyond = try raw("beyond", header: #"{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, buffer: 8)
        let headerBytes = try Data(contentsOf: beyond).count - 8 - 8
        XCTAssertEqual(readError(beyond), .truncated(file: beyond.path, expectedBytes: 8 + headerBytes + 16, actualBytes: 8 + headerBytes + 8))
    }

    func testIntegerDTypeIsUnsupported() throws {
        let url = try raw("i64", header: #"{"step":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}}"#, buffer: 8)
        let error = readError(url)
        XCTAssertEqual(error, .unsupportedDType(file: url.path, key: "step", dtype: "I64"))
        XCTAssertTrue(error?.description.hasPrefix(url.path + ": tensor step has unsupported dtype I64") ?? false)
    }

    // MARK: - Write failures

    func testWriteFailuresLeaveTheTargetUntouched() throws {
        let url = folder.appendingPathComponent("keep.safetensors")
        try SafeTensors.write([("a", Tensor(shape: [1], values: [9]))], to: url)
        let before = try Data(contentsOf: url)
        let t = Tensor(shape: [1])

        let duplicate = catching { try SafeTensors.write([("x", t), ("x", t)], to: url) }
        XCTAssertEqual(duplicate, .writeFailed(file: url.path, reason: "duplicate tensor name x"))
        XCTAssertEqual(catching { try SafeTensors.write([("__metadata__", t)], to: url) }?.file, url.path)
        XCTAssertEqual(try Data(contentsOf: url), before)

        let nowhere = folder.appendingPathComponent("no/such/folder/w.safetensors")
        guard case .writeFailed(let file, let reason)? = catching({ try SafeTensors.write([("a", t)], to: nowhere) }) else {
            return XCTFail("expected writeFailed")
        }
        XCTAssertEqual(file, nowhere.path)
        XCTAssertTrue(reason.contains("No such file"), reason)
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: folder.path), ["keep.safetensors"])
    }

    // MARK: - Fuzz

    /// Corrupts a valid file at 200 seeded places (byte flips, mostly in the header, and cuts):
    /// reading must either succeed with self-consistent tensors or throw, never crash.
    func testCorruptedFilesNeverCrash() throws {
        let url = folder.appendingPathComponent("fuzz.safetensors")
        try SafeTensors.write([("conv.weight", Tensor(shape: [2, 1, 2, 2], values: (0..<8).map(Float.init))),
                               ("conv.bias", Tensor(shape: [2], values: [0.5, -0.5])), ("s", Tensor(shape: []))],
                              metadata: ["format": "pt"], to: url)
        let valid = try Data(contentsOf: url)
        let headerEnd = 8 + Int(valid[0]) + Int(valid[1]) << 8
        var rng = SplitMix64(seed: 2024)
        var outcomes = (ok: 0, failed: 0)
        for i in 0..<200 {
            var bytes = [UInt8](valid)
            let position = Int(rng.next() % UInt64(i % 4 == 0 ? bytes.count : headerEnd))
            switch i % 5 {
            case 0: bytes.removeLast(bytes.count - position)
            case 1: bytes[position] = UInt8(truncatingIfNeeded: rng.next())
            default: bytes[position] ^= 1 << UInt8(rng.next() % 8)
            }
            do {
                let st = try SafeTensors.read(data: Data(bytes), file: "fuzz-\(i)")
                for tensor in st.tensors.values { XCTAssertEqual(tensor.count, tensor.shape.reduce(1, *)) }
                outcomes.ok += 1
            } catch {
                XCTAssertEqual(error.file, "fuzz-\(i)")
                XCTAssertTrue(error.description.hasPrefix("fuzz-\(i): "), error.description)
                outcomes.failed += 1
            }
        }
        XCTAssertGreaterThan(outcomes.ok, 10, "some corruptions (data bytes, JSON spaces) are harmless")
        XCTAssertGreaterThan(outcomes.failed, 100)
    }

    // MARK: - Helpers

    private func fixture(_ name: String) -> URL {
        Bundle.module.resourceURL!.appendingPathComponent("Fixtures/safetensors/\(name).safetensors")
    }

    /// The error `body` throws; a non-`WeightsError` fails the test.
    private func catching(_ body: () throws -> Void, line: UInt = #line) -> WeightsError? {
        do { try body() } catch let error as WeightsError { return error } catch {
            XCTFail("not a WeightsError: \(error)", line: line)
        }
        return nil
    }

    private func readError(_ url: URL) -> WeightsError? {
        catching { _ = try SafeTensors.read(contentsOf: url) }
    }

    /// Asserts reading `url` fails with `.badHeader` naming the file, with `mentions` in the reason.
    private func assertBadHeader(_ url: URL, mentions: String, line: UInt = #line) {
        guard case .badHeader(let file, let reason)? = readError(url) else {
            return XCTFail("expected badHeader, got \(String(describing: readError(url)))", line: line)
        }
        XCTAssertEqual(file, url.path, line: line)
        XCTAssertTrue(reason.contains(mentions), "\(reason) does not mention \(mentions)", line: line)
        XCTAssertTrue(readError(url)!.description.hasPrefix(url.path + ": bad safetensors header: "), line: line)
    }

    /// The 8-byte little-endian length of `header` followed by it.
    private func header8(_ header: [UInt8], length: UInt64? = nil) -> [UInt8] {
        withUnsafeBytes(of: (length ?? UInt64(header.count)).littleEndian) { Array($0) } + header
    }

    /// A file `name.safetensors` holding `header` (with `length` in place of its true length if
    /// given) and a buffer of `buffer` bytes.
    private func raw(_ name: String, header: String, length: UInt64? = nil, buffer: Int = 0) throws -> URL {
        try raw(name, bytes: header8(Array(header.utf8), length: length) + [UInt8](repeating: 0x3F, count: buffer))
    }

    private func raw(_ name: String, bytes: [UInt8]) throws -> URL {
        let url = folder.appendingPathComponent("\(name).safetensors")
        try Data(bytes).write(to: url)
        return url
    }
}
