import Foundation
import NSTModel

/// `orchestrator stylize`'s work: every model (one at a time, each loaded once) over every
/// content image, images of one size batched, outputs written where `outputURL` says, unreadable
/// images skipped and counted, and the contact sheet at the end.
struct StylizeRun {
    let models: [(name: String, url: URL)]
    let inputs: StylizeInputs
    let output: URL
    let settings: StylizeSettings
    let batchSize: Int
    let contentScale: Double?
    let grid: URL?
    let rawOutput: URL?

    /// At most this many content images (rows) on the contact sheet.
    static let gridRows = 32
    static let gridTile = 256

    private var skipped: [Int: String] = [:]
    private var written = 0
    /// Contact-sheet thumbnails per content image: the content, then one per model.
    private var thumbnails: [Int: [RGBImage?]] = [:]
    private var progress: ProgressBar?

    init(models: [(name: String, url: URL)], inputs: StylizeInputs, output: URL, settings: StylizeSettings,
         batchSize: Int, contentScale: Double?, grid: URL?, rawOutput: URL?) {
        self.models = models; self.inputs = inputs; self.output = output; self.settings = settings
        self.batchSize = batchSize; self.contentScale = contentScale; self.grid = grid; self.rawOutput = rawOutput
    }

    /// Where the stylisation of content `index` by model `model` goes: the output file (one
    /// model, one image), OUT/relative path (one model, a folder), OUT/model/relative path
    /// (several models).
    func outputURL(model: Int, index: Int) -> URL {
        let relative = inputs.files[index].relative
        if models.count == 1 { return inputs.isFolder ? output.appendingPathComponent(relative) : output }
        return output.appendingPathComponent(models[model].name).appendingPathComponent(relative)
    }

    var isSingle: Bool { models.count == 1 && !inputs.isFolder }

    mutating func run() throws {
        if !isSingle {
            var isDir: ObjCBool = false
            if FileManager.default.fileExists(atPath: output.path, isDirectory: &isDir), !isDir.boolValue {
                throw CLIError("\(output.path) is a file; with a content folder or several models --output is a folder")
            }
            progress = ProgressBar(total: models.count * inputs.files.count, unit: "images")
        }
        for (m, model) in models.enumerated() {
            let net = try TransformerNet(contentsOf: model.url)
            let stylizer = try Stylizer(net: net, settings: settings)
            try stylizeAll(with: stylizer, model: m)
        }
        progress?.finish()
        if !skipped.isEmpty {
            for (index, reason) in skipped.sorted(by: { $0.key < $1.key }).prefix(5) {
                printErr("skipped \(inputs.files[index].url.path): \(reason)")
            }
            printErr("\(skipped.count) unreadable file\(skipped.count == 1 ? "" : "s") skipped")
        }
        guard written > 0 else { throw CLIError("no image could be read from \(inputs.files.first.map { $0.url.path } ?? "")") }
        if let grid { try writeGrid(to: grid) }
        if isSingle { return }
        printErr("wrote \(written) image\(written == 1 ? "" : "s") to \(output.path)")
    }

    // MARK: - One model

    private mutating func stylizeAll(with stylizer: Stylizer, model m: Int) throws {
        var pending: [String: [(index: Int, image: RGBImage)]] = [:]
        var pendingCount = 0
        for index in inputs.files.indices where skipped[index] == nil {
            let image: RGBImage
            do {
                image = try load(index)
            } catch let error as ImageError where !isSingle {
                skipped[index] = error.description
                let step = progressStep
                progress?.update(step: step, items: 0, detail: "skipped")
                continue
            }
            if m == 0, index < Self.gridRows, grid != nil {
                thumbnails[index] = [thumbnail(image)] + Array(repeating: nil, count: models.count)
            }
            let capacity = stylizer.batchCapacity(width: image.width, height: image.height, limit: batchSize)
            if capacity <= 1 {
                try finish([(index, image)], with: stylizer, model: m)
                continue
            }
            let key = "\(image.width)x\(image.height)"
            pending[key, default: []].append((index, image))
            pendingCount += 1
            if pending[key]!.count >= capacity {
                try finish(pending.removeValue(forKey: key)!, with: stylizer, model: m)
                pendingCount -= capacity
            } else if pendingCount > 4 * batchSize, let fullest = pending.max(by: { $0.value.count < $1.value.count }) {
                // Many sizes at once: run the largest group now rather than hold them all.
                pendingCount -= fullest.value.count
                try finish(pending.removeValue(forKey: fullest.key)!, with: stylizer, model: m)
            }
        }
        for key in pending.keys.sorted() { try finish(pending[key]!, with: stylizer, model: m) }
    }

    private func load(_ index: Int) throws -> RGBImage {
        var image = try RGBImage(contentsOf: inputs.files[index].url)
        if let s = contentScale, s > 1 {
            image = image.resized(width: max(8, Int(Double(image.width) / s)), height: max(8, Int(Double(image.height) / s)))
        }
        return image
    }

    /// Stylises a batch of one size (or one image, tiled if need be) and writes the results.
    private mutating func finish(_ batch: [(index: Int, image: RGBImage)], with stylizer: Stylizer, model m: Int) throws {
        let outputs: [RGBImage]
        if batch.count == 1 {
            let image = batch[0].image
            var bar: ProgressBar?, detail = ""
            if isSingle, case let .tiled(layout) = stylizer.plan(width: image.width, height: image.height) {
                bar = ProgressBar(total: 100, unit: "%", showsRate: false)
                detail = "\(layout.tiles.count) tiles of at most \(layout.tileSize)×\(layout.tileSize)"
            }
            outputs = [try stylizer.stylize(image) { done, total in
                bar?.update(step: done * 100 / max(total, 1), items: 0, detail: detail)
            }]
            bar?.finish()
        } else {
            outputs = try stylizer.stylize(batch: batch.map(\.image))
        }
        if let rawOutput { try writeRaw(batch[0].image, net: stylizer.net, to: rawOutput) }
        for ((index, _), out) in zip(batch, outputs) {
            let url = outputURL(model: m, index: index)
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try out.write(to: url)
            written += 1
            if thumbnails[index] != nil {
                let small = thumbnail(out)
                thumbnails[index]![m + 1] = small
            }
            if isSingle { printErr("wrote \(url.path) (\(out.width)×\(out.height))") }
            let step = progressStep
            progress?.update(step: step, items: 1, detail: models[m].name)
        }
    }

    private var progressStep: Int { written + skipped.count * models.count }

    /// The network's input and raw output of the whole image as safetensors.
    private func writeRaw(_ image: RGBImage, net: TransformerNet, to url: URL) throws {
        let x = Tensor(shape: [1, 3, image.height, image.width])
        image.writeCHW(to: x.data)
        let y = net.infer(x)
        try SafeTensors.write([("input", x), ("output", y)], to: url)
    }

    // MARK: - Contact sheet

    private func thumbnail(_ image: RGBImage) -> RGBImage {
        image.resized(width: Self.gridTile, height: Self.gridTile)
    }

    private func writeGrid(to url: URL) throws {
        var tiles: [(label: String, image: RGBImage)] = []
        for index in thumbnails.keys.sorted() {
            guard let row = thumbnails[index], let content = row[0] else { continue }
            let name = URL(fileURLWithPath: inputs.files[index].relative).deletingPathExtension().lastPathComponent
            tiles.append((name, content))
            for (m, model) in models.enumerated() { tiles.append((model.name, row[m + 1] ?? content)) }
        }
        let sheet = ContactSheet.make(tiles, tileSize: Self.gridTile, columns: models.count + 1)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try sheet.write(to: url)
        let rows = tiles.count / (models.count + 1)
        let more = inputs.files.count - skipped.count > Self.gridRows ? " (the first \(Self.gridRows) images)" : ""
        printErr("wrote \(url.path): \(rows) row\(rows == 1 ? "" : "s") × \(models.count + 1) columns, \(sheet.width)×\(sheet.height)\(more)")
    }
}
