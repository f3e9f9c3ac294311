import ArgumentParser
import CoordinatorAPI
import Foundation
import NSTModel

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one TransformerNet on a folder of images (the seed's training, locally).")

    @Option(help: "The style image (JPEG or PNG).") var style: String
    @Option(help: "Folder of training images, searched recursively.") var dataset: String
    @Option(help: "Where to write the trained model (safetensors).") var out: String
    @OptionGroup var vgg: VGGOptions
    @Option(help: "Start from these TransformerNet weights (safetensors or PyTorch .pth) instead of a fresh initialisation.") var `init`: String?
    @Option(name: .customLong("image-size")) var imageSize = 256
    @Option(name: .customLong("style-size")) var styleSize = 256
    @Option(name: .customLong("batch-size")) var batchSize = 4
    @Option var epochs = 1
    @Option(help: "Number of optimiser steps (overrides --epochs; the data is cycled).") var steps: Int?
    @Option(name: .customLong("max-images"), help: "Use only the first N images of the sorted list.") var maxImages: Int?
    @Option(name: .customLong("validation-images"),
            help: "Hold out the last N sorted images and report their losses at each checkpoint and at the end (default 0: none, the seed's data).")
    var validationImages = 0
    @Option var lr = 1e-3
    @Option(name: .customLong("content-weight")) var contentWeight = 1e5
    @Option(name: .customLong("style-weight")) var styleWeight = 1e10
    @Option(name: .customLong("style-ratio"),
            help: "Instead of --style-weight: choose it on the first batch so that the weighted style term is R times the content term (\"style_weight\": \"auto\" in a config).")
    var styleRatio: Double?
    @Option var seed: UInt64 = 42
    @Option(help: "Threads for OpenBLAS and the vector loops (default: all cores).") var threads: Int?
    @Option(name: .customLong("loss-log"), help: "CSV with step,images,content,style,total per step.") var lossLog: String?
    @Option(name: .customLong("checkpoint-every"), help: "Write a checkpoint every N steps (needs --checkpoint-dir).") var checkpointEvery: Int?
    @Option(name: .customLong("checkpoint-dir")) var checkpointDir: String?
    @Option(help: "Resume from a checkpoint written by --checkpoint-every.") var resume: String?

    func validate() throws {
        if (checkpointEvery == nil) != (checkpointDir == nil) {
            throw ValidationError("--checkpoint-every and --checkpoint-dir go together")
        }
        if let n = checkpointEvery, n < 1 { throw ValidationError("--checkpoint-every must be at least 1") }
        if let n = maxImages, n < 1 { throw ValidationError("--max-images must be at least 1") }
        if !JobLimits.validationImages.contains(validationImages) {
            throw ValidationError("--validation-images must be in \(JobLimits.validationImages), got \(validationImages)")
        }
        if let n = threads, n < 1 { throw ValidationError("--threads must be at least 1") }
        if let r = styleRatio, !(r.isFinite && r > 0 && r <= JobLimits.maxStyleRatio) {
            throw ValidationError("--style-ratio must be a number above 0 and at most \(Int(JobLimits.maxStyleRatio)), got \(r)")
        }
    }

    func run() throws {
        Threads.reexecWithShortBLASSpin()
        Threads.configure(threads ?? Threads.available)
        let source = try vgg.resolve()
        if case .random = source { printErr("warning: using a \(source.description)") }
        var options = TrainingOptions()
        options.imageSize = imageSize; options.styleSize = styleSize; options.batchSize = batchSize
        options.epochs = epochs; options.steps = steps; options.maxImages = maxImages
        options.lr = lr; options.contentWeight = contentWeight; options.styleWeight = styleWeight; options.seed = seed
        options.styleRatio = styleRatio

        let session: TrainingSession
        do {
            let all = try ImageFolder(root: URL(fileURLWithPath: dataset), maxImages: validationImages > 0 ? nil : maxImages)
            let split = try HeldOutSplit(all, validationImages: validationImages, maxImages: maxImages)
            let styleImage = try RGBImage(contentsOf: URL(fileURLWithPath: style))
            let initial = try `init`.map { try WeightsFile.read(contentsOf: URL(fileURLWithPath: $0)) }
            session = try TrainingSession(options: options, style: styleImage, dataset: split.training,
                                          validation: split.validation, vgg: source.load(), initial: initial)
            if let resume { try session.resume(from: WeightsFile.read(contentsOf: URL(fileURLWithPath: resume))) }
        } catch let e as CLIError { throw e } catch { throw CLIError(error) }

        let log = try lossLog.map { try LossLog(path: $0, append: resume != nil) }
        printErr("training \(session.totalSteps) steps on \(session.dataset.count) images (batch \(batchSize), \(imageSize)×\(imageSize)), \(Threads.count) threads, VGG16: \(source.description)")
        var progress = ProgressBar(total: session.totalSteps, unit: "img", start: session.state.step)
        var skipped = 0
        var announcedWeight = false
        while !session.isFinished {
            let r: TrainingSession.StepReport
            do { r = try session.runStep() } catch { throw CLIError(error) }
            if !announcedWeight, let ratio = styleRatio {
                announcedWeight = true
                printErr(session.autoStyleWeight.map {
                    String(format: "style weight auto: content %.5g, style %.5g on the first batch: style_weight %.6g (ratio %g)",
                           $0.content, $0.style, $0.weight, ratio)
                } ?? String(format: "style weight auto: %.6g, from the checkpoint", session.styleWeight))
            }
            skipped += r.skipped.count
            for s in r.skipped { printErr("skipped \(s)") }
            if let v = r.loss {
                try log?.append(step: r.step, images: r.images, content: v.content, style: v.style)
                progress.update(step: r.step, items: r.batchImages,
                                detail: String(format: "content %.4g  style %.4g", v.content, v.style))
            }
            if let every = checkpointEvery, let dir = checkpointDir, r.step % every == 0 || session.isFinished {
                let url = URL(fileURLWithPath: dir).appendingPathComponent(String(format: "step-%06d.safetensors", r.step))
                do {
                    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
                    try session.writeCheckpoint(to: url)
                } catch { throw CLIError(error) }
            }
            if session.validation != nil, session.isFinished || (checkpointEvery.map { r.step % $0 == 0 } ?? false) {
                do {
                    if let v = try session.validate() {
                        printErr(String(format: "validation at step %d on %d images: content %.6g, style %.6g (weighted %.6g + %.6g = %.6g)",
                                        r.step, v.images, v.content, v.style, v.contentWeighted, v.styleWeighted, v.total))
                    }
                } catch { throw CLIError(error) }
            }
        }
        progress.finish()
        do { try session.trainer.net.save(to: URL(fileURLWithPath: out)) } catch { throw CLIError(error) }
        printErr("wrote \(out): \(session.state.step) steps, \(session.state.imagesSeen) images, \(skipped) unreadable files skipped")
    }
}

/// The per-step loss CSV: `step,images,content,style,total`, flushed every row.
final class LossLog {
    let handle: FileHandle
    init(path: String, append: Bool) throws {
        let fm = FileManager.default
        if !append || !fm.fileExists(atPath: path) {
            guard fm.createFile(atPath: path, contents: Data("step,images,content,style,total\n".utf8)) else {
                throw CLIError("cannot create loss log \(path)")
            }
        }
        guard let h = FileHandle(forWritingAtPath: path) else { throw CLIError("cannot open loss log \(path)") }
        h.seekToEndOfFile()
        handle = h
    }

    func append(step: Int, images: Int, content: Double, style: Double) throws {
        let row = "\(step),\(images),\(fmt(content)),\(fmt(style)),\(fmt(content + style))\n"
        handle.write(Data(row.utf8))
    }

    private func fmt(_ x: Double) -> String { String(format: "%.8g", x) }
}
