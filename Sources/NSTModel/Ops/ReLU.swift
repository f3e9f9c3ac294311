/// ReLU, y = max(x, 0), in place allowed (y may equal x).
/// Backward from the output: dx = dy · [y > 0] (dx may equal dy).
public func reluForward(_ y: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int) {
    parallelFor(max(1, count >> 16), work: count) { chunk in
        let chunks = max(1, count >> 16)
        let lo = count * chunk / chunks, hi = count * (chunk + 1) / chunks
        for i in lo..<hi { y[i] = max(x[i], 0) }
    }
}

public func reluBackward(_ dx: UnsafeMutablePointer<Float>, _ dy: UnsafePointer<Float>, y: UnsafePointer<Float>, _ count: Int) {
    parallelFor(max(1, count >> 16), work: count) { chunk in
        let chunks = max(1, count >> 16)
        let lo = count * chunk / chunks, hi = count * (chunk + 1) / chunks
        for i in lo..<hi { dx[i] = y[i] > 0 ? dy[i] : 0 }
    }
}
