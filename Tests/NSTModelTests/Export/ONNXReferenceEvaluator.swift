/// A naive evaluator of a decoded ONNX graph, written from the operator definitions of the ONNX
/// spec (docs/Operators.md) and not from NSTModel's layers, so that agreeing with
/// `TransformerNet.infer` shows the exported graph means what the network computes. It runs
/// the ops the exporter uses, in the forms it uses them, and throws on anything else:
///
///   Conv (v11)                   group 1: Y[n,m,i,j] = B[m] + Σ_c,u,v X[n,c,i·s+u·d−pb, j·s+v·d−pl]·W[m,c,u,v]
///                                (X zero outside), out = ⌊(H + pb + pe − d(k−1) − 1)/s⌋ + 1
///   Pad (v13)                    mode reflect: Y[i] = X[reflect(i − begin)], pads = [begins…, ends…]
///   InstanceNormalization (v6)   Y = scale[c]·(X − μ)/√(σ² + ε) + B[c] per (n, c), σ² biased
///   Resize (v13)                 mode nearest, asymmetric, floor: out = ⌊in·scale⌋, Y[i] = X[⌊i/scale⌋]
///   Relu, Add (equal shapes), Clip (min and max inputs)
struct ONNXReferenceEvaluator {
    struct Array4 {
        var shape: [Int]
        var data: [Float]
        init(shape: [Int], data: [Float]) {
            precondition(shape.count == 4 && data.count == shape.reduce(1, *))
            self.shape = shape
            self.data = data
        }
        init(zeros shape: [Int]) { self.init(shape: shape, data: [Float](repeating: 0, count: shape.reduce(1, *))) }
    }

    struct EvalError: Error, CustomStringConvertible {
        let description: String
        init(_ d: String) { description = d }
    }

    let graph: DecodedGraph

    /// Runs the graph on its single input; returns its single output.
    func run(_ input: Array4) throws -> Array4 {
        guard graph.inputs.count == 1, graph.outputs.count == 1 else { throw EvalError("expected one input and one output") }
        var values: [String: Array4] = [graph.inputs[0].name: input]
        for node in graph.nodes {
            func arg(_ i: Int) throws -> Array4 {
                guard i < node.inputs.count, let v = values[node.inputs[i]] else {
                    throw EvalError("\(node.name): input \(i) is not a computed 4-D value")
                }
                return v
            }
            let y: Array4
            switch node.opType {
            case "Conv": y = try conv(node, try arg(0))
            case "Pad": y = try pad(node, try arg(0))
            case "InstanceNormalization": y = try instanceNorm(node, try arg(0))
            case "Resize": y = try resize(node, try arg(0))
            case "Relu": y = map(try arg(0)) { max($0, 0) }
            case "Add":
                let a = try arg(0), b = try arg(1)
                guard a.shape == b.shape else { throw EvalError("\(node.name): Add of \(a.shape) and \(b.shape)") }
                y = Array4(shape: a.shape, data: zip(a.data, b.data).map(+))
            case "Clip":
                let lo = try scalar(node, 1), hi = try scalar(node, 2)
                y = map(try arg(0)) { min(max($0, lo), hi) }
            default: throw EvalError("unsupported op \(node.opType)")
            }
            guard node.outputs.count == 1, values[node.outputs[0]] == nil else {
                throw EvalError("\(node.name): outputs \(node.outputs) (one new value expected)")
            }
            values[node.outputs[0]] = y
        }
        guard let out = values[graph.outputs[0].name] else { throw EvalError("the graph output is never computed") }
        return out
    }

    // MARK: - Ops

    private func conv(_ node: DecodedNode, _ x: Array4) throws -> Array4 {
        let w = try weights(node, 1), bias = try weights(node, 2)
        guard case .int(1)? = node.attributes["group"]?.value else { throw EvalError("\(node.name): group must be 1") }
        let k = try ints(node, "kernel_shape"), s = try ints(node, "strides")
        let p = try ints(node, "pads"), d = try ints(node, "dilations")
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3])
        let m = w.dims[0]
        guard w.dims == [m, c, k[0], k[1]], bias.dims == [m] else { throw EvalError("\(node.name): weight dims \(w.dims)") }
        let oh = (h + p[0] + p[2] - d[0] * (k[0] - 1) - 1) / s[0] + 1
        let ow = (wd + p[1] + p[3] - d[1] * (k[1] - 1) - 1) / s[1] + 1
        let wv = try w.floats(), bv = try bias.floats()
        var y = Array4(zeros: [n, m, oh, ow])
        x.data.withUnsafeBufferPointer { X in
        wv.withUnsafeBufferPointer { W in
        y.data.withUnsafeMutableBufferPointer { Y in
            for b in 0..<n {
                for o in 0..<m {
                    let out = (b * m + o) * oh * ow
                    for i in 0..<oh * ow { Y[out + i] = bv[o] }
                    for ci in 0..<c {
                        let plane = (b * c + ci) * h * wd
                        for u in 0..<k[0] {
                            for v in 0..<k[1] {
                                let weight = W[((o * c + ci) * k[0] + u) * k[1] + v]
                                for i in 0..<oh {
                                    let row = i * s[0] + u * d[0] - p[0]
                                    guard row >= 0 && row < h else { continue }
                                    for j in 0..<ow {
                                        let col = j * s[1] + v * d[1] - p[1]
                                        if col >= 0 && col < wd { Y[out + i * ow + j] += weight * X[plane + row * wd + col] }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }}}
        return y
    }

    private func pad(_ node: DecodedNode, _ x: Array4) throws -> Array4 {
        guard case .string("reflect")? = node.attributes["mode"]?.value else { throw EvalError("\(node.name): only mode reflect") }
        guard node.inputs.count == 2, let padsTensor = graph.initializer(node.inputs[1]) else {
            throw EvalError("\(node.name): pads must be an initializer")
        }
        let pads = try padsTensor.int64s().map { Int($0) }
        guard pads.count == 8 else { throw EvalError("\(node.name): \(pads.count) pads for a 4-D input") }
        let outShape = (0..<4).map { x.shape[$0] + pads[$0] + pads[$0 + 4] }
        func reflect(_ i: Int, _ n: Int) -> Int { i < 0 ? -i : (i >= n ? 2 * (n - 1) - i : i) }
        for a in 0..<4 where pads[a] >= x.shape[a] || pads[a + 4] >= x.shape[a] {
            throw EvalError("\(node.name): reflect pad \(pads) too large for \(x.shape)")
        }
        var y = Array4(zeros: outShape)
        var index = 0
        for i0 in 0..<outShape[0] {
            let s0 = reflect(i0 - pads[0], x.shape[0])
            for i1 in 0..<outShape[1] {
                let s1 = reflect(i1 - pads[1], x.shape[1])
                for i2 in 0..<outShape[2] {
                    let s2 = reflect(i2 - pads[2], x.shape[2])
                    let row = ((s0 * x.shape[1] + s1) * x.shape[2] + s2) * x.shape[3]
                    for i3 in 0..<outShape[3] {
                        y.data[index] = x.data[row + reflect(i3 - pads[3], x.shape[3])]
                        index += 1
                    }
                }
            }
        }
        return y
    }

    private func instanceNorm(_ node: DecodedNode, _ x: Array4) throws -> Array4 {
        let scale = try weights(node, 1).floats(), bias = try weights(node, 2).floats()
        guard case .float(let eps)? = node.attributes["epsilon"]?.value else { throw EvalError("\(node.name): no epsilon") }
        let (n, c, hw) = (x.shape[0], x.shape[1], x.shape[2] * x.shape[3])
        guard scale.count == c, bias.count == c else { throw EvalError("\(node.name): \(scale.count) scales for \(c) channels") }
        var y = x
        for plane in 0..<n * c {
            let values = x.data[plane * hw..<(plane + 1) * hw].map(Double.init)
            let mean = values.reduce(0, +) / Double(hw)
            let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(hw)
            let ch = plane % c
            let r = 1 / (variance + Double(eps)).squareRoot()
            for (i, v) in values.enumerated() {
                y.data[plane * hw + i] = Float(Double(scale[ch]) * (v - mean) * r + Double(bias[ch]))
            }
        }
        return y
    }

    private func resize(_ node: DecodedNode, _ x: Array4) throws -> Array4 {
        let expected: [String: DecodedAttribute.Value] = [
            "mode": .string("nearest"), "coordinate_transformation_mode": .string("asymmetric"), "nearest_mode": .string("floor"),
        ]
        for (name, value) in expected where node.attributes[name]?.value != value {
            throw EvalError("\(node.name): \(name) is \(String(describing: node.attributes[name]?.value)), only \(value) is implemented")
        }
        guard node.inputs.count == 3, node.inputs[1].isEmpty, let scalesTensor = graph.initializer(node.inputs[2]) else {
            throw EvalError("\(node.name): inputs \(node.inputs), expected [x, \"\", scales initializer]")
        }
        let scales = try scalesTensor.floats()
        guard scales.count == 4 else { throw EvalError("\(node.name): \(scales.count) scales") }
        let outShape = (0..<4).map { Int((Float(x.shape[$0]) * scales[$0]).rounded(.down)) }
        func source(_ i: Int, _ axis: Int) -> Int { min(Int((Float(i) / scales[axis]).rounded(.down)), x.shape[axis] - 1) }
        var y = Array4(zeros: outShape)
        var index = 0
        for i0 in 0..<outShape[0] {
            for i1 in 0..<outShape[1] {
                for i2 in 0..<outShape[2] {
                    let row = ((source(i0, 0) * x.shape[1] + source(i1, 1)) * x.shape[2] + source(i2, 2)) * x.shape[3]
                    for i3 in 0..<outShape[3] {
                        y.data[index] = x.data[row + source(i3, 3)]
                        index += 1
                    }
                }
            }
        }
        return y
    }

    // MARK: - Helpers

    private func map(_ x: Array4, _ f: (Float) -> Float) -> Array4 { Array4(shape: x.shape, data: x.data.map(f)) }

    private func weights(_ node: DecodedNode, _ i: Int) throws -> DecodedTensor {
        guard i < node.inputs.count, let t = graph.initializer(node.inputs[i]) else {
            throw EvalError("\(node.name): input \(i) is not an initializer")
        }
        return t
    }

    private func scalar(_ node: DecodedNode, _ i: Int) throws -> Float {
        let t = try weights(node, i)
        guard t.dims.isEmpty else { throw EvalError("\(node.name): input \(i) has dims \(t.dims), not a scalar") }
        return try t.floats()[0]
    }

    private func ints(_ node: DecodedNode, _ name: String) throws -> [Int] {
        guard case .ints(let xs)? = node.attributes[name]?.value else { throw EvalError("\(node.name): no ints \(name)") }
        return xs.map { Int($0) }
    }
}
