/// The ONNX messages the exporter writes (a subset of `onnx/onnx.proto`, proto2), each with its
/// protobuf encoding. Field numbers are onnx.proto's; each is written next to the field's name
/// there. Fields are written in field-number order, as protobuf's own serialisers do.
///
///   ModelProto          ir_version 1, producer_name 2, producer_version 3, model_version 5,
///                       doc_string 6, graph 7, opset_import 8, metadata_props 14
///   OperatorSetIdProto  domain 1, version 2
///   StringStringEntry   key 1, value 2
///   GraphProto          node 1, name 2, initializer 5, doc_string 10, input 11, output 12
///   NodeProto           input 1, output 2, name 3, op_type 4, attribute 5, doc_string 6, domain 7
///   AttributeProto      name 1, f 2, i 3, s 4, floats 7, ints 8, type 20
///   TensorProto         dims 1, data_type 2, float_data 4 (packed), int64_data 7 (packed),
///                       name 8, raw_data 9
///   ValueInfoProto      name 1, type 2;  TypeProto: tensor_type 1;  TypeProto.Tensor: elem_type 1,
///                       shape 2;  TensorShapeProto: dim 1;  Dimension: dim_value 1, dim_param 2
public enum ONNX {
    /// `TensorProto.DataType`.
    public enum DataType: Int64, Sendable { case float = 1, int64 = 7 }

    // MARK: - ModelProto

    public struct Model {
        public var irVersion: Int64
        public var opsetImports: [OperatorSetID]
        public var producerName: String
        public var producerVersion: String
        public var modelVersion: Int64
        public var docString: String
        public var graph: Graph
        public var metadata: [(key: String, value: String)]

        /// The serialised `ModelProto`: the bytes of an `.onnx` file.
        public func serialized() -> [UInt8] {
            var w = ProtobufWriter()
            w.int(1, irVersion)                                    // ir_version
            w.string(2, producerName)                              // producer_name
            w.string(3, producerVersion)                           // producer_version
            w.int(5, modelVersion)                                 // model_version
            w.string(6, docString)                                 // doc_string
            w.message(7) { graph.encode(into: &$0) }               // graph
            for o in opsetImports {                                // opset_import
                w.message(8) { $0.string(1, o.domain); $0.int(2, o.version) }
            }
            for (key, value) in metadata {                         // metadata_props
                w.message(14) { $0.string(1, key); $0.string(2, value) }
            }
            return w.encoded
        }
    }

    /// `OperatorSetIdProto`; the domain "" is the default ONNX operator set (ai.onnx).
    public struct OperatorSetID: Equatable, Sendable {
        public var domain: String
        public var version: Int64
    }

    // MARK: - GraphProto and NodeProto

    public struct Graph {
        public var name: String
        public var docString: String
        public var nodes: [Node] = []
        public var initializers: [Initializer] = []
        public var inputs: [ValueInfo] = []
        public var outputs: [ValueInfo] = []

        func encode(into w: inout ProtobufWriter) {
            for n in nodes { w.message(1) { n.encode(into: &$0) } }          // node
            w.string(2, name)                                                // name
            for t in initializers { w.message(5) { t.encode(into: &$0) } }   // initializer
            w.string(10, docString)                                          // doc_string
            for v in inputs { w.message(11) { v.encode(into: &$0) } }        // input
            for v in outputs { w.message(12) { v.encode(into: &$0) } }       // output
        }
    }

    public struct Node {
        public var name: String
        public var opType: String
        public var inputs: [String]
        public var outputs: [String]
        public var attributes: [Attribute] = []

        func encode(into w: inout ProtobufWriter) {
            for i in inputs { w.string(1, i) }                                // input
            for o in outputs { w.string(2, o) }                               // output
            w.string(3, name)                                                 // name
            w.string(4, opType)                                               // op_type
            for a in attributes { w.message(5) { a.encode(into: &$0) } }      // attribute
        }
    }

    // MARK: - AttributeProto

    public struct Attribute {
        public enum Value {
            case float(Float), int(Int64), string(String), floats([Float]), ints([Int64])
        }
        public var name: String
        public var value: Value

        public init(_ name: String, _ value: Value) { self.name = name; self.value = value }

        func encode(into w: inout ProtobufWriter) {
            w.string(1, name)                                      // name
            switch value {                                         // the value, then type (20)
            case .float(let f): w.float(2, f); w.int(20, 1)        // f, FLOAT
            case .int(let i): w.int(3, i); w.int(20, 2)            // i, INT
            case .string(let s): w.string(4, s); w.int(20, 3)      // s, STRING
            case .floats(let fs):                                  // floats, FLOATS
                for f in fs { w.float(7, f) }
                w.int(20, 6)
            case .ints(let xs):                                    // ints, INTS
                for x in xs { w.int(8, x) }
                w.int(20, 7)
            }
        }
    }

    // MARK: - TensorProto (initializers)

    public struct Initializer {
        public enum Content {
            /// A model tensor, written as `raw_data` (float32 little-endian) straight from its storage.
            case raw(Tensor)
            /// A small float constant, written as packed `float_data`.
            case floats([Float])
            /// A small int64 constant, written as packed `int64_data`.
            case int64s([Int64])
        }
        public var name: String
        public var dims: [Int64]
        public var content: Content

        public var dataType: DataType {
            switch content {
            case .raw, .floats: return .float
            case .int64s: return .int64
            }
        }

        func encode(into w: inout ProtobufWriter) {
            for d in dims { w.int(1, d) }                          // dims
            w.int(2, dataType.rawValue)                            // data_type
            switch content {
            case .floats(let fs): w.packedFloats(4, fs)            // float_data
            case .int64s(let xs): w.packedInts(7, xs)              // int64_data
            case .raw: break
            }
            w.string(8, name)                                      // name
            if case .raw(let t) = content {                        // raw_data
                w.floatBytes(9, t.data, count: t.count)
            }
        }
    }

    // MARK: - ValueInfoProto (graph inputs and outputs)

    /// A float tensor value with a shape whose dimensions are numbers or named (dynamic).
    public struct ValueInfo {
        public enum Dimension: Equatable, Sendable { case value(Int64), param(String) }
        public var name: String
        public var elementType: DataType
        public var dims: [Dimension]

        func encode(into w: inout ProtobufWriter) {
            w.string(1, name)                                      // name
            w.message(2) { type in                                 // type: TypeProto
                type.message(1) { tensor in                        // tensor_type: TypeProto.Tensor
                    tensor.int(1, elementType.rawValue)            // elem_type
                    tensor.message(2) { shape in                   // shape: TensorShapeProto
                        for d in dims {
                            shape.message(1) { dim in              // dim: Dimension
                                switch d {
                                case .value(let v): dim.int(1, v)      // dim_value
                                case .param(let p): dim.string(2, p)   // dim_param
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}
