import NSTModel
import XCTest

/// TransformerNet, VGG16, the losses and three whole training steps against PyTorch.
final class GoldenModelTests: XCTestCase {
    override func setUp() { Threads.configure(2) }

    func testTransformerNetForwardAndBackward() throws {
        let f = try Golden.load("transformer_net")
        let net = TransformerNet()
        Golden.fillTransformer(net)
        Golden.checkHeads(net.parameters, f)
        let y = net.forward(f["x"])
        assertClose(y, f["y"], 1e-4, "y")
        XCTAssertEqual(net.infer(f["x"]).array, y.array, "the lean inference path computes the same")
        let dx = Tensor(shape: f["x"].shape)
        net.zeroGradients()
        net.backward(f["gy"], dx: dx)
        assertClose(dx, f["gx"], 1e-4, "gx")
        var compared = 0
        for p in net.parameters {
            guard let ref = f.tensors["grad.\(p.name)"] else { continue }
            if Self.cancelledByInstanceNorm(p.name) {
                // Mathematically zero: both sides hold only float32 rounding noise (real gradients
                // here have an RMS of 1 to 50).
                XCTAssertLessThan(rms(p.grad!), 1e-4, "grad.\(p.name) should vanish")
                XCTAssertLessThan(rms(ref), 1e-4, "PyTorch's grad.\(p.name) should vanish")
            } else {
                assertClose(p.grad!, ref, 1e-4, "grad.\(p.name)")
                XCTAssertGreaterThan(rms(ref), 0.1, "grad.\(p.name) is a real gradient")
            }
            compared += 1
        }
        XCTAssertEqual(compared, f.tensors.keys.filter { $0.hasPrefix("grad.") }.count, "gradients compared")

        // Last, since a forward on another input replaces what backward needs:
        let image = RGBImage(chw: f["x"].data, width: 32, height: 32)
        let out = net.stylize(image)
        let x1 = Tensor(shape: [1, 3, 32, 32])
        image.writeCHW(to: x1.data)
        XCTAssertEqual(out, RGBImage(chw: net.forward(x1).data, width: 32, height: 32), "stylize = clamp(forward)")
    }

    /// Parameters whose effect an instance norm removes exactly: the bias of every convolution
    /// followed by an instance norm, and the bias of each residual block's last instance norm (a
    /// per-channel constant on the residual stream, which only reaches convolutions followed by
    /// instance norms). Their gradients are zero up to rounding, so Adam, which divides by the
    /// gradient's own scale, moves them by ±lr in directions set by rounding noise — in PyTorch
    /// as here — without changing what the network computes.
    static func cancelledByInstanceNorm(_ name: String) -> Bool {
        (name.hasSuffix(".conv2d.bias") && name != "deconv3.conv2d.bias")
            || (name.hasPrefix("res") && name.hasSuffix(".in2.bias"))
    }

    func testVGG16ForwardAndInputGradient() throws {
        let f = try Golden.load("vgg16")
        let vgg = VGG16()
        Golden.fillVGG(vgg)
        Golden.checkHeads(vgg.parameters, f)
        let taps = vgg.forward(f["x"])
        let names = ["relu1_2", "relu2_2", "relu3_3", "relu4_3"]
        for (t, name) in zip(taps, names) { assertClose(t, f[name], 1e-4, name) }
        let dx = Tensor(shape: f["x"].shape)
        vgg.backward(dx: dx.data, grads: [Scratch(), Scratch()]) { tap, grad in
            let g = f["g.\(names[tap.rawValue])"]
            for i in 0..<g.count { grad[i] += g.data[i] }
        }
        assertClose(dx, f["gx"], 1e-4, "gx")
    }

    func testPerceptualLossesAndGradient() throws {
        let f = try Golden.load("losses")
        let vgg = VGG16()
        Golden.fillVGG(vgg)
        let loss = PerceptualLoss(vgg: vgg, contentWeight: 1e5, styleWeight: 1e10)
        loss.setStyle(f["style"])
        for l in 0..<4 { assertClose(loss.styleGrams[l], f["gram_style.\(l)"], 1e-4, "gram_style.\(l)") }
        let dy = Tensor(shape: f["y"].shape)
        let v = loss.lossAndGradient(x: f["x"], y: f["y"], dy: dy)
        XCTAssertEqual(v.content, Double(f["content"].data[0]), accuracy: 1e-4 * v.content)
        XCTAssertEqual(v.style, Double(f["style_loss"].data[0]), accuracy: 1e-4 * v.style)
        XCTAssertEqual(v.total, Double(f["total"].data[0]), accuracy: 1e-4 * v.total)
        assertClose(dy, f["gy"], 1e-4, "gy")
        let again = loss.loss(x: f["x"], y: f["y"])
        XCTAssertEqual(again.total, v.total, accuracy: 1e-6 * v.total, "forward-only loss agrees")
    }

    func testThreeTrainingStepsMatchPyTorch() throws {
        let f = try Golden.load("train_steps")
        let net = TransformerNet()
        Golden.fillTransformer(net)
        Golden.checkHeads(net.parameters, f)
        let vgg = VGG16()
        Golden.fillVGG(vgg)
        let loss = PerceptualLoss(vgg: vgg, contentWeight: 1e5, styleWeight: 1e10)
        loss.setStyle(f["style"])
        let initial = net.parameters.map { $0.value.clone() }
        let trainer = Trainer(net: net, loss: loss, lr: 1e-3)
        for k in 0..<3 {
            let v = trainer.step(f["x\(k + 1)"])
            let refC = Double(f["content"].data[k]), refS = Double(f["style_loss"].data[k]), refT = Double(f["total"].data[k])
            XCTAssertEqual(v.content, refC, accuracy: 1e-3 * refC, "step \(k + 1) content")
            XCTAssertEqual(v.style, refS, accuracy: 1e-3 * refS, "step \(k + 1) style")
            XCTAssertEqual(v.total, refT, accuracy: 1e-3 * refT, "step \(k + 1) total")
        }
        // Adam's first steps move every weight by about ±lr whatever the gradient's size, so
        // elements whose gradient is near zero take rounding-dependent directions; the trained
        // parameters therefore agree to a few 1e-3 (an Adam or gradient bug gives > 5e-2), and
        // the last layers, fed by clean gradients, to 1e-4.
        var compared = 0
        for (k, p) in net.parameters.enumerated() {
            guard let ref = f.tensors["final.\(p.name)"] else { continue }
            compared += 1
            if Self.cancelledByInstanceNorm(p.name) {
                for i in 0..<p.value.count {
                    XCTAssertLessThanOrEqual(abs(p.value.data[i] - initial[k].data[i]), 3.05e-3, "\(p.name) moves about ±lr a step")
                }
                continue
            }
            let tol = p.name.hasPrefix("deconv3") || p.name.hasPrefix("in5") ? 1e-4 : 1e-2
            assertClose(p.value, ref, tol, "final.\(p.name)")
        }
        XCTAssertEqual(compared, f.tensors.keys.filter { $0.hasPrefix("final.") }.count)
    }
}

func rms(_ t: Tensor) -> Double {
    var s = 0.0
    for i in 0..<t.count { s += Double(t.data[i]) * Double(t.data[i]) }
    return (s / Double(max(t.count, 1))).squareRoot()
}
