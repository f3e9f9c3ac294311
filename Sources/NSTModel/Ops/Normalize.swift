/// ImageNet normalisation of [0, 255] images, as the seed's `normalize_batch`:
///   y = (x / 255 − mean_c) / std_c,  mean = (0.485, 0.456, 0.406),  std = (0.229, 0.224, 0.225)
///   dx = dy / (255 · std_c)
public let imagenetMean: [Float] = [0.485, 0.456, 0.406]
public let imagenetStd: [Float] = [0.229, 0.224, 0.225]

public func normalizeForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ xd: Dims4) {
    precondition(xd.c == 3, "normalisation expects RGB, got \(xd)")
    for plane in 0..<xd.n * 3 {
        let c = plane % 3, m = imagenetMean[c], s = imagenetStd[c]
        let src = x + plane * xd.plane, dst = y + plane * xd.plane
        for i in 0..<xd.plane { dst[i] = (src[i] / 255 - m) / s }
    }
}

/// dx is overwritten.
public func normalizeBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, _ xd: Dims4) {
    for plane in 0..<xd.n * 3 {
        let s = imagenetStd[plane % 3]
        let src = dy + plane * xd.plane, dst = dx + plane * xd.plane
        for i in 0..<xd.plane { dst[i] = src[i] / s / 255 }
    }
}
