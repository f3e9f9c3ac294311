import ArgumentParser
import Foundation
import NSTModel

/// `orchestrator export`: a trained TransformerNet as an ONNX model (see `TransformerNet.onnxModel`).
struct Export: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a trained TransformerNet as an ONNX model (opset \(TransformerNet.onnxOpsetVersion)).",
        discussion: """
            The graph takes `input`, float32 [N, 3, H, W] RGB in [0, 255] (N, H, W dynamic), and gives \
            `output`, [N, 3, 4⌈H/4⌉, 4⌈W/4⌉], clamped to [0, 255] as `stylize` does (--no-clip: the raw \
            network output).
            """)

    @Option(help: "Trained model (safetensors, PyTorch names; a training checkpoint also works).") var model: String
    @Option(help: "The ONNX file to write.") var onnx: String
    @Flag(name: .customLong("no-clip"), help: "Leave out the final Clip(0, 255): output the raw network output.")
    var noClip = false

    func run() throws {
        do {
            let modelURL = URL(fileURLWithPath: model)
            let net = try TransformerNet(contentsOf: modelURL)
            try net.exportONNX(to: URL(fileURLWithPath: onnx), clipOutput: !noClip, source: modelURL.lastPathComponent)
            let bytes = (try? FileManager.default.attributesOfItem(atPath: onnx)[.size] as? Int) ?? 0
            printErr("wrote \(onnx) (ONNX opset \(TransformerNet.onnxOpsetVersion), \(bytes) bytes\(noClip ? ", no Clip" : ""))")
        } catch { throw CLIError(error) }
    }
}
