import Foundation

/// The kernel transforms of `Winograd`, U = G g Gᵀ and dW = Gᵀ dU G, and the cache that keeps
/// a frozen layer's U between calls.
extension Winograd {
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
