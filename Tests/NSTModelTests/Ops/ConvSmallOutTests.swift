import NSTModel
import XCTest

/// The direct path for convolutions with ≤ 4 output channels against the naive convolution.
final class ConvSmallOutTests: XCTestCase {
    func testDirectPathMatchesNaiveForwardAndGradients() {
        Threads.configure(2)
        var rng = SplitMix64(seed: 77)
        func random(_ shape: [Int]) -> Tensor {
            let t = Tensor(shape: shape)
            for i in 0..<t.count { t.data[i] = Float(2 * rng.unit() - 1) }
            return t
        }
        // (n, cin, cout, k, h, w): widths below, at and above the 8-wide vectors and the 16-column
        // blocks (with a remainder), one to four channels (a second group of three), the real layer.
        for (n, cin, cout, k, h, w) in [(2, 5, 3, 9, 13, 20), (1, 3, 1, 3, 5, 5), (2, 4, 4, 3, 9, 17), (1, 32, 3, 9, 24, 24),
                                        (3, 2, 2, 1, 4, 11), (2, 6, 4, 3, 7, 40), (1, 7, 1, 5, 9, 41), (2, 3, 2, 9, 12, 58)] {
            let spec = ConvSpec(cin: cin, cout: cout, k: k, stride: 1, pad: 0)
            XCTAssertTrue(ConvSmallOut.applies(spec))
            let xd = Dims4(n, cin, h, w), yd = spec.output(xd)
            let x = random(xd.shape), wt = random([cout, cin, k, k]), b = random([cout]), dy = random(yd.shape)
            let y = Tensor(shape: yd.shape), yRef = Tensor(shape: yd.shape)
            conv2dForward(y.data, x.data, xd, wt.data, b.data, spec, Scratch())
            conv2dForwardNaive(yRef.data, x.data, xd, wt.data, b.data, spec)
            assertClose(y, yRef, 1e-5, "forward \(spec) \(xd)")

            // Gradients through the ConvLayer path (direct weight gradient + transposed-kernel dx)
            // against the naive backward; parameter gradients accumulate onto what was there.
            let dx = Tensor(shape: xd.shape), dw = random(wt.shape), db = random(b.shape)
            let dxRef = Tensor(shape: xd.shape), dwRef = dw.clone(), dbRef = db.clone()
            conv2dBackward(dx: dx.data, dw: dw.data, db: db.data, dy: dy.data, x: x.data, xd, w: wt.data, spec,
                           Scratch(), transposed: Scratch())
            conv2dBackwardNaive(dx: dxRef.data, dw: dwRef.data, db: dbRef.data, dy: dy.data, x: x.data, xd, w: wt.data, spec)
            assertClose(dx, dxRef, 1e-5, "dx \(spec) \(xd)")
            assertClose(dw, dwRef, 1e-5, "dw \(spec) \(xd)")
            assertClose(db, dbRef, 1e-5, "db \(spec) \(xd)")
            // The direct weight gradient on its own (used whatever Cin is).
            let dw2 = random(wt.shape), dw2Ref = dw2.clone()
            ConvSmallOut.weightGradient(dw: dw2.data, db: nil, dy: dy.data, x: x.data, xd, spec)
            conv2dBackwardNaive(dx: nil, dw: dw2Ref.data, db: nil, dy: dy.data, x: x.data, xd, w: wt.data, spec)
            assertClose(dw2, dw2Ref, 1e-5, "direct dw \(spec) \(xd)")
        }
    }
}
