import NSTModel
import XCTest

/// Finite-difference gradient checking, independent of PyTorch.
///
/// The scalar checked is always L = Σ y ⊙ R (R a fixed random tensor) or a loss the library
/// itself returns, accumulated in Double. Each coordinate is perturbed by ±h (by default 1 % of
/// the tensor's RMS) and compared with the backward's gradient by ‖g − g_fd‖ / ‖g_fd‖. The forward
/// runs in Float32, so h must stay large; the perturbation actually applied is the Float-rounded
/// one, (x + h) − (x − h) computed in Double.
enum FD {
    /// Relative L2 error accepted between analytic and central-difference gradients. The ops
    /// measure 1e-6 to 1e-4; an analytic gradient off by 1 % (error ≈ 1e-2) must fail.
    static let tolerance = 3e-3
    /// For whole networks, where Float32 noise through many layers is larger.
    static let modelTolerance = 5e-3

    // MARK: - Data

    /// Uniform in [lo, hi).
    static func uniform(_ rng: inout SplitMix64, _ lo: Double, _ hi: Double) -> Float {
        Float(lo + (hi - lo) * rng.unit())
    }

    static func random(_ shape: [Int], _ rng: inout SplitMix64, _ lo: Double = -1, _ hi: Double = 1) -> Tensor {
        let t = Tensor(shape: shape)
        fill(t, &rng, lo, hi)
        return t
    }

    static func fill(_ t: Tensor, _ rng: inout SplitMix64, _ lo: Double, _ hi: Double) {
        for i in 0..<t.count { t.data[i] = uniform(&rng, lo, hi) }
    }

    /// Values with |x| in [gap, 1] and a random sign: at least `gap` from ReLU's kink.
    static func awayFromZero(_ shape: [Int], _ rng: inout SplitMix64, gap: Double) -> Tensor {
        let t = random(shape, &rng, gap, 1)
        for i in 0..<t.count where rng.unit() < 0.5 { t.data[i] = -t.data[i] }
        return t
    }

    /// Sets β_c so that the ReLU kink (x̂ = −β_c/γ_c) falls in the middle of the widest gap
    /// between the normalised values of channel c, at least 0.05 from each of them.
    static func placeKinksInGaps(_ x: Tensor, _ gamma: Tensor, _ beta: Tensor) {
        let d = x.dims4
        for c in 0..<d.c {
            var xh: [Double] = []
            for n in 0..<d.n {
                let p = Array(UnsafeBufferPointer(start: x.data + (n * d.c + c) * d.plane, count: d.plane)).map(Double.init)
                let mu = p.reduce(0, +) / Double(p.count)
                let sd = (p.map { ($0 - mu) * ($0 - mu) }.reduce(0, +) / Double(p.count) + 1e-5).squareRoot()
                xh += p.map { ($0 - mu) / sd }
            }
            let inner = xh.filter { abs($0) < 1.2 }.sorted()
            let (gap, mid) = zip(inner, inner.dropFirst()).map { ($1 - $0, ($0 + $1) / 2) }.max { $0.0 < $1.0 }!
            XCTAssertGreaterThan(gap, 0.1, "channel \(c) has a gap for the kink")
            beta.data[c] = Float(-Double(gamma.data[c]) * mid)
        }
    }

    /// `k` distinct indices of 0..<count (all of them, in order, when k ≥ count).
    static func sample(_ count: Int, _ k: Int, _ rng: inout SplitMix64) -> [Int] {
        if k >= count { return Array(0..<count) }
        var chosen = Set<Int>(), out: [Int] = []
        while out.count < k {
            let i = Int(rng.next() % UInt64(count))
            if chosen.insert(i).inserted { out.append(i) }
        }
        return out
    }

    /// Σ y·r in Double.
    static func dot(_ y: UnsafePointer<Float>, _ r: Tensor) -> Double {
        var s = 0.0
        for i in 0..<r.count { s += Double(y[i]) * Double(r.data[i]) }
        return s
    }

    static func rms(_ p: UnsafePointer<Float>, _ count: Int) -> Double {
        var s = 0.0
        for i in 0..<count { s += Double(p[i]) * Double(p[i]) }
        return (s / Double(max(count, 1))).squareRoot()
    }

    static func rms(_ t: Tensor) -> Double { rms(t.data, t.count) }

    /// 1 % of the tensor's RMS (at least 1e-4).
    static func step(_ t: Tensor) -> Float { Float(max(1e-2 * rms(t), 1e-4)) }

    /// a − b, element by element (the part of an accumulated gradient a backward added).
    static func difference(_ a: Tensor, _ b: Tensor) -> Tensor {
        let d = Tensor(shape: a.shape)
        for i in 0..<a.count { d.data[i] = a.data[i] - b.data[i] }
        return d
    }
}

// MARK: - The comparator

/// Analytic and central-difference derivatives of one scalar loss, gathered tensor by tensor.
struct GradientCheck {
    private(set) var analytic: [Double] = []
    private(set) var numeric: [Double] = []
    /// Coordinates left out because a perturbation changed the `pattern` (crossed a kink).
    private(set) var skipped = 0

    /// ‖g − g_fd‖ / ‖g_fd‖ over every coordinate added (∞ if ‖g_fd‖ = 0: nothing was checked).
    var relativeError: Double {
        var num = 0.0, den = 0.0
        for (a, n) in zip(analytic, numeric) { num += (a - n) * (a - n); den += n * n }
        return den > 0 ? (num / den).squareRoot() : .infinity
    }

    /// Adds the coordinates `indices` of `t`, whose analytic gradient is `gradient` (same shape
    /// as t; a Tensor, so that it stays alive while read). Both derivatives are divided by
    /// `scale`, so tensors with gradients of very different sizes weigh alike. `pattern`, if given, must evaluate the kink state (ReLU masks, max-pool
    /// winners) at the current values; a coordinate whose ±h perturbation changes it is skipped.
    /// Stops once `stopAfter` coordinates have been compared in all.
    mutating func add(_ t: Tensor, _ gradient: Tensor, at indices: [Int], step h: Float,
                      scale: Double = 1, pattern: (() -> [UInt8])? = nil, stopAfter: Int = .max, loss: () -> Double) {
        let base = pattern?()
        func crossed() -> Bool { base != nil && pattern!() != base! }
        for i in indices where numeric.count < stopAfter {
            let v = t.data[i], plus = v + h, minus = v - h
            t.data[i] = plus
            let lp = loss()
            let up = crossed()
            t.data[i] = minus
            let lm = loss()
            let down = crossed()
            t.data[i] = v
            if up || down { skipped += 1; continue }
            analytic.append(Double(gradient.data[i]) / scale)
            numeric.append((lp - lm) / (Double(plus) - Double(minus)) / scale)
        }
    }

    /// Asserts error ≤ tolerance, a non-zero numeric gradient, and at least `minChecked`
    /// coordinates compared (all of them if nil: no kink was crossed).
    func assertPasses(_ label: String, tolerance: Double = FD.tolerance, minChecked: Int? = nil,
                      file: StaticString = #filePath, line: UInt = #line) {
        let err = relativeError
        if ProcessInfo.processInfo.environment["FD_VERBOSE"] != nil {
            print("FD \(label): rel err \(err), \(numeric.count) coords, \(skipped) skipped")
        }
        XCTAssertLessThanOrEqual(err, tolerance, "\(label): ‖g − g_fd‖/‖g_fd‖ = \(err) over \(numeric.count) coordinates",
                                 file: file, line: line)
        XCTAssertGreaterThanOrEqual(numeric.count, max(1, minChecked ?? numeric.count + skipped),
                                    "\(label): \(skipped) coordinates crossed a kink", file: file, line: line)
    }
}

/// Checks every coordinate (or `indices`) of `t` in one call; no coordinate may cross a kink.
func assertGradient(_ label: String, _ gradient: Tensor, wrt t: Tensor, at indices: [Int]? = nil,
                    step: Float? = nil, tolerance: Double = FD.tolerance, pattern: (() -> [UInt8])? = nil,
                    loss: () -> Double, file: StaticString = #filePath, line: UInt = #line) {
    var check = GradientCheck()
    check.add(t, gradient, at: indices ?? Array(0..<t.count), step: step ?? FD.step(t), pattern: pattern, loss: loss)
    check.assertPasses(label, tolerance: tolerance, file: file, line: line)
}

// MARK: - Kink patterns of the composite models

extension FD {
    static func signs(_ t: Tensor, into out: inout [UInt8]) {
        for i in 0..<t.count { out.append(t.data[i] > 0 ? 1 : 0) }
    }

    /// The fused-ReLU masks of TransformerNet at input x, recomputed through its public layers
    /// (the same calls `forward` makes, so the same values).
    static func reluPattern(_ net: TransformerNet, _ x: Tensor, _ ctx: Workspace) -> [UInt8] {
        var out: [UInt8] = []
        var y = net.in1.forward(net.conv1.forward(x, ctx)); signs(y, into: &out)
        y = net.in2.forward(net.conv2.forward(y, ctx)); signs(y, into: &out)
        y = net.in3.forward(net.conv3.forward(y, ctx)); signs(y, into: &out)
        for r in net.res {
            signs(r.in1.forward(r.conv1.forward(y, ctx)), into: &out)
            y = r.forward(y, ctx)
        }
        y = net.in4.forward(net.deconv1.forward(y, ctx)); signs(y, into: &out)
        signs(net.in5.forward(net.deconv2.forward(y, ctx)), into: &out)
        return out
    }

    /// VGG16's ReLU masks and max-pool winners (first maximum in row-major order, as the
    /// backward routes it) for an ImageNet-normalised input, with the taps to compare with
    /// `VGG16.forward` (so this replica is known to be the real network).
    static func vggPattern(_ vgg: VGG16, _ xn: Tensor, _ ws: Scratch) -> (pattern: [UInt8], taps: [Tensor]) {
        var out: [UInt8] = [], taps: [Tensor] = []
        var cur = xn
        for i in 0..<10 {
            let w = vgg.parameters[2 * i].value, b = vgg.parameters[2 * i + 1].value
            let spec = ConvSpec(cin: w.shape[1], cout: w.shape[0], k: 3, stride: 1, pad: 1)
            let y = Tensor(shape: spec.output(cur.dims4).shape)
            conv2dForward(y.data, cur.data, cur.dims4, w.data, b.data, spec, ws)
            reluForward(y.data, y.data, y.count)
            signs(y, into: &out)
            cur = y
            if [1, 3, 6, 9].contains(i) { taps.append(y) }
            guard [1, 3, 6].contains(i) else { continue }
            let d = y.dims4, pd = maxPool2Dims(d)
            for plane in 0..<d.n * d.c {
                let src = y.data + plane * d.plane
                for pi in 0..<pd.h {
                    for pj in 0..<pd.w {
                        let k0 = 2 * pi * d.w + 2 * pj
                        let cand = [k0, k0 + 1, k0 + d.w, k0 + d.w + 1]
                        var best = 0
                        for k in 1..<4 where src[cand[k]] > src[cand[best]] { best = k }
                        out.append(src[cand[best]] > 0 ? UInt8(best) : 4)  // all-zero windows pass no gradient
                    }
                }
            }
            let p = Tensor(shape: pd.shape)
            maxPool2Forward(p.data, y.data, d)
            cur = p
        }
        return (out, taps)
    }
}
