/// The tile transforms of `Winograd`, eight tiles at a time: input rows split into their four
/// phases, V = Bᵀ d B, Y = Aᵀ M A (interleaved back into rows) and Ŷ = A dY Aᵀ.
extension Winograd {
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
    static func transformInput(_ v: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ plan: Plan,
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

    static func transformOutput(_ y: UnsafeMutablePointer<Float>, _ m: UnsafePointer<Float>, _ bias: UnsafePointer<Float>?,
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
    static func transformOutputGradient(_ yhat: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>,
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

    // MARK: - Vectors

    @inline(__always) static func load(_ p: UnsafePointer<Float>) -> V8 {
        UnsafeRawPointer(p).loadUnaligned(as: V8.self)
    }

    @inline(__always) static func store(_ v: V8, _ p: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(p).storeBytes(of: v, as: V8.self)
    }
}
