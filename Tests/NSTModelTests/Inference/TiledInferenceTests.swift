import Foundation
import NSTModel
import XCTest

/// Tiles that share the whole image's instance-norm statistics give the whole image's output,
/// seams included; tiles normalised on their own do not.
final class TiledInferenceTests: XCTestCase {
    override func setUp() { Threads.configure(2) }

    // MARK: - Layout

    func testLayoutCoresPartitionTheImageAndSpansStayWithinTheTileSize() {
        for (length, size) in [(1000, 192), (193, 192), (4000, 1024), (301, 192), (5000, 2048), (192, 192), (50, 192)] {
            let layout = TileLayout(width: length, height: 7, tileSize: size)
            let cols = layout.tiles.map { ($0.cols, $0.coreCols) }
            XCTAssertEqual(cols.first?.1.lowerBound, 0)
            XCTAssertEqual(cols.last?.1.upperBound, length)
            for (i, (span, core)) in cols.enumerated() {
                XCTAssertLessThanOrEqual(span.count, size, "\(length) in \(size): tile \(i)")
                XCTAssertEqual(span.lowerBound % 4, 0, "tiles start on multiples of 4")
                XCTAssertFalse(core.isEmpty)
                if i > 0 {
                    XCTAssertEqual(core.lowerBound, cols[i - 1].1.upperBound, "cores partition the axis")
                    XCTAssertEqual(core.lowerBound - span.lowerBound, TileLayout.margin, "a margin on inner sides")
                }
                if i < cols.count - 1 { XCTAssertEqual(span.upperBound - core.upperBound, TileLayout.margin) }
            }
            XCTAssertEqual(cols.count == 1, length <= size)
        }
    }

    // MARK: - Statistics

    /// Statistics gathered over four regions and applied equal what instance norm computes on
    /// the whole plane.
    func testStatisticsOverRegionsMatchTheWholePlane() {
        let xd = Dims4(1, 5, 37, 29)
        let x = Tensor(shape: xd.shape)
        var rng = SplitMix64(seed: 3)
        for i in 0..<x.count { x.data[i] = Float(rng.unit() * 40 - 5) + Float(i % 5) * 30 }
        let gamma = Tensor(shape: [5]), beta = Tensor(shape: [5])
        for c in 0..<5 { gamma.data[c] = 0.5 + Float(c); beta.data[c] = Float(c) - 2 }
        let reference = Tensor(shape: xd.shape), cache = InstanceNormCache()
        instanceNormForward(reference.data, x.data, xd, gamma.data, beta.data, relu: true, cache: cache)

        var stats = InstanceNormStatistics(channels: 5)
        for (rows, cols) in [(0..<20, 0..<13), (0..<20, 13..<29), (20..<37, 0..<1), (20..<37, 1..<29)] {
            stats.accumulate(x.data, xd, rows: rows, cols: cols)
        }
        XCTAssertEqual(stats.count, 37 * 29)
        let (mean, rstd) = stats.normalizers()
        for c in 0..<5 {
            XCTAssertEqual(mean[c], cache.mean[c], accuracy: 1e-5 * abs(cache.mean[c]))
            XCTAssertEqual(rstd[c], cache.rstd[c], accuracy: 1e-5 * cache.rstd[c])
        }
        let y = Tensor(shape: xd.shape)
        instanceNormApply(y.data, x.data, xd, mean: mean, rstd: rstd, gamma.data, beta.data, relu: true)
        XCTAssertLessThan(relativeL2Error(y, reference), 1e-6)
    }

    // MARK: - Tiled = whole

    /// 301 × 263 (neither a multiple of 4) in 192-pixel tiles: 3 × 3 tiles, every kind of seam
    /// and both odd borders. The tiled floats equal the whole image's everywhere within float
    /// rounding; a tile run on its own (its own statistics) is far off.
    func testTiledOutputEqualsTheWholeImage() throws {
        let net = TransformerNet.visible(seed: 11)
        let image = SyntheticImages.contentImage(index: 2, width: 301, height: 263, seed: 5)
        let whole = InferenceSupport.wholeOutput(net, image)
        let wd = whole.dims4
        XCTAssertEqual([wd.h, wd.w], [264, 304])

        let layout = TileLayout(width: 301, height: 263, tileSize: 192)
        XCTAssertEqual(layout.tiles.count, 9)
        let tiled = Tensor(shape: wd.shape)
        tiled.fill(.nan)
        var lastProgress = (0, 0)
        try net.inferTiled(image, layout: layout, spillDirectory: FileManager.default.temporaryDirectory,
                           progress: { lastProgress = ($0, $1) }) { y, yd, tile in
            let core = tile.core(scale: 1, h: yd.h, w: yd.w)
            for c in 0..<3 {
                for r in core.rows {
                    for j in core.cols {
                        tiled.data[(c * wd.h + tile.rows.lowerBound + r) * wd.w + tile.cols.lowerBound + j] = y[(c * yd.h + r) * yd.w + j]
                    }
                }
            }
        }
        XCTAssertEqual(lastProgress.0, lastProgress.1, "progress reaches its total")
        var largest: Float = 0, spread: Float = 0
        for i in 0..<whole.count {
            XCTAssertFalse(tiled.data[i].isNaN, "every output pixel is written once: \(i)")
            largest = max(largest, abs(tiled.data[i] - whole.data[i]))
            spread = max(spread, abs(whole.data[i] - 128))
        }
        XCTAssertGreaterThan(spread, 60, "the output is not flat")
        XCTAssertLessThan(largest, 0.01, "tiled vs whole, of 0…255 (a margin of 52 < 55 gives 0.023 here)")

        // The same core from a tile normalised by its own statistics.
        let tile = layout.tiles[4]
        let crop = RGBImage(width: tile.cols.count, height: tile.rows.count, pixels: (tile.rows).flatMap { r in
            image.pixels[(r * 301 + tile.cols.lowerBound) * 3 ..< (r * 301 + tile.cols.upperBound) * 3]
        })
        let alone = InferenceSupport.wholeOutput(net, crop), ad = alone.dims4
        var naive: Float = 0
        let core = tile.core(scale: 1, h: ad.h, w: ad.w)
        for c in 0..<3 {
            for r in core.rows {
                for j in core.cols {
                    let w = whole.data[(c * wd.h + tile.rows.lowerBound + r) * wd.w + tile.cols.lowerBound + j]
                    naive = max(naive, abs(alone.data[(c * ad.h + r) * ad.w + j] - w))
                }
            }
        }
        XCTAssertGreaterThan(naive, 100 * max(largest, 0.01), "a tile with its own statistics differs (\(naive) vs \(largest))")
    }

    /// The same through `Stylizer`: bytes of a tiled run and a whole one, with colour
    /// preservation and strength, differ by at most 1 on a few float-rounding ties.
    func testStylizerTiledBytesMatchWhole() throws {
        let net = TransformerNet.visible(seed: 12)
        let image = SyntheticImages.contentImage(index: 1, width: 420, height: 200, seed: 8)
        for mix in [OutputMix(), OutputMix(strength: 0.7, preserveColor: true)] {
            var tiledSettings = StylizeSettings(tiling: .tiles(256)), wholeSettings = StylizeSettings(tiling: .whole)
            tiledSettings.mix = mix; wholeSettings.mix = mix
            let tiledStylizer = try Stylizer(net: net, settings: tiledSettings)
            guard case let .tiled(layout) = tiledStylizer.plan(width: 420, height: 200) else { return XCTFail("not tiled") }
            XCTAssertEqual(layout.tiles.count, 3)
            let tiled = try tiledStylizer.stylize(image)
            let whole = try Stylizer(net: net, settings: wholeSettings).stylize(image)
            XCTAssertEqual([tiled.width, tiled.height], [420, 200])
            let d = InferenceSupport.byteDifference(tiled, whole)
            XCTAssertLessThanOrEqual(d.largest, 1, "\(mix)")
            XCTAssertLessThan(d.fraction, 1e-3, "\(mix)")
        }
    }

    /// `.automatic` runs whole what fits in the budget and tiles the rest with the largest tile
    /// that fits; a batch of equal images gives each one's own result.
    func testAutomaticPlanAndBatches() throws {
        let net = TransformerNet.visible(seed: 13)
        let budget = 1 << 30
        let small = try Stylizer(net: net, settings: StylizeSettings(maxMemoryBytes: budget))
        XCTAssertEqual(small.plan(width: 300, height: 200), .whole)
        guard case let .tiled(layout) = small.plan(width: 6000, height: 4000) else { return XCTFail("not tiled") }
        XCTAssertLessThanOrEqual(Stylizer.wholeImageBytes(width: layout.tileSize, height: layout.tileSize) + 9 * 6000 * 4000, budget)
        XCTAssertGreaterThan(Stylizer.wholeImageBytes(width: layout.tileSize + 64, height: layout.tileSize + 64) + 9 * 6000 * 4000, budget)
        XCTAssertGreaterThan(small.batchCapacity(width: 64, height: 64, limit: 8), 1)
        XCTAssertEqual(small.batchCapacity(width: 6000, height: 4000, limit: 8), 0)

        let images = (0..<3).map { SyntheticImages.contentImage(index: $0, width: 40, height: 36, seed: 2) }
        let batch = try small.stylize(batch: images)
        for (i, image) in images.enumerated() {
            let alone = try small.stylize(image)
            // Equal up to float rounding (the convolutions split a batch into other bands).
            let d = InferenceSupport.byteDifference(batch[i], alone)
            XCTAssertLessThanOrEqual(d.largest, 1, "image \(i)")
            XCTAssertLessThan(d.fraction, 1e-3, "image \(i)")
        }
        XCTAssertThrowsError(try small.stylize(batch: [images[0], SyntheticImages.contentImage(index: 0, width: 36, height: 40)]))
        XCTAssertThrowsError(try small.stylize(RGBImage(width: 4, height: 30, pixels: [UInt8](repeating: 9, count: 360)))) {
            XCTAssertEqual($0 as? StylizeError, .imageTooSmall(width: 4, height: 30))
        }
    }

    func testSettingsAreCheckedWhereTheyEnter() {
        let net = TransformerNet(seed: 1)
        XCTAssertThrowsError(try Stylizer(net: net, settings: StylizeSettings(strength: 1.5)))
        XCTAssertThrowsError(try Stylizer(net: net, settings: StylizeSettings(strength: .nan)))
        XCTAssertThrowsError(try Stylizer(net: net, settings: StylizeSettings(tiling: .tiles(100)))) {
            XCTAssertEqual($0 as? StylizeError, .tileSizeOutOfRange(100))
        }
        XCTAssertThrowsError(try Stylizer(net: net, settings: StylizeSettings(maxMemoryBytes: 1000)))
        XCTAssertNoThrow(try Stylizer(net: net, settings: StylizeSettings(strength: 0, tiling: .tiles(192))))
    }
}
