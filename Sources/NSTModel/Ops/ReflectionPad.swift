/// Reflection padding, as `torch.nn.ReflectionPad2d(p)`: the border is mirrored without
/// repeating the edge pixel, x[−1] = x[1], x[W] = x[W − 2]. Needs p < H and p < W.
///
///   x [N, C, H, W] → y [N, C, H + 2p, W + 2p]
@inline(__always)
func reflect(_ i: Int, _ n: Int) -> Int {
    if i < 0 { return -i }
    if i >= n { return 2 * (n - 1) - i }
    return i
}

public func reflectionPadDims(_ x: Dims4, _ p: Int) -> Dims4 { Dims4(x.n, x.c, x.h + 2 * p, x.w + 2 * p) }

public func reflectionPadForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4, _ p: Int) {
    precondition(p < xd.h && p < xd.w, "reflection padding \(p) needs a larger input than \(xd)")
    let hp = xd.h + 2 * p, wp = xd.w + 2 * p
    parallelFor(xd.n * xd.c, work: xd.count) { plane in
        let src = x + plane * xd.plane, dst = y + plane * hp * wp
        for i in 0..<hp {
            let row = src + reflect(i - p, xd.h) * xd.w, out = dst + i * wp
            for j in 0..<p { out[j] = row[p - j] }
            (out + p).update(from: row, count: xd.w)
            for j in 0..<p { out[p + xd.w + j] = row[xd.w - 2 - j] }
        }
    }
}

/// dx (overwritten) = the sum of dy over every padded position that mirrors each input pixel.
public func reflectionPadBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ xd: Dims4, _ p: Int) {
    let hp = xd.h + 2 * p, wp = xd.w + 2 * p
    parallelFor(xd.n * xd.c, work: xd.count) { plane in
        let src = dy + plane * hp * wp, dst = dx + plane * xd.plane
        dst.update(repeating: 0, count: xd.plane)
        for i in 0..<hp {
            let row = dst + reflect(i - p, xd.h) * xd.w, g = src + i * wp
            for j in 0..<p { row[p - j] += g[j] }
            for j in 0..<xd.w { row[j] += g[p + j] }
            for j in 0..<p { row[xd.w - 2 - j] += g[p + xd.w + j] }
        }
    }
}
