/// Overlapping tiles over an image for `TransformerNet.inferTiled`.
///
/// Each tile owns a *core*; the cores partition the image. A tile is its core grown by
/// `margin` pixels on every side that is not the image's border, so that the core is computed
/// exactly as in the whole image:
///
/// - Inside the image a tile's edge is not a border, but each layer reflection-pads it as if it
///   were; the wrong values spread inward by each layer's reach. In full-resolution pixels:
///   conv1 (9×9) 4, conv2 (3×3, stride 2) 1 + rounding, conv3 (stride 2 on ½ res) 2, ten 3×3
///   convolutions on ¼ res 4 each, deconv1 (×2 up, 3×3 on ½ res) 2, deconv2 1, deconv3 (9×9) 4:
///   columns 0…54 of a tile can differ from the whole image's, column 55 on cannot. The margin
///   is 64.
/// - Tiles start on multiples of 4 (the two stride-2 layers), so every tile's pixel grid at ½ and
///   ¼ resolution is a sub-grid of the whole image's.
/// - A tile that touches the image's border pads it exactly as the whole image does, including
///   the 4⌈H/4⌉ output rows of a height that is not a multiple of 4.
public struct TileLayout: Sendable, Equatable {
    /// Pixels added around a core on inner sides: at least the network's reach of 55 (above).
    public static let margin = 64
    /// The smallest tile side: two margins and a core of 64.
    public static let minimumTileSize = 2 * margin + 64

    public struct Tile: Sendable, Equatable {
        /// The pixels the tile reads, in image coordinates.
        public let rows: Range<Int>, cols: Range<Int>
        /// The pixels it owns (writes), in image coordinates; the cores partition the image.
        public let coreRows: Range<Int>, coreCols: Range<Int>
        /// Whether the core reaches the image's last row / column (it then also owns the
        /// output rows past the image when the height is not a multiple of 4).
        public let lastRow: Bool, lastCol: Bool

        /// The core in the tile's own coordinates at a layer of 1/`scale` resolution whose tile
        /// dims are h × w.
        public func core(scale: Int, h: Int, w: Int) -> (rows: Range<Int>, cols: Range<Int>) {
            func axis(_ core: Range<Int>, _ span: Range<Int>, _ last: Bool, _ n: Int) -> Range<Int> {
                let lo = (core.lowerBound - span.lowerBound) / scale
                return lo ..< (last ? n : (core.upperBound - span.lowerBound) / scale)
            }
            return (axis(coreRows, rows, lastRow, h), axis(coreCols, cols, lastCol, w))
        }
    }

    public let width: Int, height: Int, tileSize: Int
    public let tiles: [Tile]

    /// Tiles of at most `tileSize` × `tileSize` (rounded down to a multiple of 4, at least
    /// `minimumTileSize`) covering width × height.
    public init(width: Int, height: Int, tileSize: Int) {
        precondition(width > 0 && height > 0, "image \(width)×\(height)")
        precondition(tileSize >= Self.minimumTileSize, "tile size \(tileSize) below \(Self.minimumTileSize)")
        let size = tileSize / 4 * 4
        self.width = width; self.height = height; self.tileSize = size
        let ys = Self.axis(length: height, tileSize: size), xs = Self.axis(length: width, tileSize: size)
        tiles = ys.flatMap { y in
            xs.map { x in
                Tile(rows: y.span, cols: x.span, coreRows: y.core, coreCols: x.core,
                     lastRow: y.core.upperBound == height, lastCol: x.core.upperBound == width)
            }
        }
    }

    /// The largest tile's rows and columns.
    public var largestTile: (rows: Int, cols: Int) {
        (tiles.map(\.rows.count).max() ?? 0, tiles.map(\.cols.count).max() ?? 0)
    }

    /// One axis: T tiles with cores of nearly equal length, boundaries on multiples of 4.
    /// With T = ⌈(L − 2m) / (N − 2m − 4)⌉ every span is at most N: inner spans are a core of
    /// at most (L − 2m)/T + 4 plus 2m, the first and last a core of at most m + (L − 2m)/T + 4
    /// plus m.
    static func axis(length: Int, tileSize: Int) -> [(span: Range<Int>, core: Range<Int>)] {
        let m = margin
        guard length > tileSize else { return [(0..<length, 0..<length)] }
        let count = (length - 2 * m + (tileSize - 2 * m - 4) - 1) / (tileSize - 2 * m - 4)
        var bounds = [0]
        for i in 1..<count { bounds.append((m + i * (length - 2 * m) / count) / 4 * 4) }
        bounds.append(length)
        return (0..<count).map { i in
            let core = bounds[i] ..< bounds[i + 1]
            return (max(0, core.lowerBound - m) ..< min(length, core.upperBound + m), core)
        }
    }
}
