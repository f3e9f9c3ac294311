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

    typealias V8 = SIMD8<Float>

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
        UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
    }

    @inline(__always) static func store(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
    }

    // MARK: - Forward

    public static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ spec: ConvSpec,
                               _ ws: Scratch) {
        let yd = spec.output(xd), k = spec.k, cin = spec.cin, cout = spec.cout, wo = yd.w, kk = k * k
        // Output channels go three at a time; packed[((g·Cin + c)·K² + t)·3 + q] = w[3g + q, c, t]
        // (0 past Cout), so a tap's three weights are adjacent.
        let groups = (cout + 2) / 3
        do {
            let packed = ws.pointer(groups * cin * kk * 3)
            for g in 0..<groups {
                for c in 0..<cin {
                    for t in 0..<kk {
                        for q in 0..<3 {
                            let o = 3 * g + q
                            packed[((g * cin + c) * kk + t) * 3 + q] = o < cout ? w[(o * cin + c) * kk + t] : 0
                        }
                    }
                }
            }
            parallelFor(xd.n * yd.h, work: yd.count * cin * kk) { row in
                let n = row / yd.h, i = row % yd.h
                let xn = x + n * cin * xd.plane
                for g in 0..<groups {
                    var j = 0
                    // 16 columns × 3 channels in six 8-wide accumulators, across every (c, u, v).
                    while j + 16 <= wo {
                        var acc = (V8(), V8(), V8(), V8(), V8(), V8())
                        var wq = UnsafePointer(packed + g * cin * kk * 3)
                        for c in 0..<cin {
                            for u in 0..<k {
                                let xr = xn + (c * xd.h + i + u) * xd.w + j
                                for v in 0..<k {
                                    let x0 = load(xr + v), x1 = load(xr + v + 8)
                                    let w0 = V8(repeating: wq[0]), w1 = V8(repeating: wq[1]), w2 = V8(repeating: wq[2])
                                    acc.0 = acc.0.addingProduct(w0, x0); acc.1 = acc.1.addingProduct(w0, x1)
                                    acc.2 = acc.2.addingProduct(w1, x0); acc.3 = acc.3.addingProduct(w1, x1)
                                    acc.4 = acc.4.addingProduct(w2, x0); acc.5 = acc.5.addingProduct(w2, x1)
                                    wq += 3
                                }
                            }
                        }
                        for q in 0..<min(3, cout - 3 * g) {
                            let o = 3 * g + q, bias = V8(repeating: b?[o] ?? 0)
                            let yrow = y + ((n * cout + o) * yd.h + i) * wo + j
                            let (lo, hi) = q == 0 ? (acc.0, acc.1) : q == 1 ? (acc.2, acc.3) : (acc.4, acc.5)
                            store(lo + bias, yrow); store(hi + bias, yrow + 8)
                        }
                        j += 16
                    }
                    // The last columns, one at a time.
                    for q in 0..<min(3, cout - 3 * g) {
                        let o = 3 * g + q
                        let yrow = y + ((n * cout + o) * yd.h + i) * wo
                        for jj in j..<wo {
                            var s: Float = 0
                            for c in 0..<cin {
                                for u in 0..<k {
                                    let xr = xn + (c * xd.h + i + u) * xd.w + jj
                                    let taps = w + ((o * cin + c) * k + u) * k
                                    for v in 0..<k { s += taps[v] * xr[v] }
                                }
                            }
                            yrow[jj] = s + (b?[o] ?? 0)
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
                                let dst = acc.baseAddress! + (o * k + u) * k
                                let vectorEnd = wo & ~7
                                // Three taps at a time share each load of dy.
                                var v = 0
                                while v + 3 <= k {
                                    var p0 = V8(), p1 = V8(), p2 = V8()
                                    var j = 0
                                    while j < vectorEnd {
                                        let gv = load(g + j), xr = xrow + j + v
                                        p0 = p0.addingProduct(gv, load(xr))
                                        p1 = p1.addingProduct(gv, load(xr + 1))
                                        p2 = p2.addingProduct(gv, load(xr + 2))
                                        j += 8
                                    }
                                    dst[v] += Double(p0.sum()); dst[v + 1] += Double(p1.sum()); dst[v + 2] += Double(p2.sum())
                                    v += 3
                                }
                                while v < k {
                                    var p0 = V8()
                                    var j = 0
                                    while j < vectorEnd { p0 = p0.addingProduct(load(g + j), load(xrow + j + v)); j += 8 }
                                    dst[v] += Double(p0.sum())
                                    v += 1
                                }
                                for j in vectorEnd..<wo {
                                    for v in 0..<k { dst[v] += Double(g[j] * xrow[j + v]) }
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
