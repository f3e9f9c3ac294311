/// An ONNX ModelProto read back from its bytes with `WireMessage`, field numbers from
/// onnx/onnx.proto. Every message is checked to hold only the fields the exporter is meant to
/// write, so a wrong field number in the writer fails here instead of being skipped.
struct DecodedModel {
    var irVersion: Int64
    var opsets: [(domain: String, version: Int64)]
    var producerName: String
    var docString: String
    var metadata: [String: String]
    var graph: DecodedGraph

    init(_ bytes: [UInt8]) throws {
        let m = try WireMessage(bytes)
        try m.expectOnly([1, 2, 3, 5, 6, 7, 8, 14], "ModelProto")
        irVersion = try m.int(1) ?? 0
        producerName = try m.string(2) ?? ""
        docString = try m.string(6) ?? ""
        opsets = try m.messages(8).map { o in
            try o.expectOnly([1, 2], "OperatorSetIdProto")
            return (try o.string(1) ?? "", try o.int(2) ?? 0)
        }
        metadata = [:]
        for e in try m.messages(14) {
            try e.expectOnly([1, 2], "StringStringEntryProto")
            metadata[try e.string(1) ?? ""] = try e.string(2) ?? ""
        }
        guard let g = try m.message(7) else { throw WireMessage.DecodeError("ModelProto has no graph") }
        graph = try DecodedGraph(g)
    }
}

struct DecodedGraph {
    var name: String
    var nodes: [DecodedNode]
    var initializers: [DecodedTensor]
    var inputs: [DecodedValueInfo]
    var outputs: [DecodedValueInfo]

    init(_ g: WireMessage) throws {
        try g.expectOnly([1, 2, 5, 10, 11, 12], "GraphProto")
        name = try g.string(2) ?? ""
        nodes = try g.messages(1).map(DecodedNode.init)
        initializers = try g.messages(5).map(DecodedTensor.init)
        inputs = try g.messages(11).map(DecodedValueInfo.init)
        outputs = try g.messages(12).map(DecodedValueInfo.init)
    }

    func initializer(_ name: String) -> DecodedTensor? { initializers.first { $0.name == name } }
}

struct DecodedNode {
    var name: String
    var opType: String
    var inputs: [String]
    var outputs: [String]
    var attributes: [String: DecodedAttribute]

    init(_ n: WireMessage) throws {
        try n.expectOnly([1, 2, 3, 4, 5], "NodeProto")
        inputs = try n.strings(1)
        outputs = try n.strings(2)
        name = try n.string(3) ?? ""
        opType = try n.string(4) ?? ""
        attributes = [:]
        for a in try n.messages(5).map(DecodedAttribute.init) {
            guard attributes[a.name] == nil else { throw WireMessage.DecodeError("\(name): attribute \(a.name) twice") }
            attributes[a.name] = a
        }
    }
}

/// An AttributeProto: its declared `type` (AttributeType) and the value field it uses.
struct DecodedAttribute: Equatable {
    enum Value: Equatable { case float(Float), int(Int64), string(String), floats([Float]), ints([Int64]) }
    var name: String
    var value: Value

    init(_ a: WireMessage) throws {
        try a.expectOnly([1, 2, 3, 4, 7, 8, 20], "AttributeProto")
        name = try a.string(1) ?? ""
        guard let type = try a.int(20) else { throw WireMessage.DecodeError("attribute \(name) has no type") }
        switch type {
        case 1: value = .float(try a.float(2) ?? .nan)
        case 2: value = .int(try a.int(3) ?? .min)
        case 3: value = .string(try a.string(4) ?? "")
        case 6: value = .floats(try a.floats(7))
        case 7: value = .ints(try a.ints(8))
        default: throw WireMessage.DecodeError("attribute \(name) has type \(type)")
        }
        let used: [Int: Int] = [1: 2, 2: 3, 3: 4, 6: 7, 7: 8]
        let others = Set([2, 3, 4, 7, 8]).subtracting([used[Int(type)]!])
        if a.numbers.contains(where: others.contains) {
            throw WireMessage.DecodeError("attribute \(name) of type \(type) also sets fields \(a.numbers)")
        }
    }
}

/// A TensorProto: dims, data_type and its values from raw_data, float_data or int64_data.
struct DecodedTensor {
    var name: String
    var dims: [Int]
    var dataType: Int64
    var rawData: ArraySlice<UInt8>?
    var floatData: [Float]
    var int64Data: [Int64]

    init(_ t: WireMessage) throws {
        try t.expectOnly([1, 2, 4, 7, 8, 9], "TensorProto")
        dims = try t.ints(1).map { Int($0) }
        dataType = try t.int(2) ?? 0
        floatData = try t.floats(4)
        int64Data = try t.ints(7)
        name = try t.string(8) ?? ""
        rawData = try t.bytes(9)
    }

    var count: Int { dims.reduce(1, *) }

    /// The values of a FLOAT tensor, wherever they are stored.
    func floats() throws -> [Float] {
        guard dataType == 1 else { throw WireMessage.DecodeError("\(name) has data_type \(dataType), not FLOAT") }
        let values = rawData.map(littleEndianFloats) ?? floatData
        guard values.count == count else { throw WireMessage.DecodeError("\(name): \(values.count) values for dims \(dims)") }
        return values
    }

    func int64s() throws -> [Int64] {
        guard dataType == 7 else { throw WireMessage.DecodeError("\(name) has data_type \(dataType), not INT64") }
        guard rawData == nil, int64Data.count == count else { throw WireMessage.DecodeError("\(name): not \(count) int64_data") }
        return int64Data
    }
}

/// A ValueInfoProto of a tensor type.
struct DecodedValueInfo {
    enum Dim: Equatable { case value(Int64), param(String) }
    var name: String
    var elementType: Int64
    var dims: [Dim]

    init(_ v: WireMessage) throws {
        try v.expectOnly([1, 2], "ValueInfoProto")
        let name = try v.string(1) ?? ""
        self.name = name
        guard let type = try v.message(2), let tensor = try type.message(1), let shape = try tensor.message(2) else {
            throw WireMessage.DecodeError("\(name) has no tensor type with a shape")
        }
        try type.expectOnly([1], "TypeProto")
        try tensor.expectOnly([1, 2], "TypeProto.Tensor")
        try shape.expectOnly([1], "TensorShapeProto")
        elementType = try tensor.int(1) ?? 0
        dims = try shape.messages(1).map { d in
            try d.expectOnly([1, 2], "Dimension")
            if let p = try d.string(2) { return .param(p) }
            guard let v = try d.int(1) else { throw WireMessage.DecodeError("\(name) has an empty dimension") }
            return .value(v)
        }
    }
}
