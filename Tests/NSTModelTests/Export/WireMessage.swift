/// A protobuf message read back as its raw fields, for checking what the ONNX exporter wrote.
/// Written from the wire-format spec (https://protobuf.dev/programming-guides/encoding/), apart
/// from `ProtobufWriter`: it rejects truncated data, group wire types (3, 4) and values of the
/// wrong wire type for what the caller asks, and reads repeated numbers packed or not.
struct WireMessage {
    enum Value {
        case varint(UInt64)
        case i64(UInt64)
        case len(ArraySlice<UInt8>)
        case i32(UInt32)
    }

    struct Field { let number: Int; let value: Value }

    struct DecodeError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    let fields: [Field]

    init(_ bytes: [UInt8]) throws { try self.init(bytes[...]) }

    init(_ bytes: ArraySlice<UInt8>) throws {
        var r = Reader(bytes: bytes)
        var fields: [Field] = []
        while !r.atEnd {
            let key = try r.varint()
            let number = Int(key >> 3)
            guard number >= 1 else { throw DecodeError("field number 0 at byte \(r.position)") }
            switch key & 7 {
            case 0: fields.append(Field(number: number, value: .varint(try r.varint())))
            case 1: fields.append(Field(number: number, value: .i64(try r.fixed(8))))
            case 2:
                let length = Int(try r.varint())
                fields.append(Field(number: number, value: .len(try r.take(length))))
            case 5: fields.append(Field(number: number, value: .i32(UInt32(try r.fixed(4)))))
            default: throw DecodeError("field \(number) has unsupported wire type \(key & 7)")
            }
        }
        self.fields = fields
    }

    /// Every field number present, in order of first appearance.
    var numbers: [Int] {
        var seen: [Int] = []
        for f in fields where !seen.contains(f.number) { seen.append(f.number) }
        return seen
    }

    func values(_ number: Int) -> [Value] { fields.filter { $0.number == number }.map(\.value) }

    /// Throws if the message has a field outside `allowed` (a wrong field number in the writer).
    func expectOnly(_ allowed: Set<Int>, _ message: String) throws {
        let extra = numbers.filter { !allowed.contains($0) }
        if !extra.isEmpty { throw DecodeError("\(message) has unexpected fields \(extra)") }
    }

    // MARK: - Typed access (proto2: the last occurrence of a singular field wins)

    func ints(_ number: Int) throws -> [Int64] {
        var out: [Int64] = []
        for v in values(number) {
            switch v {
            case .varint(let x): out.append(Int64(bitPattern: x))
            case .len(let packed):
                var r = Reader(bytes: packed)
                while !r.atEnd { out.append(Int64(bitPattern: try r.varint())) }
            default: throw DecodeError("field \(number) is not an integer: \(v)")
            }
        }
        return out
    }

    func int(_ number: Int) throws -> Int64? { try ints(number).last }

    func floats(_ number: Int) throws -> [Float] {
        var out: [Float] = []
        for v in values(number) {
            switch v {
            case .i32(let bits): out.append(Float(bitPattern: bits))
            case .len(let packed):
                guard packed.count % 4 == 0 else { throw DecodeError("packed floats of \(packed.count) bytes") }
                out += littleEndianFloats(packed)
            default: throw DecodeError("field \(number) is not a float: \(v)")
            }
        }
        return out
    }

    func float(_ number: Int) throws -> Float? { try floats(number).last }

    func allBytes(_ number: Int) throws -> [ArraySlice<UInt8>] {
        try values(number).map { v in
            guard case .len(let b) = v else { throw DecodeError("field \(number) is not length-delimited: \(v)") }
            return b
        }
    }

    func bytes(_ number: Int) throws -> ArraySlice<UInt8>? { try allBytes(number).last }

    func strings(_ number: Int) throws -> [String] {
        try allBytes(number).map { b in
            guard let s = String(validating: b, as: UTF8.self) else { throw DecodeError("field \(number) is not UTF-8") }
            return s
        }
    }

    func string(_ number: Int) throws -> String? { try strings(number).last }

    func messages(_ number: Int) throws -> [WireMessage] { try allBytes(number).map { try WireMessage($0) } }

    func message(_ number: Int) throws -> WireMessage? { try messages(number).last }
}

/// Floats stored as consecutive 4-byte little-endian IEEE 754 values.
func littleEndianFloats(_ bytes: ArraySlice<UInt8>) -> [Float] {
    let b = Array(bytes)
    return stride(from: 0, to: b.count - 3, by: 4).map { i in
        Float(bitPattern: UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24)
    }
}

private struct Reader {
    let bytes: ArraySlice<UInt8>
    var position: Int

    init(bytes: ArraySlice<UInt8>) { self.bytes = bytes; position = bytes.startIndex }

    var atEnd: Bool { position >= bytes.endIndex }

    mutating func byte() throws -> UInt8 {
        guard position < bytes.endIndex else { throw WireMessage.DecodeError("truncated at byte \(position)") }
        defer { position += 1 }
        return bytes[position]
    }

    mutating func varint() throws -> UInt64 {
        var value: UInt64 = 0
        for shift in stride(from: 0, to: 64, by: 7) {
            let b = try byte()
            value |= UInt64(b & 0x7F) << UInt64(shift)
            if b < 0x80 { return value }
        }
        throw WireMessage.DecodeError("varint longer than 10 bytes at byte \(position)")
    }

    /// `count` bytes little-endian.
    mutating func fixed(_ count: Int) throws -> UInt64 {
        var value: UInt64 = 0
        for i in 0..<count { value |= UInt64(try byte()) << UInt64(8 * i) }
        return value
    }

    mutating func take(_ count: Int) throws -> ArraySlice<UInt8> {
        guard count >= 0, count <= bytes.endIndex - position else {
            throw WireMessage.DecodeError("a length of \(count) at byte \(position) runs past the end")
        }
        defer { position += count }
        return bytes[position..<position + count]
    }
}
