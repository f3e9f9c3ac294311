/// The protocol buffers wire format (https://protobuf.dev/programming-guides/encoding/), write
/// side only, for the ONNX exporter. A message is a sequence of fields, each a key
/// `(field number << 3) | wire type` as a varint, then the value:
///
///   wire type 0 (VARINT)  int32, int64, enum, bool: base-128 varint, low group first; negative
///                         int32/int64 as the 64-bit two's complement (10 bytes)
///   wire type 2 (LEN)     string, bytes, sub-message, packed repeated: varint length, then bytes
///   wire type 5 (I32)     float: 4 bytes little-endian
///
/// Repeated fields are written once per element, except `packed` ones: one LEN field holding the
/// concatenated element encodings (what proto2 `[packed = true]` declares).
public struct ProtobufWriter {
    /// The encoded message so far.
    public private(set) var encoded: [UInt8] = []

    public init() {}

    enum WireType: UInt8 { case varint = 0, len = 2, i32 = 5 }

    // MARK: - Scalars

    mutating func appendVarint(_ value: UInt64) {
        var v = value
        while v >= 0x80 {
            encoded.append(UInt8(truncatingIfNeeded: v) | 0x80)
            v >>= 7
        }
        encoded.append(UInt8(v))
    }

    mutating func appendKey(_ field: Int, _ type: WireType) {
        precondition(field >= 1 && field < 1 << 29, "protobuf field number \(field) out of range")
        appendVarint(UInt64(field) << 3 | UInt64(type.rawValue))
    }

    /// An int32, int64 or enum field (negative values take ten bytes, as protobuf writes them).
    public mutating func int(_ field: Int, _ value: Int64) {
        appendKey(field, .varint)
        appendVarint(UInt64(bitPattern: value))
    }

    public mutating func float(_ field: Int, _ value: Float) {
        appendKey(field, .i32)
        withUnsafeBytes(of: value.bitPattern.littleEndian) { encoded.append(contentsOf: $0) }
    }

    /// A string (UTF-8) or bytes field.
    public mutating func string(_ field: Int, _ value: String) { bytes(field, value.utf8) }

    public mutating func bytes<C: Collection>(_ field: Int, _ value: C) where C.Element == UInt8 {
        appendKey(field, .len)
        appendVarint(UInt64(value.count))
        encoded.append(contentsOf: value)
    }

    /// A bytes field holding `count` floats as little-endian IEEE 754 (ONNX `raw_data`).
    public mutating func floatBytes(_ field: Int, _ values: UnsafePointer<Float>, count: Int) {
        appendKey(field, .len)
        appendVarint(UInt64(count * 4))
        #if _endian(little)
        encoded.append(contentsOf: UnsafeRawBufferPointer(start: values, count: count * 4))
        #else
        for i in 0..<count { withUnsafeBytes(of: values[i].bitPattern.littleEndian) { encoded.append(contentsOf: $0) } }
        #endif
    }

    // MARK: - Sub-messages and packed repeated fields

    /// A sub-message: `build` writes its fields into a fresh writer, whose bytes become one LEN field.
    public mutating func message(_ field: Int, _ build: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        build(&inner)
        bytes(field, inner.encoded)
    }

    /// A packed repeated int32/int64 field: one LEN field of concatenated varints.
    public mutating func packedInts(_ field: Int, _ values: [Int64]) {
        var inner = ProtobufWriter()
        for v in values { inner.appendVarint(UInt64(bitPattern: v)) }
        bytes(field, inner.encoded)
    }

    /// A packed repeated float field: one LEN field of 4-byte little-endian floats.
    public mutating func packedFloats(_ field: Int, _ values: [Float]) {
        var inner = ProtobufWriter()
        for v in values { withUnsafeBytes(of: v.bitPattern.littleEndian) { inner.encoded.append(contentsOf: $0) } }
        bytes(field, inner.encoded)
    }
}
