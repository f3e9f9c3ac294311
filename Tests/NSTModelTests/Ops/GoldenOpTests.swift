import NSTModel
import XCTest

/// Every op's forward and backward against PyTorch (scripts/golden.py): relative L2 error ≤ 1e-4.
final class GoldenOpTests: XCTestCase {
    func testConv2DFastAndNaiveMatchPyTorch() throws {
        let f = try Golden.load("conv2d")
        for (name, stride, pad) in [("k3s1", 1, 0), ("k3s2", 2, 0), ("k9s1", 1, 0), ("k3s1p1", 1, 1)] {
            let x = f["\(name).x"], w = f["\(name).weight"], b = f["\(name).bias"], gy = f["\(name).gy"]
            let spec = ConvSpec(cin: w.shape[1], cout: w.shape[0], k: w.shape[2], stride: stride, pad: pad)
            let yd = spec.output(x.dims4)
            XCTAssertEqual(yd.shape, f["\(name).y"].shape, name)
            for naive in [false, true] {
                let label = "\(name)\(naive ? " naive" : "")"
                let y = Tensor(shape: yd.shape), dx = Tensor(shape: x.shape)
                let dw = Tensor(shape: w.shape), db = Tensor(shape: b.shape)
                if naive {
                    conv2dForwardNaive(y.data, x.data, x.dims4, w.data, b.data, spec)
                    conv2dBackwardNaive(dx: dx.data, dw: dw.data, db: db.data, dy: gy.data, x: x.data, x.dims4, w: w.data, spec)
                } else {
                    conv2dForward(y.data, x.data, x.dims4, w.data, b.data, spec, Scratch())
                    conv2dBackward(dx: dx.data, dw: dw.data, db: db.data, dy: gy.data, x: x.data, x.dims4, w: w.data, spec, Scratch())
                }
                assertClose(y, f["\(name).y"], 1e-5, "\(label) y")
                assertClose(dx, f["\(name).gx"], 1e-5, "\(label) gx")
                assertClose(dw, f["\(name).gweight"], 1e-5, "\(label) gweight")
                assertClose(db, f["\(name).gbias"], 1e-5, "\(label) gbias")
            }
        }
    }

    func testReflectionPad() throws {
        let f = try Golden.load("reflection_pad")
        for (name, p) in [("p1", 1), ("p4", 4)] {
            let x = f["\(name).x"]
            let y = Tensor(shape: reflectionPadDims(x.dims4, p).shape), dx = Tensor(shape: x.shape)
            reflectionPadForward(y.data, x.data, x.dims4, p)
            reflectionPadBackward(dx.data, f["\(name).gy"].data, x.dims4, p)
            XCTAssertEqual(y.array, f["\(name).y"].array, "\(name) y is a copy, exactly")
            assertClose(dx, f["\(name).gx"], 1e-6, "\(name) gx")
        }
    }

    func testInstanceNorm() throws {
        let f = try Golden.load("instance_norm")
        let x = f["x"], w = f["weight"], b = f["bias"]
        let y = Tensor(shape: x.shape), dx = Tensor(shape: x.shape)
        let dw = Tensor(shape: w.shape), db = Tensor(shape: b.shape)
        let cache = InstanceNormCache()
        instanceNormForward(y.data, x.data, x.dims4, w.data, b.data, relu: false, cache: cache)
        instanceNormBackward(dx.data, dgamma: dw.data, dbeta: db.data, f["gy"].data, x: x.data, y: y.data,
                             x.dims4, w.data, relu: false, cache: cache)
        assertClose(y, f["y"], 1e-5, "y")
        assertClose(dx, f["gx"], 1e-5, "gx")
        assertClose(dw, f["gweight"], 1e-5, "gweight")
        assertClose(db, f["gbias"], 1e-5, "gbias")
    }

    func testReLU() throws {
        let f = try Golden.load("relu")
        let x = f["x"], y = Tensor(shape: x.shape), dx = Tensor(shape: x.shape)
        reluForward(y.data, x.data, x.count)
        reluBackward(dx.data, f["gy"].data, y: y.data, x.count)
        XCTAssertEqual(y.array, f["y"].array)
        XCTAssertEqual(dx.array, f["gx"].array)
    }

    func testUpsample() throws {
        let f = try Golden.load("upsample")
        let x = f["x"], y = Tensor(shape: upsample2Dims(x.dims4).shape), dx = Tensor(shape: x.shape)
        upsample2Forward(y.data, x.data, x.dims4)
        upsample2Backward(dx.data, f["gy"].data, x.dims4)
        XCTAssertEqual(y.array, f["y"].array)
        assertClose(dx, f["gx"], 1e-6, "gx")
    }

    func testMaxPool() throws {
        let f = try Golden.load("maxpool")
        for prefix in ["", "odd."] {
            let x = f["\(prefix)x"], y = Tensor(shape: maxPool2Dims(x.dims4).shape), dx = Tensor(shape: x.shape)
            maxPool2Forward(y.data, x.data, x.dims4)
            maxPool2Backward(dx.data, f["\(prefix)gy"].data, x: x.data, x.dims4)
            XCTAssertEqual(y.shape, f["\(prefix)y"].shape)
            XCTAssertEqual(y.array, f["\(prefix)y"].array, "\(prefix)y")
            XCTAssertEqual(dx.array, f["\(prefix)gx"].array, "\(prefix)gx")
        }
    }

    func testGram() throws {
        let f = try Golden.load("gram")
        let x = f["x"], d = x.dims4
        let y = Tensor(shape: [d.n, d.c, d.c]), dx = Tensor(shape: x.shape)
        gramForward(y.data, x.data, d)
        gramBackward(dx.data, f["gy"].data, x: x.data, d, Scratch())
        assertClose(y, f["y"], 1e-5, "y")
        assertClose(dx, f["gx"], 1e-5, "gx")
    }

    func testMSE() throws {
        let f = try Golden.load("mse")
        let a = f["a"], b = f["b"], da = Tensor(shape: a.shape)
        let loss = mseForward(a.data, b.data, count: a.count)
        XCTAssertEqual(loss, Double(f["loss"].data[0]), accuracy: 1e-6 * abs(loss))
        mseBackward(da.data, a.data, b.data, count: a.count, scale: 1)
        assertClose(da, f["ga"], 1e-6, "ga")
    }

    func testNormalize() throws {
        let f = try Golden.load("normalize")
        let x = f["x"], y = Tensor(shape: x.shape), dx = Tensor(shape: x.shape)
        normalizeForward(y.data, x.data, x.dims4)
        normalizeBackward(dx.data, f["gy"].data, x.dims4)
        assertClose(y, f["y"], 1e-6, "y")
        assertClose(dx, f["gx"], 1e-6, "gx")
    }

    func testAdamMatchesTorchOptimAdam() throws {
        let f = try Golden.load("adam")
        for (prefix, lr) in [("", 0.01), ("lr1e-3.", 1e-3)] {
            let p = Parameter(name: "p", shape: f["\(prefix)p0"].shape, trainable: true)
            p.value.copy(from: f["\(prefix)p0"])
            let adam = Adam(parameters: [p], lr: lr)
            for k in 1...3 {
                p.grad!.copy(from: f["\(prefix)g\(k)"])
                adam.update()
                assertClose(p.value, f["\(prefix)p\(k)"], 1e-6, "\(prefix)p\(k)")
            }
            XCTAssertEqual(adam.step, 3)
        }
    }
}
