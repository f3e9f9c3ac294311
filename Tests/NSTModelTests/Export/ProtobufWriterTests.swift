import NSTModel
import XCTest

/// The wire format against the worked examples of the protobuf encoding guide
/// (https://protobuf.dev/programming-guides/encoding/) and hand-encoded cases, and the test
/// decoder against the same bytes.
final class ProtobufWriterTests: XCTestCase {
    func encoded(_ build: (inout ProtobufWriter) -> Void) -> [UInt8] {
        var w = ProtobufWriter()
        build(&w)
        return w.encoded
    }

    func testVarintsAndKeys() {
        XCTAssertEqual(encoded { $0.int(1, 150) }, [0x08, 0x96, 0x01], "the guide's `a = 150`")
        XCTAssertEqual(encoded { $0.int(1, 0) }, [0x08, 0x00])
        XCTAssertEqual(encoded { $0.int(1, 127) }, [0x08, 0x7F])
        XCTAssertEqual(encoded { $0.int(1, 128) }, [0x08, 0x80, 0x01])
        XCTAssertEqual(encoded { $0.int(1, -1) }, [0x08] + [UInt8](repeating: 0xFF, count: 9) + [0x01],
                       "a negative int64 is its 64-bit two's complement, 10 bytes")
        XCTAssertEqual(encoded { $0.int(20, 7) }, [0xA0, 0x01, 0x07], "field 20: key 160 takes two bytes")
    }

    func testLengthDelimitedFields() {
        XCTAssertEqual(encoded { $0.string(2, "testing") }, [0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67],
                       "the guide's `b = \"testing\"`")
        XCTAssertEqual(encoded { $0.message(3) { $0.int(1, 150) } }, [0x1A, 0x03, 0x08, 0x96, 0x01],
                       "the guide's embedded message `c { a: 150 }`")
        let long = String(repeating: "x", count: 200)
        XCTAssertEqual(Array(encoded { $0.string(1, long) }.prefix(3)), [0x0A, 0xC8, 0x01], "length 200 is a 2-byte varint")
        XCTAssertEqual(encoded { $0.string(1, "") }, [0x0A, 0x00])
    }

    func testPackedRepeatedAndFloats() {
        XCTAssertEqual(encoded { $0.packedInts(4, [3, 270, 86942]) }, [0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05],
                       "the guide's packed `repeated int32 f = 4 [packed = true]`")
        XCTAssertEqual(encoded { $0.float(2, 1) }, [0x15, 0x00, 0x00, 0x80, 0x3F], "fixed32, little-endian")
        XCTAssertEqual(encoded { $0.packedFloats(4, [1, -2]) }, [0x22, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0xC0])
        let t = Tensor(shape: [2], values: [1, 0.5])
        XCTAssertEqual(encoded { $0.floatBytes(9, t.data, count: 2) }, [0x4A, 0x08, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x3F])
    }

    func testDecoderReadsTheGuidesExamples() throws {
        let m = try WireMessage([0x08, 0x96, 0x01, 0x12, 0x07, 0x74, 0x65, 0x73, 0x74, 0x69, 0x6E, 0x67,
                                 0x22, 0x06, 0x03, 0x8E, 0x02, 0x9E, 0xA7, 0x05, 0x20, 0x05, 0x2D, 0x00, 0x00, 0x80, 0x3F])
        XCTAssertEqual(try m.int(1), 150)
        XCTAssertEqual(try m.string(2), "testing")
        XCTAssertEqual(try m.ints(4), [3, 270, 86942, 5], "packed and unpacked elements of one repeated field")
        XCTAssertEqual(try m.float(5), 1)
        XCTAssertThrowsError(try m.float(1), "a varint is not a float")
        XCTAssertThrowsError(try WireMessage([0x12, 0x07, 0x74]), "length past the end")
        XCTAssertThrowsError(try WireMessage([0x08, 0x96]), "varint cut off")
        XCTAssertThrowsError(try WireMessage([0x0B]), "group wire type")
    }
}
