/// Why a weights file (safetensors or PyTorch `.pth`) could not be read, checked or written. Every
/// case names the file, so a message such as `vgg16.safetensors: missing key features.0.weight` can be
/// shown as it is.
public enum WeightsError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The file is missing, unreadable (permissions) or a directory.
    case unreadable(file: String, reason: String)
    /// The 8-byte length or the JSON header is malformed: too short, length past the end of the
    /// file, not JSON, not an object, a bad entry, offsets reversed, overlapping or not matching
    /// the shape.
    case badHeader(file: String, reason: String)
    /// The data buffer ends before the largest `data_offsets` end (sizes are whole-file bytes).
    case truncated(file: String, expectedBytes: Int, actualBytes: Int)
    /// A tensor's dtype is not one we convert to Float32 (F32, F64, F16, BF16).
    case unsupportedDType(file: String, key: String, dtype: String)
    /// No tensor named `key`.
    case missingKey(file: String, key: String)
    /// The tensor named `key` has another shape than the model expects.
    case wrongShape(file: String, key: String, expected: [Int], found: [Int])
    /// Writing failed (bad tensor name, folder missing, disk full…); the target is left untouched.
    case writeFailed(file: String, reason: String)
    /// A PyTorch file's pickle names a global outside the state-dict allow-list (`posix.system`,
    /// `builtins.eval`, a model class…). Nothing is ever called: reading stops at the name.
    case forbiddenGlobal(file: String, global: String)
    /// A PyTorch file's pickle is malformed: unknown opcode, stack underflow, truncated, nested too deep,
    /// a value of the wrong type where a state dict needs another.
    case badPickle(file: String, reason: String)
    /// A PyTorch file's container is wrong: not a readable zip, a missing or short record, a tensor
    /// view outside its storage, sizes that overflow, big-endian data.
    case badTorchFile(file: String, reason: String)

    /// The file this error is about.
    public var file: String {
        switch self {
        case .unreadable(let file, _), .badHeader(let file, _), .truncated(let file, _, _),
             .unsupportedDType(let file, _, _), .missingKey(let file, _), .wrongShape(let file, _, _, _),
             .writeFailed(let file, _), .forbiddenGlobal(let file, _), .badPickle(let file, _),
             .badTorchFile(let file, _):
            return file
        }
    }

    /// One line: the file, then the problem.
    public var description: String {
        switch self {
        case .unreadable(let file, let reason):
            return "\(file): cannot read: \(reason)"
        case .badHeader(let file, let reason):
            return "\(file): bad safetensors header: \(reason)"
        case .truncated(let file, let expected, let actual):
            return "\(file): truncated: the header needs \(expected) bytes, the file has \(actual)"
        case .unsupportedDType(let file, let key, let dtype):
            return "\(file): tensor \(key) has unsupported dtype \(dtype) (supported: F32, F64, F16, BF16)"
        case .missingKey(let file, let key):
            return "\(file): missing key \(key)"
        case .wrongShape(let file, let key, let expected, let found):
            return "\(file): tensor \(key) has shape \(found), expected \(expected)"
        case .writeFailed(let file, let reason):
            return "\(file): write failed: \(reason)"
        case .forbiddenGlobal(let file, let global):
            return "\(file): refused: the pickle refers to \(global), which a state dict never needs "
                + "(only tensors, storages and OrderedDict are read, nothing is executed; "
                + "if this is a whole model saved with torch.save(model), save model.state_dict() instead)"
        case .badPickle(let file, let reason):
            return "\(file): bad pickle: \(reason)"
        case .badTorchFile(let file, let reason):
            return "\(file): bad PyTorch file: \(reason)"
        }
    }
}
