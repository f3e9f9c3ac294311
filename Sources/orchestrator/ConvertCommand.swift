import ArgumentParser
import Foundation
import NSTModel

struct Convert: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Convert a PyTorch .pth state dict (or a safetensors file) to a Float32 safetensors file.",
        discussion: """
            Reads torch.save's zip and legacy formats without Python and without running code from the \
            file. Floating-point tensors (F32, F64, F16, BF16) are written as F32 under their state-dict \
            names; integer tensors such as num_batches_tracked are left out and listed. Not needed for \
            --model, --init or --vgg-weights, which read .pth files directly.
            """)

    @Argument(help: "The file to convert (.pth, .pt or .safetensors; the format is read from the content).")
    var input: String
    @Argument(help: "The safetensors file to write.")
    var output: String

    func run() throws {
        let inURL = URL(fileURLWithPath: input), outURL = URL(fileURLWithPath: output)
        do {
            let format = try WeightsFile.format(of: inURL)
            let weights: SafeTensors
            var notes: [String] = []
            if format == .safetensors {
                weights = try SafeTensors.read(contentsOf: inURL)
            } else {
                let torch = try TorchFile.read(contentsOf: inURL)
                weights = torch.weights
                if let key = torch.wrapper { notes.append("the state dict was read from the checkpoint's \"\(key)\" entry") }
                if !torch.skipped.isEmpty {
                    let list = torch.skipped.map { "\($0.name) (\($0.dtype))" }.joined(separator: ", ")
                    notes.append("left out \(torch.skipped.count) non-floating tensors: \(list)")
                }
            }
            let named = weights.tensors.map { (name: $0.key, tensor: $0.value) }
            try SafeTensors.write(named, to: outURL)
            let floats = named.reduce(0) { $0 + $1.tensor.count }
            let written = (try? FileManager.default.attributesOfItem(atPath: output)[.size] as? Int) ?? 0
            print("converted \(input) (\(format.rawValue)) to \(output): \(named.count) tensors, "
                  + "\(floats) floats (\(floats * MemoryLayout<Float>.size) bytes of F32), file \(written) bytes")
            for note in notes { print("  \(note)") }
        } catch { throw CLIError(error) }
    }
}
