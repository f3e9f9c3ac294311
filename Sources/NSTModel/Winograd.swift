import CBLAS
import Dispatch
import Foundation

/// 3×3, stride-1 convolution by Winograd's minimal filtering F(4×4, 3×3) (Lavin & Gray, "Fast
/// Algorithms for Convolutional Neural Networks", 2016): 36 multiplications per 4×4 output tile
/// and channel pair instead of 144, so a quarter of the GEMM work of im2col.
///
/// Per 6×6 input tile d (stride 4) and 3×3 kernel g, the 4×4 output tile is
///   Y = Aᵀ [ U ⊙ V ] A,   U = G g Gᵀ,   V = Bᵀ d B
/// and over channels, for each of the 36 positions ξ of the 6×6 transformed tile,
///   M[ξ] (Cout × T) = U[ξ] (Cout × Cin) · V[ξ] (Cin × T)          — one sgemm per ξ.
///
/// Backward, for the same tiling:
///   input gradient: dx is itself a stride-1 3×3 convolution of dy with the flipped, transposed
///     kernel and padding 2 − pad, so it runs through the same forward (`inputGradient`);
///   weight gradient: dU[ξ] (Cout × Cin) = Σ_tiles Ŷ[ξ] · V[ξ]ᵀ with Ŷ = A dY Aᵀ, then dW = Gᵀ dU G
///     (`weightGradient`): the exact gradient of the forward above.
///
/// Work is split into bands of whole tile rows. Each thread owns its bands and its buffers (the
/// transformed input V, the GEMM result M, the deinterleaved input rows) and calls a single-threaded
/// sgemm, so a band's data stays in that core's caches from transform to GEMM to output. The
/// transforms run on 8 tiles at a time: input rows are first split into their four phases
/// (x mod 4), so tile tx's columns 4·tx + j are contiguous across tx.
public enum Winograd {
    typealias V8 = SIMD8<Float>

    /// Off: every layer takes im2col (for comparisons and `bench --no-winograd`).
    nonisolated(unsafe) public static var enabled = true

    /// Layers that take this path: 3×3, stride 1, zero padding ≤ 2, and enough channels on both
    /// sides for the 36 GEMMs to be worth it (VGG16's first layer has Cin = 3 and stays on im2col).
    public static func applies(_ spec: ConvSpec) -> Bool {
        spec.k == 3 && spec.stride == 1 && spec.pad <= 2 && spec.cin >= 16 && spec.cout >= 16
    }

    /// Tiles per band a thread works on: large enough for an efficient sgemm, small enough that
    /// V and M stay in the last-level cache (measured on a whole training step: 128 and 256 tiles
    /// within 1% of each other, 512 tiles 7% slower).
    static let targetTilesPerBand = 256

    /// The tiling of one layer.
    struct Plan {
        let n, cin, cout, h, w, pad, ho, wo: Int
        let tilesY, tilesX: Int
        /// tilesX rounded up to the 8 SIMD lanes: the tiles of one tile row in V and M.
        let tilesXp: Int
        /// Length of one phase of a deinterleaved row (tilesXp + 1 tiles are read, plus slack).
        let phase: Int
        let rowsPerBand, bands, threads: Int

        init(_ xd: Dims4, _ spec: ConvSpec, threads: Int) {
            n = xd.n; cin = spec.cin; cout = spec.cout; h = xd.h; w = xd.w; pad = spec.pad
            ho = h + 2 * pad - 2; wo = w + 2 * pad - 2
            tilesY = (ho + 3) / 4; tilesX = (wo + 3) / 4
            tilesXp = (tilesX + 7) / 8 * 8
            phase = tilesXp + 8
            let total = n * tilesY
            // Whole tile rows, about targetTilesPerBand tiles, and at least one band per thread.
            let rows = max(1, min(Winograd.targetTilesPerBand / tilesXp, (total + threads - 1) / threads))
            rowsPerBand = rows
            bands = (total + rows - 1) / rows
            // At least one thread, which also zeroes the weight gradient's sums when there is no tile.
            self.threads = max(1, min(threads, bands))
        }

        var tilesPerBand: Int { rowsPerBand * tilesXp }
        var totalRows: Int { n * tilesY }
        /// The deinterleaved input rows of a band (4 per tile row plus the 2-row overlap), then 36
        /// vectors of scratch for `inputTile`.
        var phaseFloats: Int { (4 * rowsPerBand + 2) * 4 * phase + 36 * 8 }
        /// Floats between two positions ξ of V and of M (and Ŷ). One cache line more than the
        /// matrix: a power-of-two distance would put all 36 of a tile's values in the same cache set.
        var vStride: Int { cin * tilesPerBand + 16 }
        var mStride: Int { cout * tilesPerBand + 16 }
        var vFloats: Int { 36 * vStride }
        var mFloats: Int { 36 * mStride }
        var rowFloats: Int { 4 * 4 * tilesXp + 8 }
        var uFloats: Int { 36 * cout * cin }
        /// Per-thread floats of the forward: phases, V, M, output rows.
        var forwardThreadFloats: Int { phaseFloats + vFloats + mFloats + rowFloats }

        /// Global tile rows of band b.
        func band(_ b: Int) -> Range<Int> { b * rowsPerBand ..< min(totalRows, (b + 1) * rowsPerBand) }
    }

    // MARK: - Forward

    /// y = conv(x, w) + b for a layer where `applies(spec)`. Scratch holds U and every thread's
    /// buffers; nothing is allocated once it has grown to the layer's size.
    public static func forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                               _ w: UnsafePointer<Float>, _ b: UnsafePointer<Float>?, _ spec: ConvSpec,
                               _ ws: Scratch, kernels: WinogradKernelCache? = nil) {
        convolve(y, x, xd, spec, weights: w, of: spec, flipped: false, bias: b, ws, kernels)
    }

    /// dx = conv(dy, W̃, pad 2 − pad), W̃[c, o] = W[o, c] rotated by 180°: the input gradient of a
    /// layer where `applies(spec)` (dx is overwritten).
    public static func inputGradient(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ xd: Dims4,
                                     _ w: UnsafePointer<Float>, _ spec: ConvSpec, _ ws: Scratch,
                                     kernels: WinogradKernelCache? = nil) {
        let tspec = ConvSpec(cin: spec.cout, cout: spec.cin, k: 3, stride: 1, pad: 2 - spec.pad)
        convolve(dx, dy, spec.output(xd), tspec, weights: w, of: spec, flipped: true, bias: nil, ws, kernels)
    }

    /// The convolution `spec` of x (dims xd), its kernels transformed from the weights w of the
    /// layer `layer` (flipped for the input gradient), from the cache when there is one.
    private static func convolve(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4, _ spec: ConvSpec,
                                 weights w: UnsafePointer<Float>, of layer: ConvSpec, flipped: Bool,
                                 bias b: UnsafePointer<Float>?, _ ws: Scratch, _ kernels: WinogradKernelCache?) {
        let plan = Plan(xd, spec, threads: Threads.count)
        let buf = ws.pointer(plan.uFloats + plan.threads * plan.forwardThreadFloats)
        let u = kernels?.transformed(w, layer, flipped: flipped) ?? {
            transformWeights(buf, w, cout: layer.cout, cin: layer.cin, flipped: flipped)
            return UnsafePointer(buf)
        }()
        run(plan, u, buf + plan.uFloats, x, y, b)
    }

    /// `threadBuffers` holds each thread's buffers, one after the other.
    private static func run(_ plan: Plan, _ u: UnsafePointer<Float>, _ threadBuffers: UnsafeMutablePointer<Float>,
                            _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>, _ b: UnsafePointer<Float>?) {
        onThreads(plan) { t in
            let base = threadBuffers + t * plan.forwardThreadFloats
            let ph = base, v = ph + plan.phaseFloats, m = v + plan.vFloats, rows = m + plan.mFloats
            var band = t
            while band < plan.bands {
                let r = plan.band(band)
                transformInput(v, x, plan, r, ph)
                // The last band may be short: only its first r.count · tilesXp columns are set.
                let tiles = Int32(r.count * plan.tilesXp), ld = Int32(plan.tilesPerBand)
                for xi in 0..<36 {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans,
                                Int32(plan.cout), tiles, Int32(plan.cin),
                                1, u + xi * plan.cout * plan.cin, Int32(plan.cin),
                                v + xi * plan.vStride, ld,
                                0, m + xi * plan.mStride, ld)
                }
                transformOutput(y, m, b, plan, r, rows)
                band += plan.threads
            }
        }
    }

    // MARK: - Weight gradient

    /// dw += ∂L/∂w and db += Σ dy for a layer where `applies(spec)`.
    public static func weightGradient(dw: UnsafeMutablePointer<Float>, db: UnsafeMutablePointer<Float>?,
                                      dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ xd: Dims4,
                                      _ spec: ConvSpec, _ ws: Scratch) {
        let plan = Plan(xd, spec, threads: Threads.count)
        let perThread = plan.phaseFloats + plan.vFloats + plan.mFloats + plan.uFloats
        let buf = ws.pointer(plan.threads * perThread)
        onThreads(plan) { t in
            let ph = buf + t * perThread, v = ph + plan.phaseFloats, yhat = v + plan.vFloats
            let du = yhat + plan.mFloats
            du.update(repeating: 0, count: plan.uFloats)
            var band = t
            while band < plan.bands {
                let r = plan.band(band)
                transformInput(v, x, plan, r, ph)
                transformOutputGradient(yhat, dy, plan, r, ph)
                let tiles = Int32(r.count * plan.tilesXp), ld = Int32(plan.tilesPerBand)
                for xi in 0..<36 {
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans,
                                Int32(plan.cout), Int32(plan.cin), tiles,
                                1, yhat + xi * plan.mStride, ld,
                                v + xi * plan.vStride, ld,
                                1, du + xi * plan.cout * plan.cin, Int32(plan.cin))
                }
                band += plan.threads
            }
        }
        // Sum the threads' dU into the first, then dW += Gᵀ dU G.
        for t in 1..<max(1, plan.threads) {
            let src = buf + t * perThread + plan.phaseFloats + plan.vFloats + plan.mFloats
            let dst = buf + plan.phaseFloats + plan.vFloats + plan.mFloats
            for i in 0..<plan.uFloats { dst[i] += src[i] }
        }
        inverseTransformWeights(dw, buf + plan.phaseFloats + plan.vFloats + plan.mFloats, cout: spec.cout, cin: spec.cin)
        if let db { biasGradient(db, dy, spec.output(xd)) }
    }

    /// db[o] += Σ_{n, i, j} dy[n, o, i, j].
    static func biasGradient(_ db: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ yd: Dims4) {
        for n in 0..<yd.n {
            for o in 0..<yd.c {
                let p = dy + (n * yd.c + o) * yd.plane
                var s: Float = 0
                for i in 0..<yd.plane { s += p[i] }
                db[o] += s
            }
        }
    }

    // MARK: - Threads

    /// Runs `body(thread)` on `plan.threads` threads, with OpenBLAS single-threaded meanwhile (each
    /// thread's sgemm runs on that thread).
    private static func onThreads(_ plan: Plan, _ body: (Int) -> Void) {
        if plan.threads <= 1 { body(0); return }
        openblas_set_num_threads(1)
        DispatchQueue.concurrentPerform(iterations: plan.threads, execute: body)
        openblas_set_num_threads(Int32(Threads.count))
    }

    // MARK: - Deinterleaved rows

    /// dst[q·P + i] = row[4·i + q − pad] for one row of `plane` (0 outside the row or the plane).
    /// Eight i at a time: 32 consecutive inputs split into their four phases by shuffles.
    @inline(__always)
    private static func phaseRow(_ dst: UnsafeMutablePointer<Float>, _ plane: UnsafePointer<Float>, row iy: Int,
                                 h: Int, w: Int, pad: Int, phase: Int) {
        guard iy >= 0 && iy < h else { dst.update(repeating: 0, count: 4 * phase); return }
        let src = plane + iy * w
        var i0 = 0
        while i0 < phase {
            let x0 = 4 * i0 - pad
            if x0 >= 0 && x0 + 32 <= w {
                let a = load(src + x0), b = load(src + x0 + 8), c = load(src + x0 + 16), d = load(src + x0 + 24)
                store(V8(a[0], a[4], b[0], b[4], c[0], c[4], d[0], d[4]), dst + i0)
                store(V8(a[1], a[5], b[1], b[5], c[1], c[5], d[1], d[5]), dst + phase + i0)
                store(V8(a[2], a[6], b[2], b[6], c[2], c[6], d[2], d[6]), dst + 2 * phase + i0)
                store(V8(a[3], a[7], b[3], b[7], c[3], c[7], d[3], d[7]), dst + 3 * phase + i0)
            } else {
                for q in 0..<4 {
                    for i in i0..<(i0 + 8) {
                        let x = x0 + 4 * (i - i0) + q
                        dst[q * phase + i] = x >= 0 && x < w ? src[x] : 0
                    }
                }
            }
            i0 += 8
        }
    }

    /// dst[4·i + l] = y_l[i] for the eight lanes i: four phase vectors back to 32 consecutive floats.
    @inline(__always)
    private static func interleave(_ y0: V8, _ y1: V8, _ y2: V8, _ y3: V8, _ dst: UnsafeMutablePointer<Float>) {
        store(V8(y0[0], y1[0], y2[0], y3[0], y0[1], y1[1], y2[1], y3[1]), dst)
        store(V8(y0[2], y1[2], y2[2], y3[2], y0[3], y1[3], y2[3], y3[3]), dst + 8)
        store(V8(y0[4], y1[4], y2[4], y3[4], y0[5], y1[5], y2[5], y3[5]), dst + 16)
        store(V8(y0[6], y1[6], y2[6], y3[6], y0[7], y1[7], y2[7], y3[7]), dst + 24)
    }

    // MARK: - Input transform V = Bᵀ d B

    /// V[ξ][c][t] for the tiles of global tile rows `r` (t = (row − r.lowerBound)·tilesXp + tx).
    private static func transformInput(_ v: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ plan: Plan,
                                       _ r: Range<Int>, _ ph: UnsafeMutablePointer<Float>) {
        let tp = plan.tilesPerBand, stride = plan.vStride, P = plan.phase
        let t = ph + plan.phaseFloats - 36 * 8
        for c in 0..<plan.cin {
            var g = r.lowerBound
            while g < r.upperBound {
                let n = g / plan.tilesY, ty0 = g % plan.tilesY
                let end = min(r.upperBound, (n + 1) * plan.tilesY), run = end - g
                let plane = x + (n * plan.cin + c) * plan.h * plan.w
                for i in 0..<(4 * run + 2) {
                    phaseRow(ph + i * 4 * P, plane, row: 4 * ty0 - plan.pad + i, h: plan.h, w: plan.w, pad: plan.pad, phase: P)
                }
                for rr in 0..<run {
                    let rows = UnsafePointer(ph + 4 * rr * 4 * P)
                    let out = v + c * tp + (g - r.lowerBound + rr) * plan.tilesXp
                    var b = 0
                    while b < plan.tilesXp {
                        inputTile(rows + b, P, out + b, stride, t)
                        b += 8
                    }
                }
                g = end
            }
        }
    }

    /// Eight tiles: rows[(i·4 + q)·P + tx] holds input row i, column 4·tx + q of the tile row.
    @inline(__always)
    private static func inputTile(_ rows: UnsafePointer<Float>, _ P: Int, _ out: UnsafeMutablePointer<Float>, _ stride: Int,
                                  _ t: UnsafeMutablePointer<Float>) {
        do {
            // Along each row: the six columns 4tx + 0…5 are phases 0…3 at tx and 0…1 at tx + 1.
            // t holds the 36 intermediate vectors (8 floats each), row-major.
            for i in 0..<6 {
                let row = rows + i * 4 * P, ti = t + i * 48
                let z = bt(load(row), load(row + P), load(row + 2 * P), load(row + 3 * P), load(row + 1), load(row + P + 1))
                store(z.0, ti); store(z.1, ti + 8); store(z.2, ti + 16)
                store(z.3, ti + 24); store(z.4, ti + 32); store(z.5, ti + 40)
            }
            // Down each column.
            for l in 0..<6 {
                let tl = UnsafePointer(t + l * 8)
                let z = bt(load(tl), load(tl + 48), load(tl + 96), load(tl + 144), load(tl + 192), load(tl + 240))
                store(z.0, out + (0 * 6 + l) * stride); store(z.1, out + (1 * 6 + l) * stride)
                store(z.2, out + (2 * 6 + l) * stride); store(z.3, out + (3 * 6 + l) * stride)
                store(z.4, out + (4 * 6 + l) * stride); store(z.5, out + (5 * 6 + l) * stride)
            }
        }
    }

    /// Bᵀ z, Bᵀ = [4 0 −5 0 1 0; 0 −4 −4 1 1 0; 0 4 −4 −1 1 0; 0 −2 −1 2 1 0; 0 2 −1 −2 1 0; 0 4 0 −5 0 1].
    @inline(__always)
    static func bt(_ z0: V8, _ z1: V8, _ z2: V8, _ z3: V8, _ z4: V8, _ z5: V8) -> (V8, V8, V8, V8, V8, V8) {
        let a = z3 + z4, b = z4 - z3, c = z4 - z2, d = z3 - z1
        return (4 * z0 - 5 * z2 + z4,
                a - 4 * (z1 + z2),
                b + 4 * (z1 - z2),
                c + 2 * d,
                c - 2 * d,
                4 * z1 - 5 * z3 + z5)
    }

    // MARK: - Output transform Y = Aᵀ M A

    private static func transformOutput(_ y: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
                                        _ plan: Plan, _ r: Range<Int>, _ rowBuf: UnsafeMutablePointer<Float>) {
        let tp = plan.tilesPerBand, stride = plan.mStride, rowLen = 4 * plan.tilesXp
        for o in 0..<plan.cout {
            let bo = bias?[o] ?? 0
            for g in r {
                let n = g / plan.tilesY, ty = g % plan.tilesY
                let src = m + o * tp + (g - r.lowerBound) * plan.tilesXp
                var b = 0
                while b < plan.tilesXp {
                    outputTile(src + b, stride, bo, rowBuf + 4 * b, rowLen)
                    b += 8
                }
                let plane = y + (n * plan.cout + o) * plan.ho * plan.wo
                for i in 0..<min(4, plan.ho - 4 * ty) {
                    (plane + (4 * ty + i) * plan.wo).update(from: rowBuf + i * rowLen, count: plan.wo)
                }
            }
        }
    }

    /// Eight tiles from M (position ξ at m + ξ·stride) to four output rows of rowBuf, interleaved:
    /// rowBuf[i·rowLen + 4·lane + l] = Y_lane[i][l] + bias.
    @inline(__always)
    private static func outputTile(_ m: UnsafePointer<Float>, _ stride: Int, _ bias: Float,
                                   _ rowBuf: UnsafeMutablePointer<Float>, _ rowLen: Int) {
        withUnsafeTemporaryAllocation(of: V8.self, capacity: 24) { s in
            // Along each of the six rows: 6 → 4.
            for k in 0..<6 {
                let row = m + k * 6 * stride
                let z = at(load(row), load(row + stride), load(row + 2 * stride), load(row + 3 * stride),
                           load(row + 4 * stride), load(row + 5 * stride))
                s[k * 4 + 0] = z.0; s[k * 4 + 1] = z.1; s[k * 4 + 2] = z.2; s[k * 4 + 3] = z.3
            }
            // Down each column: 6 → 4, then interleave the four columns of each lane.
            let c0 = at(s[0], s[4], s[8], s[12], s[16], s[20]), c1 = at(s[1], s[5], s[9], s[13], s[17], s[21])
            let c2 = at(s[2], s[6], s[10], s[14], s[18], s[22]), c3 = at(s[3], s[7], s[11], s[15], s[19], s[23])
            let bv = V8(repeating: bias)
            interleave(c0.0 + bv, c1.0 + bv, c2.0 + bv, c3.0 + bv, rowBuf)
            interleave(c0.1 + bv, c1.1 + bv, c2.1 + bv, c3.1 + bv, rowBuf + rowLen)
            interleave(c0.2 + bv, c1.2 + bv, c2.2 + bv, c3.2 + bv, rowBuf + 2 * rowLen)
            interleave(c0.3 + bv, c1.3 + bv, c2.3 + bv, c3.3 + bv, rowBuf + 3 * rowLen)
        }
    }

    /// Aᵀ m, Aᵀ = [1 1 1 1 1 0; 0 1 −1 2 −2 0; 0 1 1 4 4 0; 0 1 −1 8 −8 1].
    @inline(__always)
    static func at(_ m0: V8, _ m1: V8, _ m2: V8, _ m3: V8, _ m4: V8, _ m5: V8) -> (V8, V8, V8, V8) {
        let a = m1 + m2, b = m1 - m2, c = m3 + m4, d = m3 - m4
        return (m0 + a + c, b + 2 * d, a + 4 * c, b + 8 * d + m5)
    }

    // MARK: - Output-gradient transform Ŷ = A dY Aᵀ

    /// Ŷ[ξ][o][t] for the tiles of global tile rows `r`; dy is 0 past the output's edge.
    private static func transformOutputGradient(_ yhat: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
                                                _ plan: Plan, _ r: Range<Int>, _ ph: UnsafeMutablePointer<Float>) {
        let tp = plan.tilesPerBand, stride = plan.mStride, P = plan.phase
        for o in 0..<plan.cout {
            for g in r {
                let n = g / plan.tilesY, ty = g % plan.tilesY
                let plane = dy + (n * plan.cout + o) * plan.ho * plan.wo
                for i in 0..<4 {
                    phaseRow(ph + i * 4 * P, plane, row: 4 * ty + i, h: plan.ho, w: plan.wo, pad: 0, phase: P)
                }
                let out = yhat + o * tp + (g - r.lowerBound) * plan.tilesXp
                var b = 0
                while b < plan.tilesXp {
                    outputGradientTile(UnsafePointer(ph + b), P, out + b, stride)
                    b += 8
                }
            }
        }
    }

    @inline(__always)
    private static func outputGradientTile(_ rows: UnsafePointer<Float>, _ P: Int, _ out: UnsafeMutablePointer<Float>, _ stride: Int) {
        withUnsafeTemporaryAllocation(of: V8.self, capacity: 24) { t in
            // Along each of the four rows: 4 → 6.
            for i in 0..<4 {
                let row = rows + i * 4 * P
                let z = a(load(row), load(row + P), load(row + 2 * P), load(row + 3 * P))
                t[i * 6 + 0] = z.0; t[i * 6 + 1] = z.1; t[i * 6 + 2] = z.2
                t[i * 6 + 3] = z.3; t[i * 6 + 4] = z.4; t[i * 6 + 5] = z.5
            }
            // Down each column: 4 → 6.
            for j in 0..<6 {
                let z = a(t[j], t[6 + j], t[12 + j], t[18 + j])
                store(z.0, out + (0 * 6 + j) * stride); store(z.1, out + (1 * 6 + j) * stride)
                store(z.2, out + (2 * 6 + j) * stride); store(z.3, out + (3 * 6 + j) * stride)
                store(z.4, out + (4 * 6 + j) * stride); store(z.5, out + (5 * 6 + j) * stride)
            }
        }
    }

    /// A d, A = (Aᵀ)ᵀ: [1 0 0 0; 1 1 1 1; 1 −1 1 −1; 1 2 4 8; 1 −2 4 −8; 0 0 0 1].
    @inline(__always)
    static func a(_ d0: V8, _ d1: V8, _ d2: V8, _ d3: V8) -> (V8, V8, V8, V8, V8, V8) {
        let e = d0 + d2, f = d1 + d3, g = d0 + 4 * d2, h = 2 * d1 + 8 * d3
        return (d0, e + f, e - f, g + h, g - h, d3)
    }

    // MARK: - Kernel transforms U = G g Gᵀ and dW = Gᵀ dU G

    /// U[ξ][o][c] = (G w[o, c] Gᵀ)[ξ]; flipped: U[ξ][c][o] = (G rot180(w[o, c]) Gᵀ)[ξ] (the
    /// kernel of the input gradient, Cin and Cout swapped).
    static func transformWeights(_ u: UnsafeMutablePointer<Float>, _ w: UnsafePointer<Float>, cout: Int, cin: Int, flipped: Bool) {
        // Vectorised over the contiguous index of U: c (or o when flipped).
        let rows = flipped ? cin : cout, cols = flipped ? cout : cin
        // Lane i of a group reads kernel (r, c0 + i), or (c0 + i, r) when flipped: `step` apart.
        let step = flipped ? cin * 9 : 9
        parallelFor(rows, work: 36 * rows * cols) { r in
            withUnsafeTemporaryAllocation(of: V8.self, capacity: 27) { t in
                let g = UnsafeMutableBufferPointer(rebasing: t[18...])
                var c0 = 0
                while c0 < cols {
                    let lanes = min(8, cols - c0)
                    let first = w + (flipped ? c0 * cin + r : r * cin + c0) * 9
                    // g[u·3 + v] for 8 kernels (rotated by 180° when flipped).
                    for tap in 0..<9 {
                        let src = first + (flipped ? 8 - tap : tap)
                        if lanes == 8 {
                            g[tap] = V8(src[0], src[step], src[2 * step], src[3 * step],
                                        src[4 * step], src[5 * step], src[6 * step], src[7 * step])
                        } else {
                            var v = V8()
                            for lane in 0..<lanes { v[lane] = src[lane * step] }
                            g[tap] = v
                        }
                    }
                    for vv in 0..<3 {
                        let z = gt(g[vv], g[3 + vv], g[6 + vv])
                        t[0 * 3 + vv] = z.0; t[1 * 3 + vv] = z.1; t[2 * 3 + vv] = z.2
                        t[3 * 3 + vv] = z.3; t[4 * 3 + vv] = z.4; t[5 * 3 + vv] = z.5
                    }
                    for k in 0..<6 {
                        let z = gt(t[k * 3], t[k * 3 + 1], t[k * 3 + 2])
                        let dst = u + (k * 6 * rows + r) * cols + c0, plane = rows * cols
                        if lanes == 8 {
                            store(z.0, dst); store(z.1, dst + plane); store(z.2, dst + 2 * plane)
                            store(z.3, dst + 3 * plane); store(z.4, dst + 4 * plane); store(z.5, dst + 5 * plane)
                        } else {
                            for lane in 0..<lanes {
                                dst[lane] = z.0[lane]; dst[plane + lane] = z.1[lane]; dst[2 * plane + lane] = z.2[lane]
                                dst[3 * plane + lane] = z.3[lane]; dst[4 * plane + lane] = z.4[lane]; dst[5 * plane + lane] = z.5[lane]
                            }
                        }
                    }
                    c0 += 8
                }
            }
        }
    }

    /// G g, G = [1/4 0 0; −1/6 −1/6 −1/6; −1/6 1/6 −1/6; 1/24 1/12 1/6; 1/24 −1/12 1/6; 0 0 1].
    @inline(__always)
    static func gt(_ g0: V8, _ g1: V8, _ g2: V8) -> (V8, V8, V8, V8, V8, V8) {
        let s = g0 + g2, q = g0 / 24 + g2 / 6
        return (g0 / 4, -(s + g1) / 6, -(s - g1) / 6, q + g1 / 12, q - g1 / 12, g2)
    }

    /// dw[o, c] += Gᵀ dU[·][o][c] G.
    static func inverseTransformWeights(_ dw: UnsafeMutablePointer<Float>, _ du: UnsafePointer<Float>, cout: Int, cin: Int) {
        parallelFor(cout, work: 36 * cout * cin) { o in
            withUnsafeTemporaryAllocation(of: V8.self, capacity: 18) { t in
                var c0 = 0
                while c0 < cin {
                    let lanes = min(8, cin - c0)
                    func e(_ k: Int, _ l: Int) -> V8 {
                        let src = du + ((k * 6 + l) * cout + o) * cin + c0
                        var s = V8()
                        for lane in 0..<lanes { s[lane] = src[lane] }
                        return s
                    }
                    // Along l: 6 → 3, for each k.
                    for k in 0..<6 {
                        let z = gtT(e(k, 0), e(k, 1), e(k, 2), e(k, 3), e(k, 4), e(k, 5))
                        t[k * 3] = z.0; t[k * 3 + 1] = z.1; t[k * 3 + 2] = z.2
                    }
                    // Along k: 6 → 3, for each v.
                    for vv in 0..<3 {
                        let z = gtT(t[vv], t[3 + vv], t[6 + vv], t[9 + vv], t[12 + vv], t[15 + vv])
                        for lane in 0..<lanes {
                            let dst = dw + (o * cin + c0 + lane) * 9
                            dst[vv] += z.0[lane]; dst[3 + vv] += z.1[lane]; dst[6 + vv] += z.2[lane]
                        }
                    }
                    c0 += 8
                }
            }
        }
    }

    /// Gᵀ e (6 → 3).
    @inline(__always)
    static func gtT(_ e0: V8, _ e1: V8, _ e2: V8, _ e3: V8, _ e4: V8, _ e5: V8) -> (V8, V8, V8) {
        let s12 = e1 + e2, s34 = e3 + e4
        return (e0 / 4 - s12 / 6 + s34 / 24,
                (e2 - e1) / 6 + (e3 - e4) / 12,
                (s34 - s12) / 6 + e5)
    }

    // MARK: - Vectors

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 {
        UnsafeRawPointer(p).loadUnaligned(as: V8.self)
    }

    @inline(__always) static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
    }
}

/// The transformed kernels U of a layer whose weights seldom change (VGG16's, frozen while
/// training): computed on first use and again only when the weights differ from the copy kept
/// when they were computed, so writing new weights by any means is safe.
public final class WinogradKernelCache {
    private var weights: Tensor?
    private var forward: Tensor?, backward: Tensor?
    public init() {}

    func transformed(_ w: UnsafePointer<Float>, _ spec: ConvSpec, flipped: Bool) -> UnsafePointer<Float> {
        let count = spec.cout * spec.cin * 9
        if let copy = weights, copy.count == count, memcmp(copy.data, w, count * 4) == 0 {
            // unchanged
        } else {
            let copy = Tensor(shape: [count])
            copy.data.update(from: w, count: count)
            weights = copy; forward = nil; backward = nil
        }
        if let u = flipped ? backward : forward { return UnsafePointer(u.data) }
        let u = Tensor(shape: [36 * count / 9])
        Winograd.transformWeights(u.data, w, cout: spec.cout, cin: spec.cin, flipped: flipped)
        if flipped { backward = u } else { forward = u }
        return UnsafePointer(u.data)
    }

    /// Bytes held (the weights' copy and the transformed kernels).
    public var bytes: Int { 4 * ((weights?.count ?? 0) + (forward?.count ?? 0) + (backward?.count ?? 0)) }
}
