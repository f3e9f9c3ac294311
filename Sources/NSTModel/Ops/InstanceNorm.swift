/// Instance normalisation with affine weight and bias, as `torch.nn.InstanceNorm2d(C, affine=True)`
/// (Ulyanov et al. 2016), optionally fused with the ReLU that follows it in TransformerNet.
///
///   x [N, C, H, W];  per plane (n, c): μ = mean(x), σ² = mean((x − μ)²) (biased), r = 1/√(σ² + 1e-5)
///   x̂ = (x − μ)·r,  z = γ_c·x̂ + β_c,  y = relu ? max(z, 0) : z
///
/// Backward (per plane, after masking dy by y > 0 when fused):
///   dγ_c += Σ dz·x̂,  dβ_c += Σ dz,  dx = r·(dx̂ − mean(dx̂) − x̂·mean(dx̂·x̂)),  dx̂ = γ_c·dz
/// The cache keeps μ and r per plane; x itself is kept by the caller (the conv output).
public let instanceNormEps: Double = 1e-5

public final class InstanceNormCache {
    public var mean: [Float] = []
    public var rstd: [Float] = []
    /// Per-plane Σ dz·x̂ and Σ dz of the last backward (summed into dγ, dβ per channel).
    var sumDzXhat: [Double] = []
    var sumDz: [Double] = []
    public init() {}
    func reserve(_ planes: Int) {
        if mean.count != planes {
            mean = [Float](repeating: 0, count: planes); rstd = mean
            sumDzXhat = [Double](repeating: 0, count: planes); sumDz = sumDzXhat
        }
    }
}

public func instanceNormForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                                _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>,
                                relu: Bool, cache: InstanceNormCache) {
    cache.reserve(xd.n * xd.c)
    let hw = xd.plane
    cache.mean.withUnsafeMutableBufferPointer { meanBuf in
    cache.rstd.withUnsafeMutableBufferPointer { rstdBuf in
        let means = meanBuf.baseAddress!, rstds = rstdBuf.baseAddress!
        parallelFor(xd.n * xd.c, work: xd.count) { plane in
            let src = x + plane * hw, dst = y + plane * hw
            let s = planeSum(hw) { load8(src + $0) } tail: { src[$0] }
            let mu = s / Double(hw), m = Float(mu), m8 = SIMD8<Float>(repeating: m)
            let v = planeSum(hw) { let d = load8(src + $0) - m8; return d * d } tail: { let d = src[$0] - m; return d * d }
            let r = 1 / (v / Double(hw) + instanceNormEps).squareRoot()
            means[plane] = Float(mu); rstds[plane] = Float(r)
            let c = plane % xd.c
            let scale = Float(r) * gamma[c], shift = beta[c] - Float(mu) * scale
            if relu {
                for i in 0..<hw { dst[i] = max(src[i] * scale + shift, 0) }
            } else {
                for i in 0..<hw { dst[i] = src[i] * scale + shift }
            }
        }
    }
    }
}

/// dx is overwritten; dgamma and dbeta (if given) are accumulated. `y` is the forward output
/// (only read when `relu`, for the mask). dy and dx may not alias.
public func instanceNormBackward(_ dx: UnsafeMutablePointer<Float>, dgamma: UnsafeMutablePointer<Float>?,
                                 dbeta: UnsafeMutablePointer<Float>?, _ dy: UnsafePointer<Float>,
                                 x: UnsafePointer<Float>, y: UnsafePointer<Float>, _ xd: Dims4,
                                 _ gamma: UnsafePointer<Float>, relu: Bool, cache: InstanceNormCache) {
    let hw = xd.plane, planes = xd.n * xd.c
    cache.reserve(planes)
    cache.mean.withUnsafeBufferPointer { means in
    cache.rstd.withUnsafeBufferPointer { rstds in
    cache.sumDzXhat.withUnsafeMutableBufferPointer { dgp in
    cache.sumDz.withUnsafeMutableBufferPointer { dbp in
        parallelFor(planes, work: xd.count) { plane in
            let c = plane % xd.c
            let src = x + plane * hw, g = dy + plane * hw, out = dx + plane * hw, fwd = y + plane * hw
            let mu = means[plane], r = rstds[plane]
            // Σ dz and Σ dz·x̂ = r·Σ dz·(x − μ) (dz = dy masked by the ReLU).
            let mu8 = SIMD8<Float>(repeating: mu), zero = SIMD8<Float>()
            @inline(__always) func dz8(_ i: Int) -> SIMD8<Float> {
                relu ? load8(g + i).replacing(with: zero, where: load8(fwd + i) .<= zero) : load8(g + i)
            }
            @inline(__always) func dz1(_ i: Int) -> Float { relu && fwd[i] <= 0 ? 0 : g[i] }
            let sdz = planeSum(hw) { dz8($0) } tail: { dz1($0) }
            let sdzx = Double(r) * planeSum(hw) { dz8($0) * (load8(src + $0) - mu8) } tail: { dz1($0) * (src[$0] - mu) }
            dgp[plane] = sdzx; dbp[plane] = sdz
            let gm = Double(gamma[c])
            let meanDxh = Float(gm * sdz / Double(hw)), meanDxhX = Float(gm * sdzx / Double(hw))
            let gr = gamma[c] * r
            for i in 0..<hw {
                let dz = relu && fwd[i] <= 0 ? 0 : g[i]
                let xh = (src[i] - mu) * r
                out[i] = gr * dz - r * (meanDxh + xh * meanDxhX)
            }
        }
    }
    }
    }
    }
    for plane in 0..<planes {
        let c = plane % xd.c
        dgamma?[c] += Float(cache.sumDzXhat[plane])
        dbeta?[c] += Float(cache.sumDz[plane])
    }
}

/// Σ over a plane of `count` floats: 8-wide Float partial sums over blocks of 1,024 elements,
/// each block added in Double (vectorised, and as accurate as the data needs here).
@inline(__always)
func planeSum(_ count: Int, _ body: (Int) -> SIMD8<Float>, tail: (Int) -> Float) -> Double {
    var total = 0.0, i = 0
    let vectorEnd = count & ~7
    while i < vectorEnd {
        let end = min(vectorEnd, i + 1024)
        var a = SIMD8<Float>(), b = SIMD8<Float>()
        while i + 16 <= end { a += body(i); b += body(i + 8); i += 16 }
        if i < end { a += body(i); i += 8 }
        total += Double((a + b).sum())
    }
    while i < count { total += Double(tail(i)); i += 1 }
    return total
}

@inline(__always) func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}
