/// A named trainable (or frozen) tensor with its gradient.
///
/// Names are PyTorch's state_dict keys (`conv1.conv2d.weight`, `res3.in2.bias`,
/// `features.0.weight`), so weights files load in PyTorch and back. Frozen parameters
/// (VGG16) have no gradient buffer.
public final class Parameter {
    public let name: String
    public let value: Tensor
    public let grad: Tensor?

    public init(name: String, shape: [Int], trainable: Bool) {
        self.name = name
        self.value = Tensor(shape: shape)
        self.grad = trainable ? Tensor(shape: shape) : nil
    }

    public var shape: [Int] { value.shape }
}

/// A tensor allocated on first use at the size the first step needs and then reused:
/// later requests for the same or a smaller size return the same storage.
public final class Scratch {
    private var storage: Tensor?
    public init() {}

    /// A buffer of at least `count` floats; contents are unspecified.
    public func pointer(_ count: Int) -> UnsafeMutablePointer<Float> {
        if let s = storage, s.count >= count { return s.data }
        storage = Tensor(shape: [count])
        return storage!.data
    }

    public var capacity: Int { storage?.count ?? 0 }
}

/// A tensor slot sized on first use and reused: a request for the same dims returns the same
/// tensor; a smaller request (the last, partial batch of an epoch) returns a view of the same
/// storage; only a larger one allocates again.
public final class Activation {
    private var backing: Tensor?
    public private(set) var tensor: Tensor?
    public init() {}

    public func get(_ dims: Dims4) -> Tensor {
        if let t = tensor, t.shape == dims.shape { return t }
        if let b = backing, b.count >= dims.count {
            tensor = Tensor(viewing: b, shape: dims.shape)
        } else {
            let b = Tensor(shape: dims.shape)
            backing = b
            tensor = b
        }
        return tensor!
    }

    public var bytes: Int { (backing?.count ?? 0) * 4 }
}
