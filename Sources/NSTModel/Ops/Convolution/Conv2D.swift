import CBLAS

/// 2-D convolution with bias, NCHW, Float32, on `cblas_sgemm` (Chellapilla et al. 2006, im2col).
///
///   x [N, Cin, H, W] (zero padding `pad` on each side),  w [Cout, Cin, K, K],  b [Cout]
///   y [N, Cout, Ho, Wo],  Ho = (H + 2·pad − K) / stride + 1
///   y[n, o, i, j] = b[o] + Σ_{c, u, v} w[o, c, u, v] · x[n, c, i·stride + u − pad, j·stride + v − pad]
///
/// Per image, the output is computed in bands of rows so that the column buffer
/// (Cin·K·K × band) stays a few MB: y_band = W · col(x)_band, one sgemm per band.
/// Backward per band: dW += dy_band · colᵀ, db += Σ dy, dcol = Wᵀ · dy_band folded back (col2im).
///
/// Two kinds of layer go elsewhere: 3×3 stride-1 layers with at least 16 channels each way to
/// `Winograd` (a quarter of the multiplications), and stride-1 layers with at most 4 output
/// channels to `ConvSmallOut` (a direct convolution). This path takes the rest: the 9×9 input
/// layer, the strided layers, VGG16's first layer, and everything when `Winograd.enabled` is off.
public struct ConvSpec: Equatable, Sendable {
    public var cin, cout, k, stride, pad: Int
    public init(cin: Int, cout: Int, k: Int, stride: Int = 1, pad: Int = 0) {
        self.cin = cin; self.cout = cout; self.k = k; self.stride = stride; self.pad = pad
    }

    public func output(_ x: Dims4) -> Dims4 {
        precondition(x.c == cin, "conv expects \(cin) input channels, got \(x)")
        return Dims4(x.n, cout, (x.h + 2 * pad - k) / stride + 1, (x.w + 2 * pad - k) / stride + 1)
    }

    /// Multiply-adds × 2 of the forward pass.
    public func flops(_ x: Dims4) -> Double {
        let y = output(x)
        return 2 * Double(y.count) * Double(cin * k * k)
    }
}

/// Floats of column buffer per band; about 8 MB keeps the band in the last-level cache.
let convColumnBudget = 1 << 21

@inline(__always)
func bandRows(_ spec: ConvSpec, _ y: Dims4) -> Int {
    max(1, min(y.h, convColumnBudget / max(1, spec.cin * spec.k * spec.k * y.w)))
}

// MARK: - Forward

public func conv2dForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                          _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ spec: ConvSpec,
                          _ ws: Scratch, kernels: WinogradKernelCache? = nil) {
    if ConvSmallOut.applies(spec) { return ConvSmallOut.forward(y, x, xd, w, b, spec, ws) }
    if Winograd.enabled && Winograd.applies(spec) {
        return Winograd.forward(y, x, xd, w, b, spec, ws, kernels: kernels)
    }
    let yd = spec.output(xd)
    let ckk = spec.cin * spec.k * spec.k, hw = yd.h * yd.w
    let rows = bandRows(spec, yd)
    let col = ws.pointer(ckk * rows * yd.w)
    for n in 0..<xd.n {
        let xn = x + n * xd.c * xd.plane, yn = y + n * yd.c * hw
        for o in 0..<spec.cout {
            (yn + o * hw).update(repeating: b?[o] ?? 0, count: hw)
        }
        var r0 = 0
        while r0 < yd.h {
            let r1 = min(yd.h, r0 + rows), cols = (r1 - r0) * yd.w
            im2col(col, xn, xd, spec, yd, r0, r1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                        Int32(spec.cout), Int32(cols), Int32(ckk),
                        1, w, Int32(ckk), col, Int32(cols),
                        1, yn + r0 * yd.w, Int32(hw))
            r0 = r1
        }
    }
}

// MARK: - Backward

/// dx (if given) is overwritten; dw and db (if given) are accumulated.
///
/// With `transposed` scratch given, a stride-1 convolution with few output channels (the last
/// 9×9 layer: 32 → 3) computes dx as a forward convolution of dy with the flipped, transposed
/// kernel, dx = conv(dy, W̃, pad K − 1 − pad), W̃[c, o, u, v] = W[o, c, K−1−u, K−1−v]: a GEMM with
/// Cout·K·K inner products instead of one with Cout = 3 and a Cin·K·K-row col2im.
public func conv2dBackward(dx: UnsafeMutablePointer<Float>?, dw: UnsafeMutablePointer<Float>?,
                           db: UnsafeMutablePointer<Float>?, dy: UnsafePointer<Float>,
                           x: UnsafePointer<Float>, _ xd: Dims4, w: UnsafePointer<Float>,
                           _ spec: ConvSpec, _ ws: Scratch, transposed: Scratch? = nil,
                           kernels: WinogradKernelCache? = nil) {
    if Winograd.enabled && Winograd.applies(spec) {
        if let dw {
            Winograd.weightGradient(dw: dw, db: db, dy: dy, x: x, xd, spec, ws)
        } else if let db {
            Winograd.biasGradient(db, dy, spec.output(xd))
        }
        if let dx { Winograd.inputGradient(dx, dy, xd, w, spec, ws, kernels: kernels) }
        return
    }
    if let dx, let transposed, spec.stride == 1, spec.cout * 4 <= spec.cin {
        if let dw, ConvSmallOut.applies(spec) {
            ConvSmallOut.weightGradient(dw: dw, db: db, dy: dy, x: x, xd, spec)
        } else {
            conv2dBackward(dx: nil, dw: dw, db: db, dy: dy, x: x, xd, w: w, spec, ws)
        }
        let k = spec.k, kk = k * k
        let wt = transposed.pointer(spec.cin * spec.cout * kk)
        for o in 0..<spec.cout {
            for c in 0..<spec.cin {
                let src = w + (o * spec.cin + c) * kk, dst = wt + (c * spec.cout + o) * kk
                for i in 0..<kk { dst[i] = src[kk - 1 - i] }
            }
        }
        let tspec = ConvSpec(cin: spec.cout, cout: spec.cin, k: k, stride: 1, pad: k - 1 - spec.pad)
        conv2dForward(dx, dy, spec.output(xd), wt, nil, tspec, ws)
        return
    }
    let yd = spec.output(xd)
    let ckk = spec.cin * spec.k * spec.k, hw = yd.h * yd.w
    let rows = bandRows(spec, yd)
    let col = ws.pointer(2 * ckk * rows * yd.w)
    let dcol = col + ckk * rows * yd.w
    if let dx { dx.update(repeating: 0, count: xd.count) }
    for n in 0..<xd.n {
        let xn = x + n * xd.c * xd.plane, dyn = dy + n * yd.c * hw
        if let db {
            for o in 0..<spec.cout {
                var s: Float = 0
                let p = dyn + o * hw
                for i in 0..<hw { s += p[i] }
                db[o] += s
            }
        }
        var r0 = 0
        while r0 < yd.h {
            let r1 = min(yd.h, r0 + rows), cols = (r1 - r0) * yd.w
            if let dw {
                im2col(col, xn, xd, spec, yd, r0, r1)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                            Int32(spec.cout), Int32(ckk), Int32(cols),
                            1, dyn + r0 * yd.w, Int32(hw), col, Int32(cols),
                            1, dw, Int32(ckk))
            }
            if let dx {
                cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans,
                            Int32(ckk), Int32(cols), Int32(spec.cout),
                            1, w, Int32(ckk), dyn + r0 * yd.w, Int32(hw),
                            0, dcol, Int32(cols))
                col2im(dx + n * xd.c * xd.plane, dcol, xd, spec, yd, r0, r1)
            }
            r0 = r1
        }
    }
}

// MARK: - im2col / col2im for output rows r0..<r1

/// col[(c·K + u)·K + v][(i − r0)·Wo + j] = x[c, i·s + u − pad, j·s + v − pad] (0 outside).
func im2col(_ col: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
            _ spec: ConvSpec, _ yd: Dims4, _ r0: Int, _ r1: Int) {
    let k = spec.k, s = spec.stride, p = spec.pad, wo = yd.w
    let cols = (r1 - r0) * wo
    parallelFor(spec.cin * k, work: spec.cin * k * k * cols) { cu in
        let c = cu / k, u = cu % k
        let xc = x + c * xd.plane
        for v in 0..<k {
            var dst = col + ((c * k + u) * k + v) * cols
            // Output columns j whose input column j·s + v − p lies inside [0, W).
            let (jLo, jHi) = validColumns(v, spec, xd.w, wo)
            for i in r0..<r1 {
                let iy = i * s + u - p
                if iy < 0 || iy >= xd.h {
                    dst.update(repeating: 0, count: wo)
                } else {
                    let src = xc + iy * xd.w + v - p
                    for j in 0..<jLo { dst[j] = 0 }
                    if s == 1 {
                        (dst + jLo).update(from: src + jLo, count: jHi - jLo)
                    } else {
                        for j in jLo..<jHi { dst[j] = src[j * s] }
                    }
                    for j in jHi..<wo { dst[j] = 0 }
                }
                dst += wo
            }
        }
    }
}

/// The adjoint of `im2col`: dx[c, i·s + u − pad, j·s + v − pad] += col[…]. Parallel over c only,
/// so no two threads add into the same input plane.
func col2im(_ dx: UnsafeMutablePointer<Float>, _ col: UnsafePointer<Float>, _ xd: Dims4,
            _ spec: ConvSpec, _ yd: Dims4, _ r0: Int, _ r1: Int) {
    let k = spec.k, s = spec.stride, p = spec.pad, wo = yd.w
    let cols = (r1 - r0) * wo
    parallelFor(spec.cin, work: spec.cin * k * k * cols) { c in
        let dxc = dx + c * xd.plane
        for u in 0..<k {
            for v in 0..<k {
                var src = col + ((c * k + u) * k + v) * cols
                let (jLo, jHi) = validColumns(v, spec, xd.w, wo)
                for i in r0..<r1 {
                    let iy = i * s + u - p
                    if iy >= 0 && iy < xd.h {
                        let dst = dxc + iy * xd.w + v - p
                        if s == 1 {
                            for j in jLo..<jHi { dst[j] += src[j] }
                        } else {
                            for j in jLo..<jHi { dst[j * s] += src[j] }
                        }
                    }
                    src += wo
                }
            }
        }
    }
}

/// The output columns j in jLo..<jHi whose input column j·s + v − pad lies inside [0, w).
@inline(__always)
func validColumns(_ v: Int, _ spec: ConvSpec, _ w: Int, _ wo: Int) -> (Int, Int) {
    let s = spec.stride, p = spec.pad
    let lo = min(wo, max(0, (p - v + s - 1) / s))
    let last = w - 1 + p - v          // j·s ≤ last
    let hi = last < 0 ? lo : max(lo, min(wo, last / s + 1))
    return (lo, hi)
}
