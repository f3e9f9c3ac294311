import ArgumentParser
import Foundation
import NSTModel

struct Stylize: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run a trained TransformerNet on one image.")

    @Option(help: "Trained model: safetensors, or a PyTorch .pth state dict (PyTorch names).") var model: String
    @Option(help: "Content image (JPEG or PNG).") var content: String
    @Option(help: "Output image (.png or .jpg).") var output: String
    @Option(name: .customLong("content-scale"), help: "Shrink the content image by this factor first.") var contentScale: Double?
    @Option(name: .customLong("raw-output"),
            help: "Also write the network's input and raw output (before clamping) as safetensors tensors `input` and `output`, [1, 3, H, W].")
    var rawOutput: String?
    @Option var threads: Int?

    func validate() throws {
        if let s = contentScale, !(s >= 1) { throw ValidationError("--content-scale must be at least 1") }
    }

    func run() throws {
        Threads.reexecWithShortBLASSpin()
        Threads.configure(threads ?? Threads.available)
        do {
            let net = try TransformerNet(contentsOf: URL(fileURLWithPath: model))
            var image = try RGBImage(contentsOf: URL(fileURLWithPath: content))
            if let s = contentScale, s > 1 {
                image = image.resized(width: max(8, Int(Double(image.width) / s)), height: max(8, Int(Double(image.height) / s)))
            }
            let x = Tensor(shape: [1, 3, image.height, image.width])
            image.writeCHW(to: x.data)
            let y = net.infer(x)
            let out = RGBImage(chw: y.data, width: y[dim: 3], height: y[dim: 2])
            try out.write(to: URL(fileURLWithPath: output))
            if let rawOutput {
                try SafeTensors.write([("input", x), ("output", y)], to: URL(fileURLWithPath: rawOutput))
            }
            printErr("wrote \(output) (\(out.width)×\(out.height))")
        } catch { throw CLIError(error) }
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
