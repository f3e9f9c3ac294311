import Foundation

/// A style image's Gram statistics (the style targets of `PerceptualLoss`: one Gram matrix per
/// VGG16 tap), for `"init": "nearest"`: a new style starts from the finished model whose style
/// is closest by these (docs/tuning.md, warm starts).
public struct StyleSignature {
    /// One Gram matrix per tap (relu1_2, relu2_2, relu3_3, relu4_3), flattened.
    public let grams: [[Float]]

    /// The Gram matrices of `image` resized to `size`×`size`, through `vgg`.
    public init(image: RGBImage, size: Int, vgg: VGG16) {
        let t = Tensor(shape: [1, 3, size, size])
        (image.width == size && image.height == size ? image : image.resized(width: size, height: size)).writeCHW(to: t.data)
        let loss = PerceptualLoss(vgg: vgg)
        loss.setStyle(t)
        grams = loss.styleGrams.map { g in Array(UnsafeBufferPointer(start: g.data, count: g.count)) }
    }

    init(grams: [[Float]]) { self.grams = grams }

    /// The mean over taps of ‖G_self − G_other‖ / ‖G_self‖ (Frobenius norms): 0 for the same
    /// statistics, about 1 when the other's are small beside these; scale-free per tap, so the
    /// deep taps' large values do not drown the shallow ones. Infinity when the taps differ.
    public func distance(to other: StyleSignature) -> Double {
        guard grams.count == other.grams.count, !grams.isEmpty else { return .infinity }
        var sum = 0.0
        for (a, b) in zip(grams, other.grams) {
            guard a.count == b.count else { return .infinity }
            var diff = 0.0, norm = 0.0
            for i in a.indices {
                let d = Double(a[i]) - Double(b[i])
                diff += d * d
                norm += Double(a[i]) * Double(a[i])
            }
            sum += norm > 0 ? (diff / norm).squareRoot() : (diff > 0 ? .infinity : 0)
        }
        return sum / Double(grams.count)
    }
}
