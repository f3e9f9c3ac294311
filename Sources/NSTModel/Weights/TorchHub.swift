import Foundation

/// torch.hub's checkpoint cache, where torchvision keeps downloaded weights, and torchvision's
/// rule for the hash prefix in a weights file's name.
public enum TorchHub {
    /// torchvision's ImageNet VGG16 (`torchvision.models.VGG16_Weights.IMAGENET1K_V1`).
    public static let vgg16FileName = "vgg16-397923af.pth"
    public static let vgg16URL = "https://download.pytorch.org/models/vgg16-397923af.pth"

    /// `torch.hub.get_dir() + "/checkpoints"`: `$TORCH_HOME/hub/checkpoints`, else
    /// `$XDG_CACHE_HOME/torch/hub/checkpoints`, else `~/.cache/torch/hub/checkpoints`, with a
    /// leading `~` expanded as `os.path.expanduser` does. Empty variables count as unset; nil when
    /// the home directory is needed and `HOME` is not set (no guess is made).
    public static func checkpointsDirectory(environment: [String: String] = ProcessInfo.processInfo.environment) -> URL? {
        func value(_ key: String) -> String? { environment[key].flatMap { $0.isEmpty ? nil : $0 } }
        let home = value("HOME")
        func expand(_ path: String) -> String? {
            guard path == "~" || path.hasPrefix("~/") else { return path }
            guard let home else { return nil }
            return home + path.dropFirst()
        }
        let torchHome: String?
        if let t = value("TORCH_HOME") {
            torchHome = expand(t)
        } else {
            torchHome = expand((value("XDG_CACHE_HOME") ?? "~/.cache") + "/torch")
        }
        return torchHome.map { URL(fileURLWithPath: $0).appendingPathComponent("hub").appendingPathComponent("checkpoints") }
    }

    /// The hash prefix torch.hub reads from a file name: the first `-HEX.` (`HASH_REGEX =
    /// r'-([a-f0-9]*)\.'`), e.g. `397923af` in `vgg16-397923af.pth`; nil when there is none or
    /// it is empty (torch would then check nothing; we ask for one instead).
    public static func hashPrefix(inFileName name: String) -> String? {
        let chars = Array(name.utf8)
        for i in chars.indices where chars[i] == UInt8(ascii: "-") {
            var j = i + 1
            while j < chars.count, isLowerHex(chars[j]) { j += 1 }
            if j < chars.count, chars[j] == UInt8(ascii: ".") {  // the regex's first match
                return j > i + 1 ? String(decoding: chars[(i + 1)..<j], as: UTF8.self) : nil
            }
        }
        return nil
    }

    static func isLowerHex(_ c: UInt8) -> Bool {
        (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(c) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(c)
    }
}
