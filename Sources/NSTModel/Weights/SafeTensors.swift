import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

#if _endian(big)
#error("SafeTensors copies little-endian bytes straight into Float storage; big-endian hosts are unsupported")
#endif

/// A safetensors weights file (https://github.com/huggingface/safetensors) as Float32 tensors.
///
/// Layout: a little-endian u64 N, N bytes of UTF-8 JSON
/// `{"__metadata__": {"k": "v"}, "name": {"dtype": "F32", "shape": [..], "data_offsets": [b, e]}, ..}`,
/// then the data buffer; offsets count from the start of the buffer. Reading checks every field
/// before trusting it and converts F64, F16 and BF16 to Float32. Writing lays files out as
/// `safetensors.torch.save_file` does for F32: metadata first, tensors ordered by name, data
/// contiguous, header padded with spaces to a multiple of 8 bytes.
public struct SafeTensors {
    /// The path the tensors came from (or go to); every error names it.
    public var file: String
    public var tensors: [String: Tensor]
    public var metadata: [String: String]

    /// The largest header the reference implementation accepts.
    public static let maxHeaderBytes = 100_000_000

    public init(file: String = "<memory>", tensors: [String: Tensor] = [:], metadata: [String: String] = [:]) {
        self.file = file
        self.tensors = tensors
        self.metadata = metadata
    }

    /// The tensor named `key` with exactly `shape`, or `.missingKey` / `.wrongShape` naming this file.
    public func require(_ key: String, shape: [Int]) throws(WeightsError) -> Tensor {
        guard let tensor = tensors[key] else { throw .missingKey(file: file, key: key) }
        guard tensor.shape == shape else {
            throw .wrongShape(file: file, key: key, expected: shape, found: tensor.shape)
        }
        return tensor
    }

    /// Copies the tensor named `key` into `into`, whose shape it must have (same errors as `require`).
    public func load(_ key: String, into: Tensor) throws(WeightsError) {
        into.copy(from: try require(key, shape: into.shape))
    }
}

// MARK: - Reading

extension SafeTensors {
    /// Reads and checks a safetensors file. The file is memory-mapped, so the only copy made is
    /// into the tensors' own storage.
    public static func read(contentsOf url: URL) throws(WeightsError) -> SafeTensors {
        try read(data: mappedContents(of: url), file: url.path)
    }

    /// The bytes of a regular file, memory-mapped; `.unreadable` if it is missing, a directory or
    /// not readable. (Shared by every weights-file reader.)
    static func mappedContents(of url: URL) throws(WeightsError) -> Data {
        let path = url.path
        guard url.isFileURL else { throw .unreadable(file: url.absoluteString, reason: "not a file URL") }
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw .unreadable(file: path, reason: "no such file")
        }
        guard !isDirectory.boolValue else { throw .unreadable(file: path, reason: "is a directory") }
        do {
            return try Data(contentsOf: url, options: .alwaysMapped)
        } catch let error as CocoaError where error.code == .fileReadNoPermission {
            throw .unreadable(file: path, reason: "permission denied")
        } catch {
            throw .unreadable(file: path, reason: "\(error)")
        }
    }

    /// Parses and checks the bytes of a safetensors file; `file` is only used in errors.
    public static func read(data: Data, file: String) throws(WeightsError) -> SafeTensors {
        func bad(_ reason: String) -> WeightsError { .badHeader(file: file, reason: reason) }
        let total = data.count
        guard total >= 8 else { throw bad("the file is \(total) bytes, too short for the 8-byte header length") }
        let length = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard length >= 2 else { throw bad("header length \(length) is below the minimum of 2") }
        guard length <= UInt64(maxHeaderBytes) else { throw bad("header length \(length) exceeds the 100 MB limit") }
        guard length <= UInt64(total - 8) else {
            throw bad("header length \(length) runs past the end of the \(total)-byte file")
        }
        let bufferStart = 8 + Int(length)
        let header: RawHeader
        do {
            let json = data[(data.startIndex + 8) ..< (data.startIndex + bufferStart)]
            let invalidUTF8 = transcode(json.makeIterator(), from: UTF8.self, to: UTF32.self, stoppingOnError: true) { _ in }
            guard !invalidUTF8 else { throw HeaderProblem(reason: "the header is not valid UTF-8") }
            header = try JSONDecoder().decode(RawHeader.self, from: json)
        } catch let problem as HeaderProblem {
            throw bad(problem.reason)
        } catch {
            throw bad("the header is not valid JSON")
        }
        let entries = try checkLayout(header.entries, file: file)

        let bufferBytes = total - bufferStart
        let largestEnd = entries.map(\.end).max() ?? 0
        guard largestEnd <= bufferBytes else {
            let (needed, overflow) = bufferStart.addingReportingOverflow(largestEnd)
            throw .truncated(file: file, expectedBytes: overflow ? Int.max : needed, actualBytes: total)
        }
        var tensors: [String: Tensor] = [:]
        data.withUnsafeBytes { raw in
            for entry in entries {
                let bytes = UnsafeRawBufferPointer(rebasing: raw[(bufferStart + entry.begin) ..< (bufferStart + entry.end)])
                tensors[entry.name] = makeTensor(entry, from: bytes)
            }
        }
        return SafeTensors(file: file, tensors: tensors, metadata: header.metadata)
    }

    /// Bytes per element of every safetensors dtype with a whole-byte size.
    private static let elementBytes: [String: Int] = [
        "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2, "BF16": 2,
        "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
    ]
    private static let convertible: Set<String> = ["F32", "F64", "F16", "BF16"]

    /// Checks each entry (dims, offsets, size = product(shape) × element size, dtype) and that no
    /// two tensors share bytes. Whether the buffer is long enough is left to the caller.
    private static func checkLayout(_ raw: [RawEntry], file: String) throws(WeightsError) -> [Entry] {
        var entries: [Entry] = []
        for r in raw {
            func bad(_ why: String) -> WeightsError { .badHeader(file: file, reason: "tensor \(r.name): \(why)") }
            guard r.shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative dimension in shape \(r.shape)") }
            guard r.offsets.count == 2 else { throw bad("data_offsets must be [begin, end], found \(r.offsets)") }
            let (begin, end) = (r.offsets[0], r.offsets[1])
            guard begin >= 0, begin <= end else { throw bad("data_offsets \(r.offsets) are negative or reversed") }
            guard let size = elementBytes[r.dtype], convertible.contains(r.dtype) else {
                throw .unsupportedDType(file: file, key: r.name, dtype: r.dtype)
            }
            var bytes = r.shape.contains(0) ? 0 : size
            for dim in r.shape where bytes > 0 {
                let (product, overflow) = bytes.multipliedReportingOverflow(by: dim)
                guard !overflow else { throw bad("shape \(r.shape) is too large") }
                bytes = product
            }
            guard end - begin == bytes else {
                throw bad("data_offsets \(r.offsets) span \(end - begin) bytes but \(r.dtype) \(r.shape) needs \(bytes)")
            }
            entries.append(Entry(name: r.name, dtype: r.dtype, shape: r.shape, begin: begin, end: end))
        }
        let spans = entries.filter { $0.end > $0.begin }.sorted { ($0.begin, $0.name) < ($1.begin, $1.name) }
        for (a, b) in zip(spans, spans.dropFirst()) where b.begin < a.end {
            throw .badHeader(file: file, reason: "tensors \(a.name) [\(a.begin), \(a.end)) and \(b.name) "
                + "[\(b.begin), \(b.end)) overlap")
        }
        return entries
    }

    /// A new tensor holding `bytes` (already checked to be exactly its size) converted to Float32.
    private static func makeTensor(_ entry: Entry, from bytes: UnsafeRawBufferPointer) -> Tensor {
        let tensor = Tensor(shape: entry.shape)
        guard tensor.count > 0, let base = bytes.baseAddress else { return tensor }
        let out = tensor.data
        switch entry.dtype {
        case "F32":
            UnsafeMutableRawPointer(out).copyMemory(from: base, byteCount: bytes.count)
        case "F64":
            for i in 0..<tensor.count {
                let bits = UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self))
                out[i] = Float(Double(bitPattern: bits))
            }
        case "F16":
            for i in 0..<tensor.count {
                out[i] = floatFromHalf(UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
            }
        case "BF16":
            for i in 0..<tensor.count {
                let bits = UInt16(littleEndian: bytes.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))
                out[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        default:
            preconditionFailure("checkLayout lets only convertible dtypes through, got \(entry.dtype)")
        }
        return tensor
    }

    /// IEEE 754 binary16 → binary32, exact (every half value is a float), NaN payloads kept.
    static func floatFromHalf(_ h: UInt16) -> Float {
        let sign = UInt32(h & 0x8000) << 16
        let exponent = UInt32(h >> 10) & 0x1F
        let mantissa = UInt32(h & 0x3FF)
        switch exponent {
        case 0:  // zero or subnormal: mantissa × 2^-24
            let magnitude = Float(mantissa) * 0x1p-24
            return sign == 0 ? magnitude : -magnitude
        case 0x1F:  // infinity or NaN
            return Float(bitPattern: sign | 0x7F80_0000 | mantissa << 13)
        default:
            return Float(bitPattern: sign | (exponent + 112) << 23 | mantissa << 13)
        }
    }
}

// MARK: - Parsed header

private struct HeaderProblem: Error { var reason: String }

/// An entry as found in the JSON, types checked but values not yet.
private struct RawEntry { var name, dtype: String; var shape, offsets: [Int] }

/// An entry whose layout has been checked.
private struct Entry { var name, dtype: String; var shape: [Int]; var begin, end: Int }


private struct RawHeader: Decodable {
    var entries: [RawEntry] = []
    var metadata: [String: String] = [:]

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
    private enum FieldKey: String, CodingKey { case dtype, shape, data_offsets }

    init(from decoder: Decoder) throws {
        guard let object = try? decoder.container(keyedBy: AnyKey.self) else {
            throw HeaderProblem(reason: "the JSON is not an object")
        }
        for key in object.allKeys.sorted(by: { $0.stringValue < $1.stringValue }) {
            let name = key.stringValue
            if name == "__metadata__" {
                if try object.decodeNil(forKey: key) { continue }
                guard let metadata = try? object.decode([String: String].self, forKey: key) else {
                    throw HeaderProblem(reason: "__metadata__ must map strings to strings")
                }
                self.metadata = metadata
                continue
            }
            guard let fields = try? object.nestedContainer(keyedBy: FieldKey.self, forKey: key) else {
                throw HeaderProblem(reason: "tensor \(name): the entry is not an object")
            }
            func field<T: Decodable>(_ field: FieldKey, _ type: T.Type, _ kind: String) throws -> T {
                guard fields.contains(field) else { throw HeaderProblem(reason: "tensor \(name): no \(field.rawValue)") }
                guard let value = try? fields.decode(T.self, forKey: field) else {
                    throw HeaderProblem(reason: "tensor \(name): \(field.rawValue) must be \(kind)")
                }
                return value
            }
            entries.append(RawEntry(name: name, dtype: try field(.dtype, String.self, "a string"),
                                    shape: try field(.shape, [Int].self, "a list of integers"),
                                    offsets: try field(.data_offsets, [Int].self, "a list of integers")))
        }
    }
}
