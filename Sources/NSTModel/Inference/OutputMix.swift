/// How the network's output becomes the picture, per pixel, after clamping it to [0, 255]:
///
/// - Colour preservation (Gatys et al., "Preserving Color in Neural Artistic Style Transfer",
///   2016, luminance-only transfer): the output's luma onto the content's chroma, in JPEG's
///   full-range BT.601 YCbCr (chroma centred on 0 here; the +128 offsets cancel):
///     Y = 0.299 R + 0.587 G + 0.114 B
///     Cb = −0.168736 R − 0.331264 G + 0.5 B,   Cr = 0.5 R − 0.418688 G − 0.081312 B
///     R = Y + 1.402 Cr,   G = Y − 0.344136 Cb − 0.714136 Cr,   B = Y + 1.772 Cb
///   with Y from the output and Cb, Cr from the content.
/// - Strength s: s · stylised + (1 − s) · content.
///
/// Then clamp to [0, 255] and truncate to bytes, as `RGBImage(chw:)` does: with s = 1 and no
/// colour preservation the bytes are exactly those, with s = 0 exactly the content's.
/// The output may be larger than the content (4⌈H/4⌉ rows for H); the content's last row and
/// column stand in for the missing ones.
public struct OutputMix: Sendable, Equatable {
    public var strength: Float
    public var preserveColor: Bool

    public init(strength: Float = 1, preserveColor: Bool = false) {
        self.strength = strength
        self.preserveColor = preserveColor
    }

    public var isPlain: Bool { strength == 1 && !preserveColor }

    /// Writes `rows` × `cols` of the network output `y` ([1, 3, yd.h, yd.w]) into the image
    /// `out` (RGB bytes, outWidth × outHeight), at image position (origin.row + r, origin.col + c);
    /// pixels past `out`'s size are dropped. `content` is the input image (same coordinates).
    public func write(_ y: UnsafePointer<Float>, _ yd: Dims4, rows: Range<Int>, cols: Range<Int>,
                      origin: (row: Int, col: Int), content: RGBImage,
                      into out: UnsafeMutablePointer<UInt8>, outWidth: Int, outHeight: Int) {
        let plane = yd.plane, s = strength, keep = 1 - strength
        let rowEnd = min(rows.upperBound, outHeight - origin.row), colEnd = min(cols.upperBound, outWidth - origin.col)
        guard rows.lowerBound < rowEnd, cols.lowerBound < colEnd else { return }
        content.pixels.withUnsafeBufferPointer { cp in
            for r in rows.lowerBound..<rowEnd {
                let oy = origin.row + r, cy = min(oy, content.height - 1)
                let yr = y + r * yd.w, dst = out + (oy * outWidth + origin.col) * 3
                let crow = cp.baseAddress! + cy * content.width * 3
                for j in cols.lowerBound..<colEnd {
                    var red = clamp255(yr[j]), green = clamp255(yr[plane + j]), blue = clamp255(yr[2 * plane + j])
                    if !isPlain {
                        let cx = min(origin.col + j, content.width - 1) * 3
                        let cr = Float(crow[cx]), cg = Float(crow[cx + 1]), cb = Float(crow[cx + 2])
                        if preserveColor {
                            let luma = 0.299 * red + 0.587 * green + 0.114 * blue
                            let chromaB = -0.168736 * cr - 0.331264 * cg + 0.5 * cb
                            let chromaR = 0.5 * cr - 0.418688 * cg - 0.081312 * cb
                            red = luma + 1.402 * chromaR
                            green = luma - 0.344136 * chromaB - 0.714136 * chromaR
                            blue = luma + 1.772 * chromaB
                        }
                        red = s * red + keep * cr
                        green = s * green + keep * cg
                        blue = s * blue + keep * cb
                    }
                    let o = dst + j * 3
                    o[0] = byte(red); o[1] = byte(green); o[2] = byte(blue)
                }
            }
        }
    }
}

/// [0, 255], NaN → 0.
@inline(__always) func clamp255(_ v: Float) -> Float { v >= 255 ? 255 : (v > 0 ? v : 0) }

/// Clamp and truncate toward zero, as numpy's `x.clip(0, 255).astype(uint8)`; NaN → 0.
@inline(__always) func byte(_ v: Float) -> UInt8 { v >= 255 ? 255 : (v > 0 ? UInt8(v) : 0) }
