/// Instance norm of one image that is processed in tiles: the statistics of each channel plane
/// are gathered over every tile first, then applied to each tile, so that each tile is
/// normalised exactly as the whole image would be (`instanceNormForward` on the whole plane).
///
///   accumulate: for a region R of a plane (each pixel of the image in exactly one tile's region)
///     n_R = |R|,  μ_R = Σ_R x / n_R,  M2_R = Σ_R (x − μ_R)²
///   merged with the running (n, μ, M2) by Chan et al.'s pairwise update (1979):
///     δ = μ_R − μ,  n' = n + n_R,  μ' = μ + δ·n_R/n',  M2' = M2 + M2_R + δ²·n·n_R/n'
///   applied: σ² = M2/n (biased, as InstanceNorm2d), r = 1/√(σ² + 1e-5),
///     y = relu? max(γ_c·(x − μ)·r + β_c, 0) : γ_c·(x − μ)·r + β_c
/// Inference only: nothing is kept for a backward pass. Sums are in Double.
public struct InstanceNormStatistics: Sendable {
    public let channels: Int
    public private(set) var count = 0
    public private(set) var mean: [Double]
    public private(set) var m2: [Double]

    public init(channels: Int) {
        self.channels = channels
        mean = [Double](repeating: 0, count: channels)
        m2 = mean
    }

    /// Adds rows × cols of every channel plane of `x` ([1, C, H, W]).
    public mutating func accumulate(_ x: UnsafePointer<Float>, _ xd: Dims4, rows: Range<Int>, cols: Range<Int>) {
        precondition(xd.n == 1 && xd.c == channels, "statistics of \(channels) channels, got \(xd)")
        precondition(rows.lowerBound >= 0 && rows.upperBound <= xd.h && cols.lowerBound >= 0 && cols.upperBound <= xd.w,
                     "region \(rows) × \(cols) outside \(xd)")
        let n = rows.count * cols.count
        guard n > 0 else { return }
        var regionMean = [Double](repeating: 0, count: channels), regionM2 = regionMean
        regionMean.withUnsafeMutableBufferPointer { means in
        regionM2.withUnsafeMutableBufferPointer { m2s in
            let mp = means.baseAddress!, vp = m2s.baseAddress!
            parallelFor(channels, work: n * channels) { c in
                let plane = x + c * xd.plane
                var s = 0.0
                for r in rows {
                    let row = plane + r * xd.w + cols.lowerBound
                    s += planeSum(cols.count) { load8(row + $0) } tail: { row[$0] }
                }
                let mu = s / Double(n), m = Float(mu), m8 = SIMD8<Float>(repeating: m)
                var v = 0.0, d = 0.0   // Σ (x − m)² and Σ (x − m), so that M2 is exact about μ, not m
                for r in rows {
                    let row = plane + r * xd.w + cols.lowerBound
                    v += planeSum(cols.count) { let e = load8(row + $0) - m8; return e * e } tail: { let e = row[$0] - m; return e * e }
                    d += planeSum(cols.count) { load8(row + $0) - m8 } tail: { row[$0] - m }
                }
                mp[c] = mu
                vp[c] = max(0, v - d * d / Double(n))
            }
        }
        }
        let total = count + n
        for c in 0..<channels {
            let delta = regionMean[c] - mean[c]
            mean[c] += delta * Double(n) / Double(total)
            m2[c] += regionM2[c] + delta * delta * Double(count) * Double(n) / Double(total)
        }
        count = total
    }

    /// μ and r = 1/√(σ² + ε) per channel, as Float (what `instanceNormApply` takes).
    public func normalizers() -> (mean: [Float], rstd: [Float]) {
        precondition(count > 0, "no statistics gathered")
        let rstd = m2.map { Float(1 / ($0 / Double(count) + instanceNormEps).squareRoot()) }
        return (mean.map { Float($0) }, rstd)
    }
}

/// y = γ·(x − μ)·r + β per channel plane of `x` ([1, C, H, W]), then ReLU if `relu`, with the
/// given μ and r (from `InstanceNormStatistics`); the same arithmetic as `instanceNormForward`.
/// y may be x.
public func instanceNormApply(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4,
                              mean: UnsafePointer<Float>, rstd: UnsafePointer<Float>,
                              _ gamma: UnsafePointer<Float>, _ beta: UnsafePointer<Float>, relu: Bool) {
    let hw = xd.plane
    parallelFor(xd.n * xd.c, work: xd.count) { plane in
        let c = plane % xd.c, src = x + plane * hw, dst = y + plane * hw
        let scale = rstd[c] * gamma[c], shift = beta[c] - mean[c] * scale
        if relu {
            for i in 0..<hw { dst[i] = max(src[i] * scale + shift, 0) }
        } else {
            for i in 0..<hw { dst[i] = src[i] * scale + shift }
        }
    }
}
