import Foundation

// The drawing kit behind SyntheticStyles: seeded gradient noise, fields sampled per pixel, and a
// float RGB canvas with antialiased strokes, polygons and supersampled shading.

// MARK: - Vectors and colours

typealias StyleRGB = SIMD3<Double>
typealias StylePoint = SIMD2<Double>

extension SIMD3 where Scalar == Double {
    /// A colour from `0xRRGGBB`, components in [0, 1].
    init(hex v: Int) { self.init(Double(v >> 16 & 255) / 255, Double(v >> 8 & 255) / 255, Double(v & 255) / 255) }

    /// Linear interpolation towards `other`: `self` at t = 0, `other` at t = 1.
    func mixed(_ other: Self, _ t: Double) -> Self { self + (other - self) * t }
}

extension SIMD2 where Scalar == Double {
    func dot(_ other: Self) -> Double { (self * other).sum() }
    var length: Double { dot(self).squareRoot() }
    func rotated(_ angle: Double) -> Self {
        let c = cos(angle), s = sin(angle)
        return Self(c * x - s * y, s * x + c * y)
    }
}

@inline(__always) func clamp01(_ x: Double) -> Double { min(max(x, 0), 1) }

// MARK: - Noise

/// Seeded 2-D Perlin gradient noise.
struct StyleNoise {
    let key: UInt64

    func hash(_ x: Int, _ y: Int) -> UInt64 {
        var z = key &+ UInt64(bitPattern: Int64(x)) &* 0x9E37_79B9_7F4A_7C15
            &+ UInt64(bitPattern: Int64(y)) &* 0xC2B2_AE3D_27D4_EB4F
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Gradient noise with one lattice cell per unit, roughly in [-1, 1].
    func perlin(_ x: Double, _ y: Double) -> Double {
        let ix = Int(x.rounded(.down)), iy = Int(y.rounded(.down))
        let fx = x - Double(ix), fy = y - Double(iy)
        func g(_ i: Int, _ j: Int) -> Double {
            let dx = fx - Double(i), dy = fy - Double(j)
            switch hash(ix + i, iy + j) & 7 {
            case 0: return dx + dy
            case 1: return dx - dy
            case 2: return dy - dx
            case 3: return -dx - dy
            case 4: return 1.4 * dx
            case 5: return -1.4 * dx
            case 6: return 1.4 * dy
            default: return -1.4 * dy
            }
        }
        let u = fx * fx * fx * (fx * (fx * 6 - 15) + 10), v = fy * fy * fy * (fy * (fy * 6 - 15) + 10)
        let a = g(0, 0) + (g(1, 0) - g(0, 0)) * u, b = g(0, 1) + (g(1, 1) - g(0, 1)) * u
        return 1.4 * (a + (b - a) * v)
    }

    /// Fractal sum of `octaves` octaves of `perlin(p)`, halving the amplitude per octave.
    func fbm(_ p: StylePoint, octaves: Int = 4) -> Double {
        var sum = 0.0, amp = 0.5, f = 1.0
        for o in 0..<octaves {
            sum += amp * perlin(p.x * f + Double(o) * 17.31, p.y * f - Double(o) * 9.17)
            f *= 2
            amp *= 0.5
        }
        return sum
    }
}

// MARK: - Sampled field

/// A scalar field evaluated once per pixel centre and read back by bilinear interpolation, for
/// smooth fields that supersampling would otherwise evaluate many times per pixel.
struct StyleGrid {
    let n: Int
    var v: [Double]

    init(size: Int, _ f: (StylePoint) -> Double) {
        n = size
        v = [Double](repeating: 0, count: size * size)
        for y in 0..<size {
            for x in 0..<size { v[y * size + x] = f(StylePoint(Double(x) + 0.5, Double(y) + 0.5)) }
        }
    }

    func at(_ p: StylePoint) -> Double {
        let fx = min(max(p.x - 0.5, 0), Double(n - 1)), fy = min(max(p.y - 0.5, 0), Double(n - 1))
        let x0 = min(Int(fx), n - 2), y0 = min(Int(fy), n - 2)
        let tx = fx - Double(x0), ty = fy - Double(y0)
        let a = v[y0 * n + x0] + (v[y0 * n + x0 + 1] - v[y0 * n + x0]) * tx
        let b = v[(y0 + 1) * n + x0] + (v[(y0 + 1) * n + x0 + 1] - v[(y0 + 1) * n + x0]) * tx
        return a + (b - a) * ty
    }

    /// Gradient magnitude per pixel at `p` (central differences), at least 1e-6.
    func slope(_ p: StylePoint) -> Double {
        let gx = at(p + StylePoint(1, 0)) - at(p - StylePoint(1, 0))
        let gy = at(p + StylePoint(0, 1)) - at(p - StylePoint(0, 1))
        return max((gx * gx + gy * gy).squareRoot() / 2, 1e-6)
    }
}

// MARK: - Canvas

/// A square float RGB canvas; colours are clamped to [0, 1] only when converted to an image.
struct StyleCanvas {
    let n: Int
    var px: [StyleRGB]

    init(size: Int, color: StyleRGB) {
        precondition(size >= 2, "style canvas size \(size)")
        n = size
        px = [StyleRGB](repeating: color, count: size * size)
    }

    /// Sets every pixel to the mean of `f` over an s×s grid of points inside it (antialiasing).
    mutating func shade(samples s: Int, _ f: (StylePoint) -> StyleRGB) {
        let step = 1 / Double(s), weight = 1 / Double(s * s)
        for y in 0..<n {
            for x in 0..<n {
                var acc = StyleRGB(0, 0, 0)
                for j in 0..<s {
                    for i in 0..<s {
                        acc += f(StylePoint(Double(x) + (Double(i) + 0.5) * step, Double(y) + (Double(j) + 0.5) * step))
                    }
                }
                px[y * n + x] = acc * weight
            }
        }
    }

    /// Blends `body(p) = (colour, opacity)` over the pixel centres inside the box [lo, hi].
    mutating func blend(_ lo: StylePoint, _ hi: StylePoint, _ body: (StylePoint) -> (StyleRGB, Double)) {
        let xa = max(Int(max(lo.x, -1).rounded(.down)), 0), xb = min(Int(min(hi.x, Double(n)).rounded(.up)) + 1, n)
        let ya = max(Int(max(lo.y, -1).rounded(.down)), 0), yb = min(Int(min(hi.y, Double(n)).rounded(.up)) + 1, n)
        guard xa < xb, ya < yb else { return }
        for y in ya..<yb {
            for x in xa..<xb {
                let (c, a) = body(StylePoint(Double(x) + 0.5, Double(y) + 0.5))
                if a > 0 { px[y * n + x] += (c - px[y * n + x]) * min(a, 1) }
            }
        }
    }

    /// A round-capped segment of radius `r` (a disc when a == b). `streaks` modulates the colour
    /// across the width like the marks of bristles; `dry` (0...1) leaves gaps between them.
    mutating func stroke(_ a: StylePoint, _ b: StylePoint, r: Double, color: StyleRGB, alpha: Double = 1,
                         streaks: Double = 0, dry: Double = 0, phase: Double = 0) {
        let d = b - a, len = max(d.length, 1e-9)
        let dir = d.length > 1e-9 ? d / len : StylePoint(1, 0), nrm = StylePoint(-dir.y, dir.x)
        blend(pointwiseMin(a, b) - (r + 1), pointwiseMax(a, b) + (r + 1)) { p in
            let q = p - a, t = q.dot(dir), v = q.dot(nrm)
            let tc = min(max(t, 0), len), dist = ((t - tc) * (t - tc) + v * v).squareRoot()
            let cov = clamp01(r - dist + 0.5)
            if cov == 0 { return (color, 0) }
            let w = v / r, bristle = 0.6 * sin(w * 5 + phase) + 0.4 * sin(w * 11 + 2 * phase)
            let keep = dry > 0 ? clamp01((1 - 2 * dry - bristle) * 3) : 1
            return (color * (1 + streaks * bristle), cov * alpha * keep)
        }
    }

    /// A convex polygon filled by `fill`, outlined by a line of width `line` (centred on the edge).
    mutating func polygon(_ pts: [StylePoint], alpha: Double, line: Double, lineColor: StyleRGB,
                          fill: (StylePoint) -> StyleRGB) {
        var area = 0.0
        for i in pts.indices {
            let a = pts[i], b = pts[(i + 1) % pts.count]
            area += a.x * b.y - b.x * a.y
        }
        let sign: Double = area >= 0 ? 1 : -1
        let edges = pts.indices.map { i -> (StylePoint, StylePoint) in
            let a = pts[i], d = pts[(i + 1) % pts.count] - a
            return (a, StylePoint(-d.y, d.x) * (sign / max(d.length, 1e-9)))
        }
        let lo = pts.reduce(pts[0], pointwiseMin) - (line + 1), hi = pts.reduce(pts[0], pointwiseMax) + (line + 1)
        blend(lo, hi) { p in
            var d = Double.infinity
            for (a, nrm) in edges { d = min(d, (p - a).dot(nrm)) }
            let cov = clamp01(d + line / 2 + 0.5)
            if cov == 0 { return (lineColor, 0) }
            return (fill(p).mixed(lineColor, clamp01(line / 2 - d + 0.5)), cov * alpha)
        }
    }

    /// Clamps to [0, 1] and rounds to 8 bits.
    func image() -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: n * n * 3)
        for i in 0..<px.count {
            for c in 0..<3 { pixels[3 * i + c] = UInt8((clamp01(px[i][c]) * 255).rounded()) }
        }
        return RGBImage(width: n, height: n, pixels: pixels)
    }
}
