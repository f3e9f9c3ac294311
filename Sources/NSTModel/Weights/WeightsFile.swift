import Foundation

/// The one entry point for weights files: `--model`, `--init`, `--vgg-weights`, `NST_VGG16_WEIGHTS` and
/// the worker all read through `WeightsFile.read`, so a PyTorch `.pth` state dict works wherever a
/// safetensors file does. The format is told by content, never by the file name.
public enum WeightsFile {
    public enum Format: String, Sendable {
        case safetensors
        /// torch.save's zip archive (PyTorch ≥ 1.6): starts with a zip local header "PK\u{3}\u{4}".
        case torchZip = "PyTorch zip"
        /// torch.save's older stream: starts with a pickle PROTO opcode (0x80).
        case torchLegacy = "PyTorch legacy"
    }

    /// What `data` holds, judged from its first bytes. A safetensors file has its JSON header's "{" at
    /// byte 8, after the 8-byte header length (whose first bytes may happen to be "PK" or 0x80); a zip
    /// local header or a pickle never has "{" there.
    public static func format(of data: Data) -> Format {
        let head = Array(data.prefix(9))
        if head.count == 9, head[8] == UInt8(ascii: "{") { return .safetensors }
        if head.starts(with: [0x50, 0x4B, 0x03, 0x04]) { return .torchZip }
        if head.first == 0x80 { return .torchLegacy }
        return .safetensors
    }

    /// The format of the file at `url` (`.unreadable` if it cannot be opened).
    public static func format(of url: URL) throws(WeightsError) -> Format {
        format(of: try SafeTensors.mappedContents(of: url))
    }

    /// Reads a safetensors or PyTorch file as Float32 tensors. For a `.pth`, integer tensors
    /// (`num_batches_tracked`) are left out; see `TorchFile` for what else is accepted. With `keys`,
    /// the result holds only tensors of those names (a `.pth` then reads only their storages).
    public static func read(contentsOf url: URL, keys: Set<String>? = nil) throws(WeightsError) -> SafeTensors {
        let data = try SafeTensors.mappedContents(of: url)
        switch format(of: data) {
        case .safetensors:
            var weights = try SafeTensors.read(data: data, file: url.path)
            if let keys { weights.tensors = weights.tensors.filter { keys.contains($0.key) } }
            return weights
        case .torchZip: return try TorchFile.readZip(url: url, file: url.path, keys: keys).weights
        case .torchLegacy: return try TorchFile.readLegacy(data: data, file: url.path, keys: keys).weights
        }
    }
}
