import Foundation

/// Everything about a stylisation except the model: checked once, where the values enter
/// (`validate()`), against the limits below.
public struct StylizeSettings: Sendable, Equatable {
    /// How an image is cut up.
    public enum Tiling: Sendable, Equatable {
        /// The whole image at once when `wholeImageBytes` fits in `maxMemoryBytes`, else tiles
        /// of the largest size that fits.
        case automatic
        /// Always the whole image.
        case whole
        /// Tiles of at most N × N (an image that fits in one is done whole).
        case tiles(Int)
    }

    /// The output's size: the network's (4⌈H/4⌉ × 4⌈W/4⌉, as PyTorch) or the content's.
    public enum OutputSize: Sendable, Equatable { case network, content }

    public var mix = OutputMix()
    public var tiling = Tiling.automatic
    public var maxMemoryBytes: Int
    public var outputSize = OutputSize.network
    /// Where tiled runs keep the tiles' activations between passes.
    public var spillDirectory = FileManager.default.temporaryDirectory

    // MARK: Limits

    /// Tile sides accepted by `.tiles(N)`.
    public static let tileSizes = TileLayout.minimumTileSize...16_384
    /// The largest tile `.automatic` picks (larger ones barely reduce the overlap).
    public static let largestAutomaticTile = 2048
    public static let minimumMemoryBytes = 64 << 20
    /// The most images `batchCapacity` ever puts in one batch.
    public static let largestBatch = 256
    /// The network's smallest input side (its ¼-resolution layers reflection-pad by one pixel).
    public static let minimumImageSide = 5

    /// A quarter of the machine's memory.
    public static var defaultMaxMemoryBytes: Int { Int(clamping: ProcessInfo.processInfo.physicalMemory / 4) }

    public init(strength: Double = 1, preserveColor: Bool = false, tiling: Tiling = .automatic,
                maxMemoryBytes: Int = StylizeSettings.defaultMaxMemoryBytes) {
        mix = OutputMix(strength: Float(strength), preserveColor: preserveColor)
        self.tiling = tiling
        self.maxMemoryBytes = maxMemoryBytes
    }

    public func validate() throws(StylizeError) {
        guard mix.strength.isFinite, (0...1).contains(mix.strength) else { throw .strengthOutOfRange(Double(mix.strength)) }
        if case let .tiles(n) = tiling, !Self.tileSizes.contains(n) { throw .tileSizeOutOfRange(n) }
        guard maxMemoryBytes >= Self.minimumMemoryBytes else { throw .memoryBudgetTooSmall(bytes: maxMemoryBytes) }
    }
}

/// Stylises images with one TransformerNet: whole, in batches of one size, or in tiles that
/// share the whole image's instance-norm statistics (`inferTiled`), then mixes the output with
/// the content (`OutputMix`). The command line's `stylize` and `stylize-video` use it. Not
/// thread-safe: the network's buffers are reused from call to call.
public final class Stylizer {
    public let net: TransformerNet
    public let settings: StylizeSettings
    private let input = Activation()

    public init(net: TransformerNet, settings: StylizeSettings) throws(StylizeError) {
        try settings.validate()
        self.net = net
        self.settings = settings
    }

    /// How one image is run.
    public enum Plan: Equatable, Sendable {
        case whole
        case tiled(TileLayout)
    }

    public func plan(width: Int, height: Int) -> Plan {
        switch settings.tiling {
        case .whole:
            return .whole
        case let .tiles(n):
            return width <= n && height <= n ? .whole : .tiled(TileLayout(width: width, height: height, tileSize: n))
        case .automatic:
            if Self.wholeImageBytes(width: width, height: height) <= settings.maxMemoryBytes { return .whole }
            let images = Self.imageBytes(width: width, height: height)
            let n = stride(from: StylizeSettings.largestAutomaticTile, to: TileLayout.minimumTileSize, by: -64)
                .first { Self.wholeImageBytes(width: $0, height: $0) + images <= settings.maxMemoryBytes }
                ?? TileLayout.minimumTileSize
            return .tiled(TileLayout(width: width, height: height, tileSize: n))
        }
    }

    /// How many width × height images fit in the memory budget at once, at most `limit` (and
    /// `StylizeSettings.largestBatch`); 0 when even one is tiled.
    public func batchCapacity(width: Int, height: Int, limit: Int) -> Int {
        guard plan(width: width, height: height) == .whole else { return 0 }
        let limit = min(limit, StylizeSettings.largestBatch)
        if settings.tiling == .whole { return max(1, limit) }
        var n = 1
        while n < limit && Self.wholeImageBytes(width: width, height: height, batch: n + 1) <= settings.maxMemoryBytes { n += 1 }
        return n
    }

    // MARK: - Stylising

    /// One image; `progress(done, total)` reports a tiled run's work.
    public func stylize(_ image: RGBImage, progress: ((Int, Int) -> Void)? = nil) throws(StylizeError) -> RGBImage {
        try Self.check(image)
        switch plan(width: image.width, height: image.height) {
        case .whole:
            return try stylize(batch: [image])[0]
        case let .tiled(layout):
            var out = outputImage(for: image)
            try out.pixels.withUnsafeMutableBufferPointer { (p) throws(StylizeError) in
                let outW = out.width, outH = out.height
                try net.inferTiled(image, layout: layout, spillDirectory: settings.spillDirectory, progress: progress) { y, yd, tile in
                    let core = tile.core(scale: 1, h: yd.h, w: yd.w)
                    settings.mix.write(y, yd, rows: core.rows, cols: core.cols, origin: (tile.rows.lowerBound, tile.cols.lowerBound),
                                       content: image, into: p.baseAddress!, outWidth: outW, outHeight: outH)
                }
            }
            return out
        }
    }

    /// Images of one size through the network together (instance norm is per image, so each
    /// result is what it would be alone), whole, whatever the memory budget.
    public func stylize(batch images: [RGBImage]) throws(StylizeError) -> [RGBImage] {
        guard let first = images.first else { return [] }
        try Self.check(first)
        for other in images where other.width != first.width || other.height != first.height {
            throw .batchSizesDiffer(first: "\(first.width)×\(first.height)", other: "\(other.width)×\(other.height)")
        }
        let x = input.get(Dims4(images.count, 3, first.height, first.width))
        let stride = 3 * first.width * first.height
        for (i, image) in images.enumerated() { image.writeCHW(to: x.data + i * stride) }
        let y = net.infer(x)
        let yd = y.dims4
        return images.enumerated().map { i, image in
            var out = outputImage(for: image)
            let outW = out.width, outH = out.height
            out.pixels.withUnsafeMutableBufferPointer { p in
                settings.mix.write(y.data + i * 3 * yd.plane, Dims4(1, 3, yd.h, yd.w), rows: 0..<yd.h, cols: 0..<yd.w,
                                   origin: (0, 0), content: image, into: p.baseAddress!, outWidth: outW, outHeight: outH)
            }
            return out
        }
    }

    private func outputImage(for image: RGBImage) -> RGBImage {
        let (w, h) = settings.outputSize == .content
            ? (image.width, image.height) : ((image.width + 3) / 4 * 4, (image.height + 3) / 4 * 4)
        return RGBImage(width: w, height: h, pixels: [UInt8](repeating: 0, count: w * h * 3))
    }

    private static func check(_ image: RGBImage) throws(StylizeError) {
        guard image.width >= StylizeSettings.minimumImageSide, image.height >= StylizeSettings.minimumImageSide else {
            throw .imageTooSmall(width: image.width, height: image.height)
        }
    }

    // MARK: - Memory

    /// Peak bytes of a whole-image run of `batch` width × height images: `infer`'s three
    /// activation buffers (32 channels, padded by 8) and its padding buffer (deconv2's upsampled
    /// and padded 64-channel input), input and output tensors, the images, and about 80 MB of
    /// model, code and convolution scratch (measured with `--print-peak-memory`).
    public static func wholeImageBytes(width: Int, height: Int, batch: Int = 1) -> Int {
        let padded = (height + 8) * (width + 8)
        let floats = 3 * 32 * padded + 64 * (height + 4) * (width + 4) + 2 * 3 * padded
        return fixedBytes + batch * (4 * floats + imageBytes(width: width, height: height))
    }

    /// The content and the output picture, and the encoded output.
    static func imageBytes(width: Int, height: Int) -> Int { 9 * width * height }

    static let fixedBytes = 80 << 20
}
