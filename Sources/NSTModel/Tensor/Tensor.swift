import Foundation

/// A dense Float32 tensor: a shape and one 64-byte-aligned block of storage.
///
/// Reference semantics on purpose: activations, parameters, gradients and Adam moments are
/// allocated once and reused for every step (no copy-on-write, no `[Float]` temporaries in a
/// step). Layout is row-major, so a 4-D tensor is NCHW.
public final class Tensor {
    public let shape: [Int]
    public let count: Int
    public let data: UnsafeMutablePointer<Float>
    private let owner: Tensor?
    private let ownsStorage: Bool

    /// A view of the first elements of `base` with another shape; keeps `base` alive.
    public init(viewing base: Tensor, shape: [Int]) {
        let count = Tensor.elementCount(shape)
        if count > base.count { fatalError("view \(shape) larger than its storage \(base.shape)") }
        self.shape = shape
        self.count = count
        self.data = base.data
        self.owner = base
        self.ownsStorage = false
    }

    /// The number of elements of `shape`. NSTModel is built with `-Ounchecked`, where a
    /// `precondition` is compiled out and `*` wraps silently: a wrapped count would allocate a
    /// few bytes for a huge tensor and write far past them. So the product is checked here, and
    /// a shape that cannot exist stops the process with its shape named (callers check sizes
    /// from users and from the network before they get here: `TrainingSession`, `JobLimits`).
    public static func elementCount(_ shape: [Int]) -> Int {
        var n = 1
        for d in shape {
            if d < 0 { fatalError("negative dimension in tensor shape \(shape)") }
            let (product, overflow) = n.multipliedReportingOverflow(by: d)
            if overflow || product > Int.max / MemoryLayout<Float>.stride { fatalError("tensor shape \(shape) is too large") }
            n = product
        }
        return n
    }

    /// A zero-filled tensor.
    public init(shape: [Int]) {
        self.shape = shape
        self.count = Tensor.elementCount(shape)
        var raw: UnsafeMutableRawPointer?
        let bytes = max(count, 1) * MemoryLayout<Float>.stride
        guard posix_memalign(&raw, 64, bytes) == 0, let raw else {
            fatalError("out of memory allocating \(bytes) bytes for tensor \(shape)")
        }
        data = raw.bindMemory(to: Float.self, capacity: max(count, 1))
        data.initialize(repeating: 0, count: max(count, 1))
        owner = nil
        ownsStorage = true
    }

    public convenience init(shape: [Int], values: [Float]) {
        precondition(values.count == shape.reduce(1, *), "\(values.count) values for shape \(shape)")
        self.init(shape: shape)
        values.withUnsafeBufferPointer { data.update(from: $0.baseAddress!, count: count) }
    }

    deinit { if ownsStorage { free(data) } }

    public var buffer: UnsafeMutableBufferPointer<Float> { UnsafeMutableBufferPointer(start: data, count: count) }
    public var array: [Float] { Array(buffer) }

    public func zero() { data.update(repeating: 0, count: count) }
    public func fill(_ value: Float) { data.update(repeating: value, count: count) }

    public func copy(from other: Tensor) {
        precondition(other.count == count, "copy of \(other.shape) into \(shape)")
        data.update(from: other.data, count: count)
    }

    public func clone() -> Tensor {
        let t = Tensor(shape: shape)
        t.copy(from: self)
        return t
    }

    /// Dimension `i` of the shape, counting negative indices from the end.
    public subscript(dim i: Int) -> Int { shape[i < 0 ? shape.count + i : i] }
}

/// The 4 dimensions of an NCHW activation.
public struct Dims4: Equatable, CustomStringConvertible, Sendable {
    public var n, c, h, w: Int
    public init(_ n: Int, _ c: Int, _ h: Int, _ w: Int) { self.n = n; self.c = c; self.h = h; self.w = w }
    public var plane: Int { h * w }
    public var count: Int { n * c * h * w }
    public var shape: [Int] { [n, c, h, w] }
    public var description: String { "[\(n), \(c), \(h), \(w)]" }
}

extension Tensor {
    public var dims4: Dims4 {
        precondition(shape.count == 4, "expected a 4-D tensor, got \(shape)")
        return Dims4(shape[0], shape[1], shape[2], shape[3])
    }
}

/// Relative L2 error ‖a − b‖ / ‖b‖ (b is the reference), accumulated in Double.
public func relativeL2Error(_ a: UnsafeBufferPointer<Float>, _ b: UnsafeBufferPointer<Float>) -> Double {
    precondition(a.count == b.count, "sizes differ: \(a.count) vs \(b.count)")
    var num = 0.0, den = 0.0
    for i in 0..<a.count {
        let d = Double(a[i]) - Double(b[i])
        num += d * d
        den += Double(b[i]) * Double(b[i])
    }
    if den == 0 { return num.squareRoot() }
    return (num / den).squareRoot()
}

public func relativeL2Error(_ a: Tensor, _ b: Tensor) -> Double {
    relativeL2Error(UnsafeBufferPointer(a.buffer), UnsafeBufferPointer(b.buffer))
}
