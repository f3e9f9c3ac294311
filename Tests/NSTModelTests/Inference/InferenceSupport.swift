import NSTModel

enum InferenceSupport {
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
