import Foundation

#if _endian(big)
#error("TorchTensorView reads little-endian storages straight into Float; big-endian hosts are unsupported")
#endif

/// The element types of torch's typed storages (`torch.FloatStorage` …). The floating ones are
/// converted to Float32 as SafeTensors converts them; the integer and bool ones are recognised (a
/// state dict often has an int64 `num_batches_tracked`) so the file can be read, but their tensors
/// are skipped; complex storages are refused.
enum TorchDType: String, Equatable, CaseIterable {
    case float32, float64, float16, bfloat16
    case int64, int32, int16, int8, uint8, bool
    case complex64, complex128

    init?(storageClass: String) {
        guard let match = Self.allCases.first(where: { $0.storageClass == storageClass }) else { return nil }
        self = match
    }

    /// The class torch.save names in a persistent id.
    var storageClass: String {
        switch self {
        case .float32: return "FloatStorage"
        case .float64: return "DoubleStorage"
        case .float16: return "HalfStorage"
        case .bfloat16: return "BFloat16Storage"
        case .int64: return "LongStorage"
        case .int32: return "IntStorage"
        case .int16: return "ShortStorage"
        case .int8: return "CharStorage"
        case .uint8: return "ByteStorage"
        case .bool: return "BoolStorage"
        case .complex64: return "ComplexFloatStorage"
        case .complex128: return "ComplexDoubleStorage"
        }
    }

    var elementBytes: Int {
        switch self {
        case .int8, .uint8, .bool: return 1
        case .float16, .bfloat16, .int16: return 2
        case .float32, .int32: return 4
        case .float64, .int64, .complex64: return 8
        case .complex128: return 16
        }
    }

    var isFloatingPoint: Bool { [.float32, .float64, .float16, .bfloat16].contains(self) }
    var isComplex: Bool { self == .complex64 || self == .complex128 }
}

/// A tensor of a state dict that is not read because Float32 cannot hold it (int64, bool…).
public struct SkippedTensor: Equatable, Sendable {
    public var name: String
    /// torch's dtype name: "int64", "bool"…
    public var dtype: String
}

// MARK: - Checking a view and copying it out

extension TorchTensorRef {
    /// A view may hold more elements than its storage (an `expand`, stride 0) only up to this many, so
    /// that a few bytes of file cannot make us allocate gigabytes.
    static let maxExpandedCount = 1 << 24

    /// Checks offset, shape and strides against the storage (`storage.count` elements, already
    /// checked to fit in the record) and returns the element count. Every product and sum is
    /// overflow-checked.
    func checkedCount(name: String, file: String) throws(WeightsError) -> Int {
        func bad(_ why: String) -> WeightsError { .badTorchFile(file: file, reason: "tensor \(name): \(why)") }
        guard shape.count == strides.count else {
            throw bad("size \(shape) and stride \(strides) have different lengths")
        }
        guard shape.allSatisfy({ $0 >= 0 }) else { throw bad("negative dimension in size \(shape)") }
        guard strides.allSatisfy({ $0 >= 0 }) else { throw bad("negative stride in \(strides)") }
        guard offset >= 0 else { throw bad("negative storage offset \(offset)") }
        var count = 1
        for dim in shape {
            let (product, overflow) = count.multipliedReportingOverflow(by: dim)
            guard !overflow else { throw bad("size \(shape) overflows") }
            count = product
        }
        if count == 0 { return 0 }
        var last = offset  // the largest storage index the view touches
        for (dim, stride) in zip(shape, strides) {
            let (reach, o1) = (dim - 1).multipliedReportingOverflow(by: stride)
            let (sum, o2) = last.addingReportingOverflow(reach)
            guard !o1, !o2 else { throw bad("size \(shape) with stride \(strides) overflows") }
            last = sum
        }
        guard last < storage.count else {
            throw bad("the view (offset \(offset), size \(shape), stride \(strides)) reaches element \(last) "
                      + "of storage \(storage.key), which has \(storage.count)")
        }
        guard count <= max(storage.count, Self.maxExpandedCount) else {
            throw bad("the view has \(count) elements, far more than its storage's \(storage.count)")
        }
        return count
    }

    /// A new contiguous Float32 tensor with the view's values. `bytes` is the whole storage, at least
    /// `storage.count × elementBytes` long; `checkedCount` must have passed.
    func materialise(from bytes: UnsafeRawBufferPointer) -> Tensor {
        let tensor = Tensor(shape: shape)
        guard tensor.count > 0 else { return tensor }
        let out = tensor.data
        guard let inner = shape.last, let innerStride = strides.last else {  // 0-d: one element
            convertRun(bytes, first: offset, step: 1, count: 1, into: out)
            return tensor
        }
        // Walk the outer dimensions like an odometer; each row is one run along the last dimension.
        let outer = shape.count - 1
        var index = [Int](repeating: 0, count: outer)
        var start = offset
        for row in 0 ..< tensor.count / inner {
            convertRun(bytes, first: start, step: innerStride, count: inner, into: out + row * inner)
            var d = outer - 1
            while d >= 0 {  // never steps past the last index, so every sum stays inside the checked view
                if index[d] + 1 < shape[d] {
                    index[d] += 1
                    start += strides[d]
                    break
                }
                start -= strides[d] * index[d]
                index[d] = 0
                d -= 1
            }
        }
        return tensor
    }

    /// Converts `count` elements at storage indices first, first + step, … to Float32.
    private func convertRun(_ bytes: UnsafeRawBufferPointer, first: Int, step: Int, count: Int,
                            into out: UnsafeMutablePointer<Float>) {
        let size = storage.dtype.elementBytes
        switch storage.dtype {
        case .float32 where step == 1:
            UnsafeMutableRawPointer(out).copyMemory(from: bytes.baseAddress! + first * size, byteCount: count * size)
        case .float32:
            for i in 0..<count {
                out[i] = Float(bitPattern: bytes.loadUnaligned(fromByteOffset: (first + i * step) * size, as: UInt32.self))
            }
        case .float64:
            for i in 0..<count {
                out[i] = Float(Double(bitPattern: bytes.loadUnaligned(fromByteOffset: (first + i * step) * size, as: UInt64.self)))
            }
        case .float16:
            for i in 0..<count {
                out[i] = SafeTensors.floatFromHalf(bytes.loadUnaligned(fromByteOffset: (first + i * step) * size, as: UInt16.self))
            }
        case .bfloat16:
            for i in 0..<count {
                let bits = bytes.loadUnaligned(fromByteOffset: (first + i * step) * size, as: UInt16.self)
                out[i] = Float(bitPattern: UInt32(bits) << 16)
            }
        default:
            preconditionFailure("only floating-point storages are materialised, got \(storage.dtype)")
        }
    }
}
