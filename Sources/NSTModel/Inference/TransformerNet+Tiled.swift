import Foundation

/// The network on an image of any size in bounded memory: overlapping tiles (`TileLayout`)
/// that share the whole image's instance-norm statistics, so that the result is the
/// whole-image `infer` up to float rounding, seams included.
///
/// Each instance norm needs the mean and variance of its input over the whole image, and that
/// input depends on every earlier norm. So the tiles go through the network in 16 passes, one
/// per norm and a last one: pass k runs every tile up to the input of norm k, normalising the
/// earlier norms with the statistics already gathered, and adds the tile's core to norm k's
/// statistics (`InstanceNormStatistics`, each pixel counted once). Between passes each tile's
/// state is kept in a temporary file (`SpillFile`), two ¼-resolution tensors: the residual
/// block's input and the last convolution's output. The full-resolution layers, whose outputs
/// are 4 to 8 times larger, are recomputed instead (conv1–conv2 in passes 1–3, deconv1–deconv2
/// in the last three), so a tiled run does about 1.5 times the arithmetic of a whole-image one,
/// times the overlap ((tile / core)²), and memory is one tile's.
extension TransformerNet {
    /// The instance norms in forward order: in1, in2, in3, res1.in1, res1.in2, …, res5.in2, in4, in5.
    var normLayers: [InstanceNormLayer] {
        [in1, in2, in3] + res.flatMap { [$0.in1, $0.in2] } + [in4, in5]
    }

    /// Runs the network on `image` tile by tile. In the last pass `emit(y, yd, tile)` receives
    /// each tile's output ([1, 3, 4⌈h/4⌉, 4⌈w/4⌉] for a tile of h × w, overwritten afterwards):
    /// its core, `tile.core(scale: 1, h: yd.h, w: yd.w)`, equals the whole image's output there.
    /// `progress(done, total)` is called after every tile of every pass, in units of work.
    public func inferTiled(_ image: RGBImage, layout: TileLayout, spillDirectory: URL,
                           progress: ((Int, Int) -> Void)? = nil,
                           emit: (UnsafePointer<Float>, Dims4, TileLayout.Tile) -> Void) throws(StylizeError) {
        precondition(layout.width == image.width && layout.height == image.height, "layout for another image size")
        let norms = normLayers
        let (maxH, maxW) = layout.largestTile
        let big = 32 * (maxH + 8) * (maxW + 8)              // the widest activation of a tile, as `infer`
        let a = ctx.grads[0].pointer(big), b = ctx.grads[1].pointer(big), c = ctx.grads[2].pointer(big)
        let pad = ctx.padGrad
        _ = pad.pointer(Self.largestPaddedInput(Dims4(1, 3, maxH, maxW)))
        let spill = try SpillFile(directory: spillDirectory, slotFloats: lowDims(maxH, maxW).count)
        var stats = norms.map { InstanceNormStatistics(channels: $0.weight.shape[0]) }
        var frozen: [(mean: [Float], rstd: [Float])] = []

        func conv(_ l: ConvLayer, _ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, _ d: Dims4) -> Dims4 {
            l.infer(dst, src, d, pad: pad, ctx)
        }
        func norm(_ k: Int, _ p: UnsafeMutablePointer<Float>, _ d: Dims4) {
            let layer = norms[k]
            frozen[k].mean.withUnsafeBufferPointer { m in
                frozen[k].rstd.withUnsafeBufferPointer { r in
                    instanceNormApply(p, p, d, mean: m.baseAddress!, rstd: r.baseAddress!,
                                      layer.weight.value.data, layer.bias.value.data, relu: layer.relu)
                }
            }
        }
        func gather(_ k: Int, _ p: UnsafePointer<Float>, _ d: Dims4, _ tile: TileLayout.Tile) {
            let core = tile.core(scale: Self.normScales[k], h: d.h, w: d.w)
            stats[k].accumulate(p, d, rows: core.rows, cols: core.cols)
        }

        let tileUnits = layout.tiles.map { max(1, $0.rows.count * $0.cols.count / 1024) }
        let total = Self.passCosts.reduce(0, +) * tileUnits.reduce(0, +)
        var done = 0
        for pass in 0...norms.count {
            for (t, tile) in layout.tiles.enumerated() {
                let d0 = Dims4(1, 3, tile.rows.count, tile.cols.count), d3 = lowDims(d0.h, d0.w)
                let slotX = 2 * t, slotH = 2 * t + 1
                switch pass {
                case 0...2:   // from the image: conv1 (→ in1), conv2 (→ in2), conv3 (→ in3, kept)
                    image.writeCHW(to: c, rows: tile.rows, cols: tile.cols)
                    var d = conv(conv1, c, a, d0)
                    if pass == 0 { gather(0, a, d, tile); break }
                    norm(0, a, d); d = conv(conv2, a, b, d)
                    if pass == 1 { gather(1, b, d, tile); break }
                    norm(1, b, d); d = conv(conv3, b, a, d)
                    gather(2, a, d, tile)
                    try spill.write(slot: slotH, from: a, count: d.count)
                case 3...12:  // residual block r: its input (kept), then conv1 (→ r.in1) or conv2 (→ r.in2)
                    let r = (pass - 3) / 2
                    try spill.read(slot: slotH, into: b, count: d3.count)
                    norm(pass - 1, b, d3)
                    if pass % 2 == 1 {   // block input: relu(in3(·)) for the first, x + in2(h) after
                        if r > 0 {
                            try spill.read(slot: slotX, into: a, count: d3.count)
                            for i in 0..<d3.count { b[i] += a[i] }
                        }
                        try spill.write(slot: slotX, from: b, count: d3.count)
                        _ = conv(res[r].conv1, b, c, d3)
                    } else {
                        _ = conv(res[r].conv2, b, c, d3)
                    }
                    gather(pass, c, d3, tile)
                    try spill.write(slot: slotH, from: c, count: d3.count)
                default:      // the last block's output (kept), then deconv1 (→ in4), deconv2 (→ in5), the output
                    try spill.read(slot: slotX, into: a, count: d3.count)
                    if pass == 13 {
                        try spill.read(slot: slotH, into: b, count: d3.count)
                        norm(12, b, d3)
                        for i in 0..<d3.count { a[i] += b[i] }
                        try spill.write(slot: slotX, from: a, count: d3.count)
                    }
                    let d4 = conv(deconv1, a, b, d3)
                    if pass == 13 { gather(13, b, d4, tile); break }
                    norm(13, b, d4)
                    let d5 = conv(deconv2, b, c, d4)
                    if pass == 14 { gather(14, c, d5, tile); break }
                    norm(14, c, d5)
                    let dy = conv(deconv3, c, b, d5)
                    emit(b, dy, tile)
                }
                done += Self.passCosts[pass] * tileUnits[t]
                progress?(done, total)
            }
            if pass < norms.count { frozen.append(stats[pass].normalizers()) }
        }
    }

    /// The resolution of each norm's input (in1 full, in2 ½, in3 and the blocks ¼, in4 ½, in5 full).
    static let normScales = [1, 2] + Array(repeating: 4, count: 11) + [2, 1]

    /// Relative cost of each pass per input pixel (thousands of multiply-adds: conv1 8, conv2 and
    /// conv3 5, a block convolution 9, deconv1 and deconv2 18, deconv3 8), for progress.
    static let passCosts = [8, 13, 18] + Array(repeating: 9, count: 10) + [18, 36, 44]

    /// Dims of conv3's output (the residual blocks' tensors) for an h × w input.
    func lowDims(_ h: Int, _ w: Int) -> Dims4 {
        var d = Dims4(1, 3, h, w)
        for l in [conv1, conv2, conv3] { d = l.spec.output(reflectionPadDims(d, l.spec.k / 2)) }
        return d
    }
}
