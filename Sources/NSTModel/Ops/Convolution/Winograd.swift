import CBLAS
import Dispatch

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
}
