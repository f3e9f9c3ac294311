import ArgumentParser
import Foundation
import NSTModel

struct Stylize: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run trained TransformerNets on an image or a folder of images.",
        discussion: """
            Examples:
              orchestrator stylize --model m.safetensors --content photo.jpg --output out.jpg
              orchestrator stylize --model m.safetensors --content photos/ --output out/
              orchestrator stylize --models models/ --content photos/ --output out/ \\
                  --grid sheet.png

            A content folder is searched recursively; the outputs mirror its names, and
            unreadable files are skipped and counted. With several models --output is a
            folder with one subfolder per model. Images of one size run in batches
            (--batch-size) when they fit in --max-memory; larger images are tiled.
            """)

    @OptionGroup var modelOptions: ModelOptions
    @Option(help: "Content image (JPEG or PNG), or a folder of them (searched recursively).") var content: String
    @Option(help: "Output image (.png or .jpg); a folder for a content folder or several models.") var output: String
    @Option(help: "Also write a contact sheet (PNG): each content image, then its stylisation by each model.") var grid: String?
    @Option(name: .customLong("batch-size"), help: "Images of one size stylised together, at most.") var batchSize = 4
    @Option(name: .customLong("content-scale"), help: "Shrink the content image by this factor first.") var contentScale: Double?
    @Option(name: .customLong("raw-output"),
            help: "Also write the network's input and raw output (before clamping) as safetensors tensors `input` and `output`, [1, 3, H, W] (one model, one image, untiled).")
    var rawOutput: String?
    @OptionGroup var options: StylizeOptions

    func validate() throws {
        if let s = contentScale, !(s >= 1) { throw ValidationError("--content-scale must be at least 1") }
        if !(1...StylizeSettings.largestBatch).contains(batchSize) {
            throw ValidationError("--batch-size must be between 1 and \(StylizeSettings.largestBatch)")
        }
        if rawOutput != nil, options.tile != nil { throw ValidationError("--raw-output needs the whole image: leave out --tile") }
        if let grid, URL(fileURLWithPath: grid).pathExtension.lowercased() != "png" { throw ValidationError("--grid must name a .png file") }
    }

    func run() throws {
        options.startThreads()
        do {
            let models = try modelOptions.resolve()
            let inputs = try StylizeInputs(content: URL(fileURLWithPath: content))
            if rawOutput != nil, models.count > 1 || inputs.isFolder {
                throw CLIError("--raw-output needs one model and one content image")
            }
            var settings = options.settings
            if rawOutput != nil { settings.tiling = .whole }
            var run = StylizeRun(models: models, inputs: inputs, output: URL(fileURLWithPath: output), settings: settings,
                                 batchSize: batchSize, contentScale: contentScale, grid: grid.map { URL(fileURLWithPath: $0) },
                                 rawOutput: rawOutput.map { URL(fileURLWithPath: $0) })
            try run.run()
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(error)
        }
        options.reportPeakMemory()
    }
}

/// The content images: one file, or every JPEG/PNG under a folder (as `ImageFolder` lists them),
/// each with its path relative to the folder.
struct StylizeInputs {
    let isFolder: Bool
    let files: [(url: URL, relative: String)]

    init(content: URL) throws {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: content.path, isDirectory: &isDir) else {
            throw CLIError("\(content.path): no such file or folder")
        }
        isFolder = isDir.boolValue
        if isFolder {
            let folder = try ImageFolder(root: content)
            let root = content.standardizedFileURL.path
            let prefix = root.hasSuffix("/") ? root : root + "/"
            files = folder.files.map { url in
                let path = url.standardizedFileURL.path
                return (url, path.hasPrefix(prefix) ? String(path.dropFirst(prefix.count)) : url.lastPathComponent)
            }
            guard !files.isEmpty else { throw CLIError("\(content.path): no .jpg, .jpeg or .png files") }
        } else {
            files = [(content, content.lastPathComponent)]
        }
    }
}

struct MakeDataset: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "make-dataset",
        abstract: "Write a small set of synthetic content images (for demos and tests).")

    @Option var out: String
    @Option var count = 16
    @Option var size = 64
    @Option var seed: UInt64 = 7

    func run() throws {
        guard count >= 1, size >= 8 else { throw CLIError("--count must be at least 1 and --size at least 8") }
        do {
            let files = try SyntheticImages.writeDataset(to: URL(fileURLWithPath: out), count: count, size: size, seed: seed)
            printErr("wrote \(files.count) images of \(size)×\(size) to \(out)")
        } catch { throw CLIError(error) }
    }
}
