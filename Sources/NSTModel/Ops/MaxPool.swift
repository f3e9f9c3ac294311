/// 2×2 max pooling with stride 2, as `torch.nn.MaxPool2d(2, 2)` (odd edges dropped).
///
///   x [N, C, H, W] → y [N, C, H/2, W/2],  y[n, c, i, j] = max of x[n, c, 2i…2i+1, 2j…2j+1]
///   Backward: the gradient goes to the first maximum of each window in row-major order
///   (PyTorch's rule); the argmax is recomputed from x, so there is no cache.
public func maxPool2Dims(_ x: Dims4) -> Dims4 { Dims4(x.n, x.c, x.h / 2, x.w / 2) }

public func maxPool2Forward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4) {
    let yd = maxPool2Dims(xd)
    parallelFor(xd.n * xd.c, work: xd.count) { plane in
        let src = x + plane * xd.plane, dst = y + plane * yd.plane
        for i in 0..<yd.h {
            let r0 = src + 2 * i * xd.w, r1 = r0 + xd.w, out = dst + i * yd.w
            for j in 0..<yd.w {
                out[j] = max(max(r0[2 * j], r0[2 * j + 1]), max(r1[2 * j], r1[2 * j + 1]))
            }
        }
    }
}

/// dx is overwritten.
public func maxPool2Backward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, x: UnsafePointer<Float>, _ xd: Dims4) {
    let yd = maxPool2Dims(xd)
    parallelFor(xd.n * xd.c, work: xd.count) { plane in
        let src = x + plane * xd.plane, g = dy + plane * yd.plane, out = dx + plane * xd.plane
        out.update(repeating: 0, count: xd.plane)
        for i in 0..<yd.h {
            for j in 0..<yd.w {
                let k0 = 2 * i * xd.w + 2 * j
                var best = k0
                if src[k0 + 1] > src[best] { best = k0 + 1 }
                if src[k0 + xd.w] > src[best] { best = k0 + xd.w }
                if src[k0 + xd.w + 1] > src[best] { best = k0 + xd.w + 1 }
                out[best] = g[i * yd.w + j]
            }
        }
    }
}
