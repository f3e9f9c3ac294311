/// What the opcodes of `Unpickler` mean for torch objects: the allow-list of globals, the REDUCE calls
/// a state dict makes, BUILD on an OrderedDict, and the persistent ids of storages.
extension Unpickler {
    func allowed(module: String, name: String) throws(WeightsError) -> TorchGlobal {
        guard let global = TorchGlobal(module: module, name: name) else {
            throw .forbiddenGlobal(file: file, global: "\(module).\(name)")
        }
        return global
    }

    func reduce(_ callable: PickleValue, arguments: PickleValue) throws(WeightsError) -> PickleValue {
        guard case .global(let global) = callable else { throw bad("REDUCE calls \(callable.kind), not a global") }
        guard case .tuple(let args, _) = arguments else {
            throw bad("REDUCE of \(global.qualifiedName) with \(arguments.kind) instead of an argument tuple")
        }
        arguments.seal()
        switch global {
        case .orderedDict:
            guard args.isEmpty else { throw bad("collections.OrderedDict called with arguments") }
            return .dict(PickleDict())
        case .rebuildTensorV2:
            // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
            guard args.count == 6 || args.count == 7, case .storage(let storage) = args[0], case .int(let offset) = args[1],
                  let shape = integers(args[2]), let strides = integers(args[3]), case .bool = args[4],
                  case .dict = args[5]
            else { throw bad("torch._utils._rebuild_tensor_v2 called with \(args.map(\.kind))") }
            return .tensor(TorchTensorRef(storage: storage, offset: offset, shape: shape, strides: strides))
        case .rebuildTensor:
            // (storage, storage_offset, size, stride)
            guard args.count == 4, case .storage(let storage) = args[0], case .int(let offset) = args[1],
                  let shape = integers(args[2]), let strides = integers(args[3])
            else { throw bad("torch._utils._rebuild_tensor called with \(args.map(\.kind))") }
            return .tensor(TorchTensorRef(storage: storage, offset: offset, shape: shape, strides: strides))
        case .rebuildParameter, .rebuildParameterWithState:
            // (data, requires_grad, backward_hooks[, state])
            guard args.count == (global == .rebuildParameter ? 3 : 4), case .tensor = args[0], case .bool = args[1],
                  case .dict = args[2]
            else { throw bad("\(global.qualifiedName) called with \(args.map(\.kind))") }
            return args[0]
        case .storageType:
            throw bad("\(global.qualifiedName) is called; torch.save only names it in storage ids")
        }
    }

    private func integers(_ value: PickleValue) -> [Int]? {
        guard case .tuple(let items, _) = value else { return nil }
        var out: [Int] = []
        for item in items {
            guard case .int(let i) = item else { return nil }
            out.append(i)
        }
        return out
    }

    /// BUILD sets an object's state; only an OrderedDict's attributes (`_metadata`) are expected, and ignored.
    func build(_ object: PickleValue, state: PickleValue) throws(WeightsError) {
        guard case .dict = object else { throw bad("BUILD on \(object.kind)") }
        state.seal()
    }

    /// `('storage', torch.FloatStorage, key, location, numel)`, or the legacy format's with a sixth
    /// element, the view metadata, which must be None.
    mutating func persistent(_ id: PickleValue) throws(WeightsError) -> PickleValue {
        guard case .tuple(let items, _) = id, items.count == 5 || (items.count == 6 && isNone(items[5])),
              case .string("storage") = items[0], case .global(.storageType(let dtype)) = items[1],
              case .string(let key) = items[2], case .string = items[3], case .int(let count) = items[4]
        else {
            throw bad("persistent id \(id.kind) is not ('storage', torch.<Type>Storage, key, location, numel)")
        }
        guard count >= 0 else { throw bad("storage \(key) has a negative size \(count)") }
        let storage = TorchStorageRef(key: key, dtype: dtype, count: count)
        if let seen = storages[key], seen != storage {
            throw bad("storage \(key) is described twice, as \(seen.count) \(seen.dtype) and as \(count) \(dtype) elements")
        }
        storages[key] = storage
        return .storage(storage)
    }

    private func isNone(_ value: PickleValue) -> Bool {
        if case .none = value { return true }
        return false
    }
}
