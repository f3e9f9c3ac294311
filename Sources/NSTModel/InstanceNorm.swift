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
            var s = 0.0
            for i in 0..<hw { s += Double(src[i]) }
            let mu = s / Double(hw)
            var v = 0.0
            for i in 0..<hw { let d = Double(src[i]) - mu; v += d * d }
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
            // Σ dz and Σ dz·x̂ (dz = dy masked by the ReLU).
            var sdz = 0.0, sdzx = 0.0
            for i in 0..<hw {
                let dz = relu && fwd[i] <= 0 ? 0 : g[i]
                sdz += Double(dz)
                sdzx += Double(dz) * Double((src[i] - mu) * r)
            }
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
