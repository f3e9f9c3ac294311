/// Mean squared error, as `torch.nn.MSELoss()` (mean over all elements).
///
///   loss = Σ (a − b)² / count,  d loss / d a = 2 (a − b) / count
/// `bBroadcast`: b holds `bCount` elements repeated along a (the style Gram matrix of one
/// image against a batch, the seed's `gm_s[:n_batch]`).
public func mseForward(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int, bCount: Int? = nil) -> Double {
    let period = bCount ?? count
    var s = 0.0
    for i in 0..<count { let d = Double(a[i] - b[i % period]); s += d * d }
    return s / Double(count)
}

/// da += scale · 2 (a − b) / count (scale is the loss weight times the upstream gradient).
public func mseBackward(_ da: UnsafeMutablePointer<Float>, _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>,
                        count: Int, bCount: Int? = nil, scale: Double) {
    let period = bCount ?? count
    let k = Float(2 * scale / Double(count))
    parallelFor(max(1, count >> 16), work: count) { chunk in
        let chunks = max(1, count >> 16)
        for i in (count * chunk / chunks)..<(count * (chunk + 1) / chunks) {
            da[i] += k * (a[i] - b[i % period])
        }
    }
}
