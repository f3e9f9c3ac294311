/// SplitMix64 (Steele, Lea & Flood 2014): the project's seeded generator.
///
/// Used for PyTorch-style default initialisation, the random VGG16 and the deterministic
/// parameters of the golden fixtures. `scripts/golden.py` implements the same generator, so
/// both sides draw bit-identical parameters without storing them in the fixtures.
public struct SplitMix64: RandomNumberGenerator, Sendable {
    public private(set) var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A uniform draw in [0, 1) with 24 random bits (exact in Float32 and Double).
    public mutating func unit() -> Double { Double(next() >> 40) / 16_777_216.0 }

    /// Fills `t` with `Float((2u − 1) · bound)`, u from `unit()`; the arithmetic is in Double.
    public mutating func fillUniform(_ t: Tensor, bound: Double) {
        for i in 0..<t.count { t.data[i] = Float((2 * unit() - 1) * bound) }
    }

    /// Standard normal draws by Box-Muller on two `unit()` draws (1 − u avoids log 0).
    public mutating func normal() -> Double {
        let u1 = 1 - unit(), u2 = unit()
        return (-2 * log(u1)).squareRoot() * cos(2 * Double.pi * u2)
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Deterministic parameters (shared with scripts/golden.py)

/// FNV-1a, 64-bit, over the UTF-8 bytes of `name`.
public func fnv1a64(_ name: String) -> UInt64 {
    var h: UInt64 = 0xcbf2_9ce4_8422_2325
    for b in name.utf8 {
        h ^= UInt64(b)
        h = h &* 0x0000_0100_0000_01b3
    }
    return h
}

/// Fills `t` with the values `scripts/golden.py` generates for the tensor `name`:
/// element i is `Float(offset + (2u − 1)·bound)`, u the (i+1)-th SplitMix64 draw seeded with
/// `baseSeed ^ fnv1a64(name)`. Lets the fixtures leave out the large parameter tensors.
public func fillDeterministic(_ t: Tensor, name: String, baseSeed: UInt64, offset: Double, bound: Double) {
    var rng = SplitMix64(seed: baseSeed ^ fnv1a64(name))
    for i in 0..<t.count { t.data[i] = Float(offset + (2 * rng.unit() - 1) * bound) }
}
