import Foundation

/// Procedural "photos" for demo training sets: a sky gradient (day, dusk, night or overcast), a
/// sun or moon disc with a glow, clouds, layered hills with atmospheric haze and slope shading,
/// houses, trees and boxes lit from the sun's side, and value-noise texture. Everything is drawn
/// from a `SplitMix64` seeded by (seed, index), so the same arguments give the same image.
public enum SyntheticImages {
    /// The scene for `index` at `width`×`height`.
    public static func contentImage(index: Int, width: Int, height: Int, seed: UInt64 = 7) -> RGBImage {
        precondition(width > 0 && height > 0, "synthetic image size \(width)x\(height)")
        var mixer = SplitMix64(seed: UInt64(truncatingIfNeeded: index))
        var scene = Scene(width: width, height: height, rng: SplitMix64(seed: seed ^ mixer.next()))
        scene.paint()
        return scene.canvas.image()
    }

    /// Writes `count` scenes of size×size into `dir` (created if needed) as `img_00000.jpg`,
    /// `img_00001.jpg`…, every fifth one a PNG (`img_00004.png`), and returns their URLs in order.
    public static func writeDataset(to dir: URL, count: Int, size: Int, seed: UInt64 = 7) throws(ImageError) -> [URL] {
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: dir.path, reason: RGBImage.reason(error))
        }
        var urls: [URL] = []
        for i in 0..<max(count, 0) {
            let digits = String(i)
            let name = "img_" + String(repeating: "0", count: max(0, 5 - digits.count)) + digits
            let url = dir.appendingPathComponent(name + (i % 5 == 4 ? ".png" : ".jpg"))
            try contentImage(index: i, width: size, height: size, seed: seed).write(to: url, quality: 90)
            urls.append(url)
        }
        return urls
    }
}

// MARK: - Canvas

private typealias RGB = SIMD3<Double>
private typealias Point = SIMD2<Double>

private struct Canvas {
    let width: Int, height: Int
    var rgb: [RGB]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        rgb = [RGB](repeating: RGB(0, 0, 0), count: width * height)
    }

    /// Blends `color(x, y)` with opacity `coverage(x, y)` over pixel centres in the box.
    mutating func fill(_ x0: Double, _ y0: Double, _ x1: Double, _ y1: Double,
                       coverage: (Point) -> Double, color: (Point) -> RGB) {
        let xa = max(Int(x0.rounded(.down)) - 1, 0), xb = min(Int(x1.rounded(.up)) + 1, width)
        let ya = max(Int(y0.rounded(.down)) - 1, 0), yb = min(Int(y1.rounded(.up)) + 1, height)
        guard xa < xb, ya < yb else { return }
        for y in ya..<yb {
            for x in xa..<xb {
                let p = Point(Double(x) + 0.5, Double(y) + 0.5)
                let a = coverage(p)
                if a <= 0 { continue }
                let i = y * width + x
                rgb[i] += (color(p) - rgb[i]) * min(a, 1)
            }
        }
    }

    /// A convex polygon with antialiased edges, shaded by `color`.
    mutating func polygon(_ pts: [Point], color: (Point) -> RGB) {
        var area = 0.0
        for i in pts.indices {
            let a = pts[i], b = pts[(i + 1) % pts.count]
            area += a.x * b.y - b.x * a.y
        }
        let orient = area >= 0 ? 1.0 : -1.0
        let edges = pts.indices.map { i -> (Point, Point) in
            let a = pts[i], b = pts[(i + 1) % pts.count], d = b - a
            let n = Point(-d.y, d.x) * (orient / max((d * d).sum().squareRoot(), 1e-9))
            return (a, n)
        }
        let xs = pts.map(\.x), ys = pts.map(\.y)
        fill(xs.min()!, ys.min()!, xs.max()!, ys.max()!, coverage: { p in
            var d = Double.infinity
            for (a, n) in edges { d = min(d, ((p - a) * n).sum()) }
            return d + 0.5
        }, color: color)
    }

    mutating func disc(_ c: Point, _ r: Double, color: (Point) -> RGB) {
        fill(c.x - r, c.y - r, c.x + r, c.y + r, coverage: { p in
            r - ((p - c) * (p - c)).sum().squareRoot() + 0.5
        }, color: color)
    }

    func image() -> RGBImage {
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<rgb.count {
            for c in 0..<3 { pixels[3 * i + c] = UInt8((min(max(rgb[i][c], 0), 1) * 255).rounded()) }
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}

// MARK: - Scene

private struct Palette {
    var skyTop, skyHorizon, sun, hillFar, hillNear: RGB
    var light: Double, glow: Double, clouds: Bool

    static func pick(_ rng: inout SplitMix64) -> Palette {
        switch Int(rng.unit() * 4) {
        case 0: return Palette(skyTop: RGB(0.22, 0.45, 0.85), skyHorizon: RGB(0.72, 0.84, 0.96), sun: RGB(1, 0.97, 0.8),
                               hillFar: RGB(0.45, 0.6, 0.55), hillNear: RGB(0.25, 0.5, 0.18),
                               light: 0.35, glow: 0.35, clouds: true)
        case 1: return Palette(skyTop: RGB(0.28, 0.2, 0.48), skyHorizon: RGB(1, 0.58, 0.3), sun: RGB(1, 0.8, 0.45),
                               hillFar: RGB(0.5, 0.35, 0.45), hillNear: RGB(0.22, 0.18, 0.2),
                               light: 0.3, glow: 0.6, clouds: false)
        case 2: return Palette(skyTop: RGB(0.02, 0.03, 0.1), skyHorizon: RGB(0.12, 0.17, 0.32), sun: RGB(0.92, 0.93, 0.85),
                               hillFar: RGB(0.12, 0.15, 0.25), hillNear: RGB(0.05, 0.08, 0.1),
                               light: 0.2, glow: 0.25, clouds: false)
        default: return Palette(skyTop: RGB(0.55, 0.58, 0.62), skyHorizon: RGB(0.82, 0.82, 0.8), sun: RGB(0.95, 0.95, 0.9),
                                hillFar: RGB(0.55, 0.6, 0.58), hillNear: RGB(0.35, 0.42, 0.25),
                                light: 0.15, glow: 0.1, clouds: true)
        }
    }
}

private struct Scene {
    var canvas: Canvas
    var rng: SplitMix64
    let w: Double, h: Double

    init(width: Int, height: Int, rng: SplitMix64) {
        canvas = Canvas(width: width, height: height)
        self.rng = rng
        w = Double(width)
        h = Double(height)
    }

    mutating func u(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * rng.unit() }

    mutating func jitter(_ c: RGB, _ amount: Double = 0.06) -> RGB {
        c + RGB(u(-amount, amount), u(-amount, amount), u(-amount, amount))
    }

    mutating func paint() {
        var pal = Palette.pick(&rng)
        pal.skyTop = jitter(pal.skyTop)
        pal.skyHorizon = jitter(pal.skyHorizon)
        pal.hillNear = jitter(pal.hillNear, 0.08)
        let horizon = h * u(0.42, 0.65)
        let sun = Point(w * u(0.1, 0.9), horizon * u(0.15, 0.7))
        let lightSide = sun.x < w / 2 ? -1.0 : 1.0
        sky(pal, horizon: horizon, sun: sun)
        if pal.clouds { clouds() }
        let ground = hills(pal, horizon: horizon, lightSide: lightSide)
        objects(ground: ground, lightSide: lightSide, light: pal.light)
        texture()
    }

    mutating func sky(_ pal: Palette, horizon: Double, sun: Point) {
        let r = min(w, h) * u(0.04, 0.09), glowR = r * 4
        let (top, bottom, glow) = (pal.skyTop, pal.skyHorizon, pal.glow)
        canvas.fill(0, 0, w, h, coverage: { _ in 1 }, color: { p in
            let t = min(p.y / horizon, 1)
            let d2 = ((p - sun) * (p - sun)).sum()
            return top + (bottom - top) * (t * t) + RGB(1, 0.9, 0.7) * (glow * exp(-d2 / (glowR * glowR)))
        })
        let sunColor = pal.sun
        canvas.disc(sun, r) { _ in sunColor }
    }

    mutating func clouds() {
        for _ in 0..<Int(u(1, 5)) {
            let c = Point(u(0, w), u(0.05, 0.35) * h), size = u(0.04, 0.09) * w
            let shade = u(0.85, 1)
            for k in 0..<4 {
                let center = c + Point(Double(k) * size * 0.7 - size, u(-0.3, 0.3) * size)
                canvas.disc(center, size * u(0.6, 1)) { p in RGB(repeating: shade - 0.1 * max(0, (p.y - center.y) / size)) }
            }
        }
    }

    /// Draws 2–4 hill layers back to front and returns the front layer's height profile.
    mutating func hills(_ pal: Palette, horizon: Double, lightSide: Double) -> (Double) -> Double {
        let layers = Int(u(2, 5))
        var front: (Double) -> Double = { _ in horizon }
        for i in 0..<layers {
            let t = Double(i) / Double(layers - 1)
            let base = horizon + t * (h - horizon) * 0.45
            let amp = h * u(0.03, 0.1) * (1 - 0.4 * t)
            let f = (u(1, 3), u(3, 6), u(6, 10)), ph = (u(0, 6.3), u(0, 6.3), u(0, 6.3))
            let (w, h) = (self.w, self.h)
            let profile: (Double) -> Double = { x in
                let s = x / w * 2 * .pi
                return base - amp * (0.5 * sin(f.0 * s + ph.0) + 0.3 * sin(f.1 * s + ph.1) + 0.2 * sin(f.2 * s + ph.2) + 0.6)
            }
            let color = pal.hillFar + (pal.hillNear - pal.hillFar) * t
            let haze = pal.skyHorizon, light = pal.light
            canvas.fill(0, base - amp * 1.7, w, h, coverage: { p in p.y - profile(p.x) + 0.5 }, color: { p in
                let slope = (profile(p.x + 1) - profile(p.x - 1)) / 2
                let below = p.y - profile(p.x)
                // Slope lighting fades below the ridge line, so it shades the crest, not a column.
                let lit = 1 - light * max(-1, min(1, slope * 2)) * lightSide * exp(-below / (0.08 * h))
                let depth = min(below / h * 2, 1)
                return (color * lit * (1 - 0.25 * depth)) * (0.6 + 0.4 * t) + haze * ((1 - t) * 0.4)
            })
            front = profile
        }
        return front
    }

    mutating func objects(ground: (Double) -> Double, lightSide: Double, light: Double) {
        for _ in 0..<Int(u(2, 7)) {
            let x = u(0.05, 0.95) * w, s = h * u(0.08, 0.18), y = ground(x) + s * u(0.05, 0.3)
            let kind = rng.unit()
            if kind < 0.4 { house(x, y, s, lightSide, light) } else if kind < 0.8 { tree(x, y, s, lightSide) } else { box(x, y, s, lightSide) }
        }
    }

    mutating func house(_ x: Double, _ y: Double, _ s: Double, _ side: Double, _ light: Double) {
        let walls = [RGB(0.85, 0.78, 0.62), RGB(0.62, 0.28, 0.2), RGB(0.9, 0.9, 0.88), RGB(0.45, 0.52, 0.6)]
        let wall = jitter(walls[Int(rng.unit() * 4)], 0.04), roof = jitter(RGB(0.45, 0.2, 0.15), 0.1)
        let hw = s * 0.5, wallTop = y - s * 0.7
        canvas.polygon([Point(x - hw, y), Point(x + hw, y), Point(x + hw, wallTop), Point(x - hw, wallTop)]) { p in
            wall * (1 + light * 0.5 * side * (p.x - x) / hw)
        }
        canvas.polygon([Point(x - hw * 1.15, wallTop), Point(x + hw * 1.15, wallTop), Point(x, wallTop - s * 0.45)]) { p in
            (p.x - x) * side > 0 ? roof * 1.15 : roof * 0.85
        }
        let dark = RGB(0.18, 0.12, 0.1), glass = rng.unit() < 0.5 ? RGB(0.95, 0.85, 0.45) : RGB(0.55, 0.65, 0.75)
        canvas.polygon([Point(x - s * 0.08, y), Point(x + s * 0.08, y), Point(x + s * 0.08, y - s * 0.35), Point(x - s * 0.08, y - s * 0.35)]) { _ in dark }
        for wx in [x - s * 0.3, x + s * 0.3] {
            canvas.polygon([Point(wx - s * 0.1, y - s * 0.3), Point(wx + s * 0.1, y - s * 0.3),
                            Point(wx + s * 0.1, y - s * 0.5), Point(wx - s * 0.1, y - s * 0.5)]) { _ in glass }
        }
    }

    mutating func tree(_ x: Double, _ y: Double, _ s: Double, _ side: Double) {
        let trunk = jitter(RGB(0.35, 0.22, 0.12), 0.04), leaves = jitter(RGB(0.18, 0.45, 0.15), 0.08)
        canvas.polygon([Point(x - s * 0.06, y), Point(x + s * 0.06, y), Point(x + s * 0.05, y - s * 0.5), Point(x - s * 0.05, y - s * 0.5)]) { _ in trunk }
        let c = Point(x, y - s * 0.75), r = s * u(0.3, 0.42)
        let lightDir = Point(side * 0.7, -0.7)
        canvas.disc(c, r) { p in leaves * (0.85 + 0.35 * ((p - c) * lightDir).sum() / r) }
    }

    mutating func box(_ x: Double, _ y: Double, _ s: Double, _ side: Double) {
        let base = jitter(RGB(0.6, 0.45, 0.3), 0.15), hw = s * 0.4, d = s * 0.25 * side
        let top = y - s * 0.7
        canvas.polygon([Point(x + hw * side, y), Point(x + hw * side + d, y - abs(d)),
                        Point(x + hw * side + d, top - abs(d)), Point(x + hw * side, top)]) { _ in base * 0.7 }
        canvas.polygon([Point(x - hw, top), Point(x + hw, top), Point(x + hw + d * (side > 0 ? 1 : 0), top - abs(d)),
                        Point(x - hw + d * (side < 0 ? 1 : 0), top - abs(d))]) { _ in base * 1.2 }
        canvas.polygon([Point(x - hw, y), Point(x + hw, y), Point(x + hw, top), Point(x - hw, top)]) { _ in base }
    }

    /// Two octaves of value noise and a fine grain, added to every pixel.
    mutating func texture() {
        let key = rng.next()
        func hash(_ x: Int, _ y: Int, _ k: UInt64) -> Double {
            var z = key &+ k &+ UInt64(truncatingIfNeeded: x) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(truncatingIfNeeded: y) &* 0xC2B2_AE3D_27D4_EB4F
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return Double((z ^ (z >> 31)) >> 40) / 16_777_216.0 - 0.5
        }
        func value(_ x: Double, _ y: Double, _ cell: Double, _ k: UInt64) -> Double {
            let fx = x / cell, fy = y / cell, ix = Int(fx.rounded(.down)), iy = Int(fy.rounded(.down))
            let tx = fx - Double(ix), ty = fy - Double(iy)
            let a = hash(ix, iy, k) + (hash(ix + 1, iy, k) - hash(ix, iy, k)) * tx
            let b = hash(ix, iy + 1, k) + (hash(ix + 1, iy + 1, k) - hash(ix, iy + 1, k)) * tx
            return a + (b - a) * ty
        }
        let cell = max(w, h) / 8
        for y in 0..<canvas.height {
            for x in 0..<canvas.width {
                let (px, py) = (Double(x), Double(y))
                let n = 0.08 * value(px, py, cell, 1) + 0.05 * value(px, py, cell / 4, 2) + 0.03 * hash(x, y, 3)
                canvas.rgb[y * canvas.width + x] *= 1 + n
            }
        }
    }
}
