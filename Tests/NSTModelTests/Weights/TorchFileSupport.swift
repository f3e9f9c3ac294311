import Foundation
@testable import NSTModel
import XCTest
import ZIPFoundation

/// The `.pth` fixtures written by `scripts/pth_fixtures.py` (torch 2.x `torch.save`).
enum PthFixture {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("Fixtures/pth")

    static func url(_ name: String) -> URL { folder.appendingPathComponent(name) }
}

/// A tensor of a hand-made state dict: a view of storage `key` as torch.save describes it.
struct FakeTensor {
    var name: String
    var key: String
    var storageClass = "FloatStorage"
    var count: Int
    var offset = 0
    var size: [Int]
    var stride: [Int]
}

/// Pickle bytes written opcode by opcode, to build the state dicts torch.save writes and the
/// hostile ones it never writes.
struct PickleBytes {
    var bytes: [UInt8] = [0x80, 0x02]  // PROTO 2

    mutating func op(_ codes: UInt8...) { bytes += codes }

    mutating func string(_ s: String) {  // BINUNICODE
        let utf8 = Array(s.utf8)
        op(0x58); le(UInt64(utf8.count), 4); bytes += utf8
    }

    mutating func int(_ i: Int) {
        switch i {
        case 0...0xFF: op(0x4B, UInt8(i))  // BININT1
        case 0...0xFFFF: op(0x4D); le(UInt64(i), 2)  // BININT2
        case Int(Int32.min)...Int(Int32.max): op(0x4A); le(UInt64(UInt32(bitPattern: Int32(i))), 4)  // BININT
        default: op(0x8A, 8); le(UInt64(bitPattern: Int64(i)), 8)  // LONG1, 8 bytes
        }
    }

    mutating func global(_ module: String, _ name: String) {  // GLOBAL
        op(0x63); bytes += Array("\(module)\n\(name)\n".utf8)
    }

    mutating func ints(_ values: [Int]) {  // MARK ints TUPLE
        op(0x28); for v in values { int(v) }; op(0x74)
    }

    mutating func emptyOrderedDict() { global("collections", "OrderedDict"); op(0x29, 0x52) }

    /// `torch._utils._rebuild_tensor_v2(('storage', torch.<Class>, key, 'cpu', count), offset, size, stride, False, OrderedDict())`
    mutating func tensor(_ t: FakeTensor) {
        global("torch._utils", "_rebuild_tensor_v2")
        op(0x28)  // MARK: arguments
        op(0x28); string("storage"); global("torch", t.storageClass); string(t.key); string("cpu"); int(t.count); op(0x74)
        op(0x51)  // BINPERSID
        int(t.offset); ints(t.size); ints(t.stride); op(0x89)  // NEWFALSE
        emptyOrderedDict()
        op(0x74, 0x52)  // TUPLE, REDUCE
    }

    /// An OrderedDict of `tensors`, as torch.save pickles `model.state_dict()`.
    static func stateDict(_ tensors: [FakeTensor]) -> PickleBytes {
        var p = PickleBytes()
        p.emptyOrderedDict()
        p.op(0x28)
        for t in tensors { p.string(t.name); p.tensor(t) }
        p.op(0x75, 0x2E)  // SETITEMS, STOP
        return p
    }

    private mutating func le(_ value: UInt64, _ count: Int) {
        for i in 0..<count { bytes.append(UInt8(truncatingIfNeeded: value >> (8 * UInt64(i)))) }
    }

    var data: Data { Data(bytes) }
}

/// Little-endian Float32 bytes.
func float32Bytes(_ values: [Float]) -> [UInt8] {
    values.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
}

/// Writes a zip laid out as torch.save's: records under `archive/`, stored uncompressed.
func writeTorchZip(_ records: [(path: String, bytes: [UInt8])], to url: URL) throws {
    try? FileManager.default.removeItem(at: url)
    let archive = try Archive(url: url, accessMode: .create)
    for (path, bytes) in records {
        try archive.addEntry(with: "archive/\(path)", type: .file, uncompressedSize: Int64(bytes.count),
                             compressionMethod: .none) { position, size in
            Data(bytes[Int(position) ..< Int(position) + size])
        }
    }
}

/// The bit patterns of a tensor's values, so -0 differs from 0; every NaN maps to one pattern, since
/// torch itself converts a half NaN to 0x7FC00000 or 0x7FFFFFFF depending on the tensor's alignment.
func bits(_ t: Tensor) -> [UInt32] { t.array.map { $0.isNaN ? Float.nan.bitPattern : $0.bitPattern } }

/// Asserts that `body` throws exactly `expected`.
func assertThrows<T>(_ expected: WeightsError, file: StaticString = #filePath, line: UInt = #line,
                     _ body: () throws -> T) {
    XCTAssertEqual(thrownWeightsError(body, file: file, line: line), expected, file: file, line: line)
}

/// Asserts that `body` throws a WeightsError for which `matches` holds, and returns it.
@discardableResult
func assertThrows<T>(file: StaticString = #filePath, line: UInt = #line, _ body: () throws -> T,
                     where matches: (WeightsError) -> Bool) -> WeightsError? {
    let error = thrownWeightsError(body, file: file, line: line)
    if let error { XCTAssertTrue(matches(error), "unexpected error: \(error)", file: file, line: line) }
    return error
}

private func thrownWeightsError<T>(_ body: () throws -> T, file: StaticString, line: UInt) -> WeightsError? {
    do {
        _ = try body()
        XCTFail("expected a WeightsError, nothing was thrown", file: file, line: line)
    } catch let error as WeightsError {
        return error
    } catch {
        XCTFail("expected a WeightsError, got \(error)", file: file, line: line)
    }
    return nil
}

/// Matches a `.badPickle` / `.badTorchFile` whose reason contains `text`.
func isBadPickle(_ text: String) -> (WeightsError) -> Bool {
    { if case .badPickle(_, let reason) = $0 { return reason.contains(text) } else { return false } }
}

func isBadTorchFile(_ text: String) -> (WeightsError) -> Bool {
    { if case .badTorchFile(_, let reason) = $0 { return reason.contains(text) } else { return false } }
}
