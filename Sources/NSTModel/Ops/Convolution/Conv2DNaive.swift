/// The direct convolution, loop by loop, kept beside the fast im2col path as its reference
/// (llm.c's `matmul_forward_naive`). Tests check that both agree, so the fast path may change freely.
public func conv2dForwardNaive(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ spec: ConvSpec) {
    let yd = spec.output(xd), k = spec.k
    for n in 0..<xd.n {
        for o in 0..<yd.c {
            for i in 0..<yd.h {
                for j in 0..<yd.w {
                    var acc = Double(b?[o] ?? 0)
                    for c in 0..<xd.c {
                        for u in 0..<k {
                            let iy = i * spec.stride + u - spec.pad
                            if iy < 0 || iy >= xd.h { continue }
                            for v in 0..<k {
                                let ix = j * spec.stride + v - spec.pad
                                if ix < 0 || ix >= xd.w { continue }
                                acc += Double(w[((o * xd.c + c) * k + u) * k + v])
                                    * Double(x[((n * xd.c + c) * xd.h + iy) * xd.w + ix])
                            }
                        }
                    }
                    y[((n * yd.c + o) * yd.h + i) * yd.w + j] = Float(acc)
                }
            }
        }
    }
}

/// Naive backward: dx overwritten, dw and db accumulated (same contract as `conv2dBackward`).
public func conv2dBackwardNaive(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                                db: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                                x: UnsafePointer<Float>, _ xd: Dims4, w: UnsafePointer<Float>,
                                _ spec: ConvSpec) {
    let yd = spec.output(xd), k = spec.k
    dx?.update(repeating: 0, count: xd.count)
    for n in 0..<xd.n {
        for o in 0..<yd.c {
            for i in 0..<yd.h {
                for j in 0..<yd.w {
                    let g = dy[((n * yd.c + o) * yd.h + i) * yd.w + j]
                    db?[o] += g
                    for c in 0..<xd.c {
                        for u in 0..<k {
                            let iy = i * spec.stride + u - spec.pad
                            if iy < 0 || iy >= xd.h { continue }
                            for v in 0..<k {
                                let ix = j * spec.stride + v - spec.pad
                                if ix < 0 || ix >= xd.w { continue }
                                let wi = ((o * xd.c + c) * k + u) * k + v
                                let xi = ((n * xd.c + c) * xd.h + iy) * xd.w + ix
                                dw?[wi] += g * x[xi]
                                dx?[xi] += g * w[wi]
                            }
                        }
                    }
                }
            }
        }
    }
}
