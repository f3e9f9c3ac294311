/// Nearest-neighbour ×2 upsampling, as `interpolate(scale_factor=2, mode="nearest")`.
///
///   x [N, C, H, W] → y [N, C, 2H, 2W],  y[n, c, i, j] = x[n, c, i/2, j/2]
///   dx[n, c, i, j] = Σ of the 2×2 block of dy it was copied to
public func upsample2Dims(_ x: Dims4) -> Dims4 { Dims4(x.n, x.c, 2 * x.h, 2 * x.w) }

public func upsample2Forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4) {
    let w2 = 2 * xd.w
    parallelFor(xd.n * xd.c, work: 4 * xd.count) { plane in
        let src = x + plane * xd.plane, dst = y + plane * 4 * xd.plane
        for i in 0..<xd.h {
            let row = src + i * xd.w, out = dst + 2 * i * w2
            for j in 0..<xd.w { let v = row[j]; out[2 * j] = v; out[2 * j + 1] = v }
            (out + w2).update(from: out, count: w2)
        }
    }
}

/// dx is overwritten.
public func upsample2Backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ xd: Dims4) {
    let w2 = 2 * xd.w
    parallelFor(xd.n * xd.c, work: 4 * xd.count) { plane in
        let src = dy + plane * 4 * xd.plane, dst = dx + plane * xd.plane
        for i in 0..<xd.h {
            let r0 = src + 2 * i * w2, r1 = r0 + w2, out = dst + i * xd.w
            for j in 0..<xd.w { out[j] = (r0[2 * j] + r0[2 * j + 1]) + (r1[2 * j] + r1[2 * j + 1]) }
        }
    }
}

// MARK: - Fused ×2 upsampling and reflection padding

/// reflectionPad(upsample2(x), p) in one pass, without the upsampled intermediate:
///   y[n, c, i, j] = x[n, c, reflect(i − p, 2H) / 2, reflect(j − p, 2W) / 2]
public func upsample2PadDims(_ x: Dims4, _ p: Int) -> Dims4 { Dims4(x.n, x.c, 2 * x.h + 2 * p, 2 * x.w + 2 * p) }

public func upsample2PadForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4, _ p: Int) {
    let h2 = 2 * xd.h, w2 = 2 * xd.w
    precondition(p < h2 && p < w2, "reflection padding \(p) needs a larger input than \(xd) upsampled")
    let hp = h2 + 2 * p, wp = w2 + 2 * p
    parallelFor(xd.n * xd.c, work: hp * wp * xd.n * xd.c) { plane in
        let src = x + plane * xd.plane, dst = y + plane * hp * wp
        for i in 0..<hp {
            let row = src + (reflect(i - p, h2) / 2) * xd.w, out = dst + i * wp
            if i > 0 && reflect(i - p, h2) / 2 == reflect(i - 1 - p, h2) / 2 {
                out.update(from: out - wp, count: wp)   // the same source row as the line above
                continue
            }
            for j in 0..<p { out[j] = row[reflect(j - p, w2) / 2] }
            for j in 0..<xd.w { let v = row[j]; out[p + 2 * j] = v; out[p + 2 * j + 1] = v }
            for j in (p + w2)..<wp { out[j] = row[reflect(j - p, w2) / 2] }
        }
    }
}
