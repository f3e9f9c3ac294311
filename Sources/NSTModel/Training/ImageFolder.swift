import Foundation

/// A folder of training images, listed like the PyTorch reference does: `os.walk(root)` over
/// every file (hidden files and folders included, symlinked folders listed but not entered),
/// keeping names ending in `.jpg`, `.jpeg`, `.png` in any case, then `sorted()` on the full path
/// strings (code-point order, which is byte-wise UTF-8 order) and cut to `maxImages`.
public struct ImageFolder: TrainingImages, Sendable {
    public let root: URL
    public let files: [URL]

    static let extensions = [".jpg", ".jpeg", ".png"]

    /// `name.lower().endswith((".jpg", ".jpeg", ".png"))`, as torchvision's ImageFolder filters.
    static func isImageName(_ name: String) -> Bool {
        let lower = name.lowercased()
        return extensions.contains { lower.hasSuffix($0) }
    }

    /// Lists the images under `root`. A missing root or one that is not a directory is an error;
    /// unreadable subfolders are skipped, as `os.walk` skips them.
    public init(root: URL, maxImages: Int? = nil) throws(ImageError) {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: root.path, isDirectory: &isDir) else {
            throw .missingDirectory(path: root.path)
        }
        guard isDir.boolValue else { throw .notADirectory(path: root.path) }
        var paths: [String] = []
        Self.walk(root.path, into: &paths)
        paths.sort { $0.utf8.lexicographicallyPrecedes($1.utf8) }
        if let maxImages { paths = Array(paths.prefix(max(maxImages, 0))) }
        self.root = root
        self.files = paths.map { URL(fileURLWithPath: $0) }
    }

    private static func walk(_ dir: String, into paths: inout [String]) {
        let fm = FileManager.default
        guard let names = try? fm.contentsOfDirectory(atPath: dir) else { return }
        for name in names {
            let path = dir.hasSuffix("/") ? dir + name : dir + "/" + name
            var isDir: ObjCBool = false
            let exists = fm.fileExists(atPath: path, isDirectory: &isDir)  // follows symlinks
            if exists && isDir.boolValue {
                let isLink = (try? fm.destinationOfSymbolicLink(atPath: path)) != nil
                if !isLink { walk(path, into: &paths) }
            } else if isImageName(name) {
                paths.append(path)  // includes broken symlinks, as os.walk does; loading skips them
            }
        }
    }

    // MARK: - Loading

    public var count: Int { files.count }

    /// The folder's path.
    public var description: String { root.path }

    /// Loads `files[start ..< min(start + count, files.count)]` (see `TrainingImages.loadBatch`).
    /// Files that cannot be read or decoded are skipped, never fatal, and returned with the reason.
    public func loadBatch(start: Int, count: Int, size: Int, into: Tensor)
        -> (loaded: Int, skipped: [(path: String, reason: String)])
    {
        checkBatchArguments(start: start, count: count, size: size, into: into)
        let end = min(start + count, files.count)
        guard start < end else { return (0, []) }
        var loaded = 0
        var skipped: [(path: String, reason: String)] = []
        for url in files[start..<end] {
            do {
                try RGBImage(contentsOf: url).writeTrainingRow(loaded, size: size, of: into)
                loaded += 1
            } catch {
                skipped.append((path: url.path, reason: error.description))
            }
        }
        return (loaded, skipped)
    }

    public func image(at index: Int) throws -> RGBImage {
        precondition(files.indices.contains(index), "image \(index) of \(files.count)")
        return try RGBImage(contentsOf: files[index])
    }
}
