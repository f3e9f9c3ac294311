/// What the restricted unpickler (`Unpickler.swift`) builds from a PyTorch pickle: plain Python
/// values, plus the few torch objects a state dict is made of. Nothing here can run code.
enum PickleValue {
    case none
    case bool(Bool)
    case int(Int)
    /// A LONG1 integer wider than 64 bits, as its little-endian two's-complement bytes (the legacy
    /// format's magic number is one).
    case bigInt([UInt8])
    case float(Double)
    case string(String)
    /// Tuples are immutable; `depth` is the nesting depth, 1 + the deepest element.
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    /// A name from the allow-list (a class or function that is never called as such).
    case global(TorchGlobal)
    /// A persistent id `('storage', torch.FloatStorage, key, location, numel)`.
    case storage(TorchStorageRef)
    /// `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, …)` (or `_rebuild_tensor`): a view
    /// of a storage.
    case tensor(TorchTensorRef)

    /// Nesting depth: 0 for scalars and torch references, 1 + the deepest element for containers.
    var depth: Int {
        switch self {
        case .tuple(_, let depth): return depth
        case .list(let list): return list.depth
        case .dict(let dict): return dict.depth
        default: return 0
        }
    }

    /// A short name of the value's kind for error messages ("a tuple", "the string 'x'").
    var kind: String {
        switch self {
        case .none: return "None"
        case .bool(let b): return b ? "True" : "False"
        case .int(let i): return "the integer \(i)"
        case .bigInt: return "a big integer"
        case .float(let x): return "the float \(x)"
        case .string(let s): return "the string '\(s.prefix(40))'"
        case .tuple(let items, _): return "a \(items.count)-tuple"
        case .list: return "a list"
        case .dict: return "a dict"
        case .global(let g): return g.qualifiedName
        case .storage: return "a storage"
        case .tensor: return "a tensor"
        }
    }
}

/// A Python list or dict under construction. Containers are reference types because pickle shares
/// them through the memo; once one is placed inside another object it is `sealed` and can no longer
/// change, which keeps `depth` exact and makes reference cycles impossible.
class PickleContainer {
    private(set) var depth = 1
    private(set) var sealed = false

    /// Records that `child` becomes an element (sealing it); false if `child` is this container.
    func adopt(_ child: PickleValue) -> Bool {
        if case .list(let l) = child, l === self { return false }
        if case .dict(let d) = child, d === self { return false }
        child.seal()
        depth = max(depth, child.depth + 1)
        return true
    }

    func seal() { sealed = true }
}

final class PickleList: PickleContainer {
    private(set) var items: [PickleValue] = []
    func append(_ item: PickleValue) { items.append(item) }
}

/// A dict or `collections.OrderedDict`; keeps insertion order (a later SETITEM with the same key
/// replaces the value in place, as Python does).
final class PickleDict: PickleContainer {
    private(set) var entries: [(key: PickleValue, value: PickleValue)] = []
    private var stringIndex: [String: Int] = [:]

    func set(_ key: PickleValue, _ value: PickleValue) {
        if case .string(let s) = key {
            if let i = stringIndex[s] { entries[i].value = value; return }
            stringIndex[s] = entries.count
        }
        entries.append((key, value))
    }

    subscript(key: String) -> PickleValue? { stringIndex[key].map { entries[$0].value } }
}

extension PickleValue {
    /// Seals a list or dict that becomes part of another object (no-op for other values).
    func seal() {
        switch self {
        case .list(let l): l.seal()
        case .dict(let d): d.seal()
        default: break
        }
    }
}

// MARK: - The torch objects of a state dict

/// The globals a state dict may name. Everything else is refused by name.
enum TorchGlobal: Equatable {
    case orderedDict
    /// PyTorch ≥ 0.4's tensors.
    case rebuildTensorV2
    /// PyTorch ≤ 0.3's tensors (pytorch/examples' pretrained style models are such files).
    case rebuildTensor
    case rebuildParameter
    case rebuildParameterWithState
    /// `torch.FloatStorage` and the other typed storage classes: only ever a marker in a persistent id.
    case storageType(TorchDType)

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensorV2
        case ("torch._utils", "_rebuild_tensor"): self = .rebuildTensor
        case ("torch._utils", "_rebuild_parameter"): self = .rebuildParameter
        case ("torch._utils", "_rebuild_parameter_with_state"): self = .rebuildParameterWithState
        case ("torch", _):
            guard let dtype = TorchDType(storageClass: name) else { return nil }
            self = .storageType(dtype)
        default: return nil
        }
    }

    var qualifiedName: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensorV2: return "torch._utils._rebuild_tensor_v2"
        case .rebuildTensor: return "torch._utils._rebuild_tensor"
        case .rebuildParameter: return "torch._utils._rebuild_parameter"
        case .rebuildParameterWithState: return "torch._utils._rebuild_parameter_with_state"
        case .storageType(let dtype): return "torch.\(dtype.storageClass)"
        }
    }
}

/// One storage of the file: `data/<key>` in the zip format, or the legacy format's storage `key`.
struct TorchStorageRef: Equatable {
    var key: String
    var dtype: TorchDType
    /// Elements (of `dtype`) the storage holds.
    var count: Int
}

/// A tensor as torch.save describes it: a view (offset, size, stride, in elements) of a storage.
struct TorchTensorRef {
    var storage: TorchStorageRef
    var offset: Int
    var shape: [Int]
    var strides: [Int]
}
