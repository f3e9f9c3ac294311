import NSTModel

enum InferenceSupport {
    /// A seeded random TransformerNet whose pictures spread over 0…255: a fresh network's output
    /// is near 0 (almost all black after clamping), so its last layer is scaled up and centred
    /// on mid-grey.
    static func visibleNet(seed: UInt64) -> TransformerNet {
        let net = TransformerNet(seed: seed)
        let w = net.deconv3.weight.value
        for i in 0..<w.count { w.data[i] *= 60 }
        net.deconv3.bias.value.fill(128)
        return net
    }

    /// The whole output of `net` on `image`, as floats [1, 3, 4⌈H/4⌉, 4⌈W/4⌉].
    static func wholeOutput(_ net: TransformerNet, _ image: RGBImage) -> Tensor {
        let x = Tensor(shape: [1, 3, image.height, image.width])
        image.writeCHW(to: x.data)
        return net.infer(x)
    }

    /// The fraction of bytes of `a` and `b` that differ, and the largest difference.
    static func byteDifference(_ a: RGBImage, _ b: RGBImage) -> (fraction: Double, largest: Int) {
        precondition(a.pixels.count == b.pixels.count)
        var differ = 0, largest = 0
        for i in 0..<a.pixels.count where a.pixels[i] != b.pixels[i] {
            differ += 1
            largest = max(largest, abs(Int(a.pixels[i]) - Int(b.pixels[i])))
        }
        return (Double(differ) / Double(a.pixels.count), largest)
    }
}
