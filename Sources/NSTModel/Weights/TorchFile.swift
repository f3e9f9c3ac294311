import Foundation

/// A PyTorch state dict written by `torch.save(model.state_dict(), path)`, read as Float32 tensors
/// without Python and without running any code from the file.
///
/// Two containers exist: the zip archive torch.save has written since 1.6 (`TorchFile+Zip.swift`:
/// `<archive>/data.pkl` plus one `<archive>/data/<key>` record per storage) and the older
/// `_use_new_zipfile_serialization=False` stream (`TorchFile+Legacy.swift`). Both pickle the state
/// dict the same way, read by the restricted `Unpickler`: each tensor is a view (offset, size, stride)
/// of a typed storage. F32, F64, F16 and BF16 tensors are copied out contiguous as Float32; integer
/// and bool tensors (an int64 `num_batches_tracked`) are listed in `skipped`. A training checkpoint
/// that wraps the state dict in `{"state_dict": …}` or `{"model": …}` is read one level down.
public struct TorchFile {
    public enum Format: String, Sendable {
        case zip = "PyTorch zip"
        case legacy = "PyTorch legacy (pre-1.6)"
    }

    public var format: Format
    /// The floating-point tensors under their state-dict names, in the type every loader takes.
    public var weights: SafeTensors
    /// Tensors a Float32 file cannot hold (int64, bool…), sorted by name.
    public var skipped: [SkippedTensor]
    /// The key the state dict was found under ("state_dict", "model"), or nil when it is the file's object.
    public var wrapper: String?

    /// Keys under which training checkpoints commonly keep the state dict.
    static let wrapperKeys = ["state_dict", "model"]
    /// The largest `data.pkl` (or legacy pickle) we read; real state dicts need kilobytes.
    static let maxPickleBytes = 100_000_000

    /// Reads a `.pth` file in either format (told apart by content, not by name). With `keys`, only
    /// the tensors of those names are read (and checked); the storages of the others are never touched,
    /// so taking VGG16's 7.6 M features from torchvision's file skips its 120 M classifier weights.
    public static func read(contentsOf url: URL, keys: Set<String>? = nil) throws(WeightsError) -> TorchFile {
        let data = try SafeTensors.mappedContents(of: url)
        switch WeightsFile.format(of: data) {
        case .torchZip: return try readZip(url: url, file: url.path, keys: keys)
        case .torchLegacy: return try readLegacy(data: data, file: url.path, keys: keys)
        case .safetensors:
            throw .badTorchFile(file: url.path, reason: "neither a zip archive nor a pickle: not written by torch.save")
        }
    }
}

// MARK: - From the unpickled object to tensors

extension TorchFile {
    /// Finds the state dict in `root`, checks every tensor's view and copies out the floating ones
    /// (of those named in `keys`, if given).
    /// `storageBytes(storage, needed)` returns the storage's bytes (at least the first `needed` if
    /// the file has them; fewer is reported here).
    static func assemble(_ root: PickleValue, format: Format, file: String, keys: Set<String>?,
                         storageBytes: (TorchStorageRef, Int) throws(WeightsError) -> Data) throws(WeightsError) -> TorchFile {
        let (entries, wrapper) = try stateDict(in: root, file: file)
        var skipped: [SkippedTensor] = []
        var byStorage: [String: [(name: String, view: TorchTensorRef)]] = [:]
        for (name, view) in entries where keys?.contains(name) ?? true {
            let dtype = view.storage.dtype
            guard !dtype.isComplex else { throw .unsupportedDType(file: file, key: name, dtype: dtype.rawValue) }
            _ = try view.checkedCount(name: name, file: file)
            if dtype.isFloatingPoint {
                byStorage[view.storage.key, default: []].append((name, view))
            } else {
                skipped.append(SkippedTensor(name: name, dtype: dtype.rawValue))
            }
        }
        var tensors: [String: Tensor] = [:]
        for key in byStorage.keys.sorted() {
            let views = byStorage[key]!
            let storage = views[0].view.storage
            let (needed, overflow) = storage.count.multipliedReportingOverflow(by: storage.dtype.elementBytes)
            guard !overflow else {
                throw .badTorchFile(file: file, reason: "storage \(key): \(storage.count) \(storage.dtype) elements overflow")
            }
            let bytes = try storageBytes(storage, needed)
            guard bytes.count >= needed else {
                throw .badTorchFile(file: file, reason: "storage \(key) holds \(bytes.count) bytes, but its \(storage.count) "
                                    + "\(storage.dtype) elements need \(needed) (used by \(views[0].name))")
            }
            bytes.withUnsafeBytes { raw in
                for (name, view) in views { tensors[name] = view.materialise(from: raw) }
            }
        }
        return TorchFile(format: format, weights: SafeTensors(file: file, tensors: tensors),
                         skipped: skipped.sorted { $0.name < $1.name }, wrapper: wrapper)
    }

    /// The (name, tensor) pairs of the state dict: the tensors of the top-level dict, or, when it has
    /// none, those of the dict under a `wrapperKeys` key.
    private static func stateDict(in root: PickleValue, file: String)
        throws(WeightsError) -> (entries: [(String, TorchTensorRef)], wrapper: String?) {
        guard case .dict(let top) = root else {
            throw .badTorchFile(file: file, reason: "the file holds \(root.kind), not a state dict")
        }
        let own = try tensorEntries(of: top, file: file)
        if !own.isEmpty || top.entries.isEmpty { return (own, nil) }
        for key in wrapperKeys {
            guard case .dict(let inner)? = top[key] else { continue }
            let entries = try tensorEntries(of: inner, file: file)
            if !entries.isEmpty { return (entries, key) }
        }
        let keys = top.entries.prefix(8).map { entry -> String in
            if case .string(let s) = entry.key { return s }
            return entry.key.kind
        }
        throw .badTorchFile(file: file, reason: "no tensors in the dict (keys: \(keys.joined(separator: ", "))"
                            + "\(top.entries.count > 8 ? ", …" : "")), nor under \(wrapperKeys.joined(separator: " or "))")
    }

    private static func tensorEntries(of dict: PickleDict, file: String) throws(WeightsError) -> [(String, TorchTensorRef)] {
        var out: [(String, TorchTensorRef)] = []
        for (key, value) in dict.entries {
            guard case .tensor(let view) = value else { continue }
            guard case .string(let name) = key else {
                throw .badTorchFile(file: file, reason: "a tensor is stored under \(key.kind) instead of a name")
            }
            out.append((name, view))
        }
        return out
    }
}
