/// Less flicker in stylised video: where the content holds still, each output frame is blended
/// with the previous output frame, so that the network's frame-to-frame jitter on unchanged
/// content (noise, compression) is averaged away; where the content moves, the new frame is
/// kept as it is, so that nothing drags behind. Per pixel, with the content's change
/// d = the mean over R, G, B of |c_t − c_{t−1}| (grey levels; the mean rather than the largest,
/// so that sensor noise in one channel does not count as motion):
///
///   w = weight · max(0, 1 − d / threshold),   o_t = (1 − w) · y_t + w · o_{t−1}
///
/// (an exponential moving average over the frames for which a pixel stays still; o is kept in
/// floats and rounded to bytes). The first frame is kept as it is.
public struct Deflicker {
    /// How much of the previous output a still pixel keeps.
    public let weight: Float
    /// The content change (grey levels) from which a pixel counts as moving.
    public let threshold: Float
    private var previousContent: [UInt8] = []
    private var previousOutput: [Float] = []

    public init(weight: Float = 0.6, threshold: Float = 24) {
        precondition((0..<1).contains(weight) && threshold > 0, "deflicker weight \(weight), threshold \(threshold)")
        self.weight = weight
        self.threshold = threshold
    }

    /// Blends `output` (the stylisation of `content`, same size) in place.
    public mutating func apply(content: RGBImage, output: inout RGBImage) {
        precondition(content.width == output.width && content.height == output.height, "content and output sizes differ")
        let n = content.pixels.count
        if previousContent.count != n {   // the first frame (or a new size): nothing to blend with
            previousContent = content.pixels
            previousOutput = output.pixels.map { Float($0) }
            return
        }
        let wmax = weight, inverse = 1 / threshold
        content.pixels.withUnsafeBufferPointer { c in
        previousContent.withUnsafeMutableBufferPointer { pc in
        previousOutput.withUnsafeMutableBufferPointer { po in
        output.pixels.withUnsafeMutableBufferPointer { y in
            var i = 0
            while i < n {
                let d = Float(Int(absDiff(c[i], pc[i])) + Int(absDiff(c[i + 1], pc[i + 1])) + Int(absDiff(c[i + 2], pc[i + 2]))) / 3
                let w = wmax * max(0, 1 - d * inverse)
                for k in i..<i + 3 {
                    let o = (1 - w) * Float(y[k]) + w * po[k]
                    po[k] = o
                    y[k] = UInt8(min(255, o.rounded()))
                    pc[k] = c[k]
                }
                i += 3
            }
        }
        }
        }
        }
    }
}

/// The mean absolute difference of consecutive frames, over every byte: what flicker looks like
/// as a number (0 for a still picture).
public struct FrameDifference {
    private var previous: [UInt8] = []
    private var total = 0.0
    public private(set) var pairs = 0

    public init() {}

    public mutating func add(_ frame: RGBImage) {
        defer { previous = frame.pixels }
        guard previous.count == frame.pixels.count else { return }
        var sum = 0
        frame.pixels.withUnsafeBufferPointer { a in
            previous.withUnsafeBufferPointer { b in
                for i in 0..<a.count { sum += Int(absDiff(a[i], b[i])) }
            }
        }
        total += Double(sum) / Double(frame.pixels.count)
        pairs += 1
    }

    /// Grey levels per byte, averaged over the pairs of frames (0 with fewer than two frames).
    public var mean: Double { pairs == 0 ? 0 : total / Double(pairs) }
}

@inline(__always) func absDiff(_ a: UInt8, _ b: UInt8) -> UInt8 { a > b ? a - b : b - a }
