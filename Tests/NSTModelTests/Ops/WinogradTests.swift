import NSTModel
import XCTest

/// The Winograd F(4×4, 3×3) path against the naive convolution: forward, input gradient and
/// weight gradient, on shapes that exercise partial tiles, every padding, tile rows split across
/// bands and images, and one or two threads.
final class WinogradTests: XCTestCase {
    override func tearDown() {
        Winograd.enabled = true
        Threads.configure(2)
    }

    private func random(_ shape: [Int], _ rng: inout SplitMix64) -> Tensor {
        let t = Tensor(shape: shape)
        for i in 0..<t.count { t.data[i] = Float(2 * rng.unit() - 1) }
        return t
    }

    func testMatchesNaiveConvolutionForwardAndBackward() {
        var rng = SplitMix64(seed: 2024)
        // (n, cin, cout, h, w, pad): sizes on and off multiples of 4 and 8, tiny planes, wide rows
        // (tilesX > 8), many tile rows (several bands per thread), the VGG and residual shapes.
        let cases = [(2, 16, 16, 10, 10, 1), (1, 16, 24, 7, 13, 0), (3, 20, 16, 9, 5, 2),
                     (2, 16, 16, 34, 70, 1), (1, 17, 33, 6, 6, 0), (5, 16, 16, 3, 3, 1),
                     (1, 32, 16, 66, 66, 0), (4, 64, 64, 8, 8, 1), (2, 16, 16, 1, 2, 1)]
        for threads in [1, 2] {
            Threads.configure(threads)
            for (n, cin, cout, h, w, pad) in cases {
                let spec = ConvSpec(cin: cin, cout: cout, k: 3, stride: 1, pad: pad)
                XCTAssertTrue(Winograd.applies(spec))
                let xd = Dims4(n, cin, h, w), yd = spec.output(xd)
                let x = random(xd.shape, &rng), wt = random([cout, cin, 3, 3], &rng)
                let b = random([cout], &rng), dy = random(yd.shape, &rng)
                let label = "\(spec) \(xd) threads \(threads)"

                let y = Tensor(shape: yd.shape), yRef = Tensor(shape: yd.shape)
                conv2dForward(y.data, x.data, xd, wt.data, b.data, spec, Scratch())
                conv2dForwardNaive(yRef.data, x.data, xd, wt.data, b.data, spec)
                assertClose(y, yRef, 1e-5, "forward \(label)")

                // Parameter gradients accumulate onto what is there; dx is overwritten.
                let dx = random(xd.shape, &rng), dw = random(wt.shape, &rng), db = random(b.shape, &rng)
                let dxRef = Tensor(shape: xd.shape), dwRef = dw.clone(), dbRef = db.clone()
                conv2dBackward(dx: dx.data, dw: dw.data, db: db.data, dy: dy.data, x: x.data, xd, w: wt.data,
                               spec, Scratch())
                conv2dBackwardNaive(dx: dxRef.data, dw: dwRef.data, db: dbRef.data, dy: dy.data, x: x.data, xd,
                                    w: wt.data, spec)
                assertClose(dx, dxRef, 1e-5, "dx \(label)")
                assertClose(dw, dwRef, 1e-5, "dw \(label)")
                assertClose(db, dbRef, 1e-5, "db \(label)")
            }
        }
    }

    /// A constant image through a kernel whose taps are all 1 gives 9 inside and fewer at the
    /// zero-padded border: checks the tiling's edges exactly, whatever the transform's rounding.
    func testBorderCountsWithPaddingOne() {
        Threads.configure(2)
        let spec = ConvSpec(cin: 16, cout: 16, k: 3, stride: 1, pad: 1)
        let xd = Dims4(1, 16, 6, 9), yd = spec.output(xd)
        let x = Tensor(shape: xd.shape), wt = Tensor(shape: [16, 16, 3, 3]), y = Tensor(shape: yd.shape)
        x.fill(1)
        for o in 0..<16 { for i in 0..<9 { wt.data[(o * 16 + o) * 9 + i] = 1 } }
        conv2dForward(y.data, x.data, xd, wt.data, nil, spec, Scratch())
        for i in 0..<yd.h {
            for j in 0..<yd.w {
                let rows = (i == 0 || i == yd.h - 1) ? 2 : 3, cols = (j == 0 || j == yd.w - 1) ? 2 : 3
                XCTAssertEqual(y.data[(5 * yd.h + i) * yd.w + j], Float(rows * cols), accuracy: 1e-4, "(\(i), \(j))")
            }
        }
    }

    /// The whole VGG16 + perceptual-loss input gradient (every layer but the first on Winograd)
    /// against the im2col path, which the finite-difference test checks.
    func testPerceptualGradientMatchesIm2col() {
        Threads.configure(2)
        var rng = SplitMix64(seed: 15)
        let perceptual = PerceptualLoss(vgg: VGG16(randomSeed: 15), contentWeight: 30, styleWeight: 3e7)
        perceptual.setStyle(FD.random([1, 3, 24, 24], &rng, 0, 255))
        let x = FD.random([2, 3, 24, 24], &rng, 0, 255), y = FD.random(x.shape, &rng, 0, 255)
        var grads: [Tensor] = [], totals: [Double] = []
        for on in [false, true] {
            Winograd.enabled = on
            let dy = Tensor(shape: x.shape)
            totals.append(Double(perceptual.lossAndGradient(x: x, y: y, dy: dy).total))
            grads.append(dy)
        }
        XCTAssertEqual(totals[1], totals[0], accuracy: 1e-6 * totals[0])
        assertClose(grads[1], grads[0], 1e-5, "VGG16 + perceptual loss dy, Winograd vs im2col")
    }

    /// VGG16 keeps its transformed kernels between calls; new weights, however written, are seen.
    func testKernelCacheFollowsNewWeights() {
        Threads.configure(2)
        var rng = SplitMix64(seed: 5)
        let spec = ConvSpec(cin: 16, cout: 16, k: 3, stride: 1, pad: 1)
        let xd = Dims4(1, 16, 8, 8)
        let x = random(xd.shape, &rng), wt = random([16, 16, 3, 3], &rng)
        let y = Tensor(shape: xd.shape), yRef = Tensor(shape: xd.shape), cache = WinogradKernelCache()
        for round in 0..<3 {
            conv2dForward(y.data, x.data, xd, wt.data, nil, spec, Scratch(), kernels: cache)
            conv2dForwardNaive(yRef.data, x.data, xd, wt.data, nil, spec)
            assertClose(y, yRef, 1e-5, "forward, round \(round)")
            let dx = Tensor(shape: xd.shape), dxRef = Tensor(shape: xd.shape)
            conv2dBackward(dx: dx.data, dw: nil, db: nil, dy: x.data, x: x.data, xd, w: wt.data, spec, Scratch(), kernels: cache)
            conv2dBackwardNaive(dx: dxRef.data, dw: nil, db: nil, dy: x.data, x: x.data, xd, w: wt.data, spec)
            assertClose(dx, dxRef, 1e-5, "dx, round \(round)")
            wt.data[round * 37] += 0.5   // one tap changes in place
        }
        XCTAssertEqual(cache.bytes, 4 * (16 * 16 * 9) * (1 + 4 + 4), "the weights' copy and both kernel sets")
    }

    func testLayersOutsideItsScopeKeepIm2col() {
        XCTAssertFalse(Winograd.applies(ConvSpec(cin: 3, cout: 64, k: 3, stride: 1, pad: 1)))   // VGG conv1_1
        XCTAssertFalse(Winograd.applies(ConvSpec(cin: 32, cout: 64, k: 3, stride: 2, pad: 0)))  // strided
        XCTAssertFalse(Winograd.applies(ConvSpec(cin: 3, cout: 32, k: 9, stride: 1, pad: 0)))   // 9×9
        XCTAssertTrue(Winograd.applies(ConvSpec(cin: 128, cout: 128, k: 3, stride: 1, pad: 0))) // residual
    }
}
