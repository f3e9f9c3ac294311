/// Direct convolution for layers with very few output channels (TransformerNet's last layer,
/// 9×9, 32 → 3), stride 1, no padding (the caller pads).
///
/// im2col would write Cin·K·K = 2,592 floats per output pixel for only 3 inner products each,
/// so memory traffic, not arithmetic, would set the pace. Here each output row is accumulated in
/// 8-wide vectors straight from the input rows, K taps at a time:
///   y[o, i, j…j+7] += Σ_v w[o, c, u, v] · x[c, i + u, j + v … j + v + 7]
/// and the weight gradient is a dot product per tap:
///   dw[o, c, u, v] += Σ_{n, i, j} dy[n, o, i, j] · x[n, c, i + u, j + v]
public enum ConvSmallOut {
    public static let maxOutputChannels = 4

    public static func applies(_ spec: ConvSpec) -> Bool {
        spec.stride == 1 && spec.pad == 0 && spec.cout <= maxOutputChannels
    }

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    // MARK: - Forward

    public static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ spec: ConvSpec) {
        let yd = spec.output(xd), k = spec.k, cin = spec.cin, wo = yd.w
        parallelFor(xd.n * yd.h, work: yd.count * cin * k * k) { row in
            let n = row / yd.h, i = row % yd.h
            for o in 0..<spec.cout {
                let yrow = y + ((n * spec.cout + o) * yd.h + i) * wo
                yrow.update(repeating: b?[o] ?? 0, count: wo)
                for c in 0..<cin {
                    for u in 0..<k {
                        let xrow = UnsafePointer(x + ((n * cin + c) * xd.h + i + u) * xd.w)
                        let taps = w + ((o * cin + c) * k + u) * k
                        var j = 0
                        while j + 8 <= wo {
                            var acc = load(yrow + j)
                            for v in 0..<k { acc += taps[v] * load(xrow + j + v) }
                            store(acc, yrow + j)
                            j += 8
                        }
                        while j < wo {
                            var s = yrow[j]
                            for v in 0..<k { s += taps[v] * xrow[j + v] }
                            yrow[j] = s
                            j += 1
                        }
                    }
                }
            }
        }
    }

    // MARK: - Weight gradient

    /// dw (and db, if given) are accumulated. Parallel over input channels: each thread owns
    /// the slices dw[·, c, ·, ·].
    public static func weightGradient(dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?,
                                      dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ xd: Dims4, _ spec: ConvSpec) {
        let yd = spec.output(xd), k = spec.k, cin = spec.cin, cout = spec.cout, wo = yd.w
        parallelFor(cin, work: yd.count * cin * k * k) { c in
            var acc = [Double](repeating: 0, count: cout * k * k)
            acc.withUnsafeMutableBufferPointer { acc in
                for n in 0..<xd.n {
                    for i in 0..<yd.h {
                        for u in 0..<k {
                            let xrow = x + ((n * cin + c) * xd.h + i + u) * xd.w
                            for o in 0..<cout {
                                let g = dy + ((n * cout + o) * yd.h + i) * wo
                                for v in 0..<k {
                                    var part = SIMD8<Float>()
                                    var j = 0
                                    while j + 8 <= wo {
                                        part += load(g + j) * load(xrow + j + v)
                                        j += 8
                                    }
                                    var s = Double(part.sum())
                                    while j < wo { s += Double(g[j] * xrow[j + v]); j += 1 }
                                    acc[(o * k + u) * k + v] += s
                                }
                            }
                        }
                    }
                }
                for o in 0..<cout {
                    for t in 0..<k * k { dw[(o * cin + c) * k * k + t] += Float(acc[o * k * k + t]) }
                }
            }
        }
        if let db {
            for o in 0..<cout {
                var s = 0.0
                for n in 0..<xd.n {
                    let g = dy + (n * cout + o) * yd.plane
                    for p in 0..<yd.plane { s += Double(g[p]) }
                }
                db[o] += Float(s)
            }
        }
    }
}
