import Foundation

/// The project's own style images: eight procedural art textures, each with its own palette and
/// mark-making, drawn from a `SplitMix64` seeded by `seed ^ fnv1a64(name)`, so the same arguments
/// give the same pixels. Lengths are designed for 256 px and scale with `size`.
public enum SyntheticStyles {
    /// The styles in a fixed order: Voronoi mosaic, curling waves, pop-art halftone, impressionist
    /// brush dabs, op-art stripes, van-Gogh swirls, cubist facets, ink blots.
    public static let names = ["mosaic", "waves", "dots", "brush", "stripes", "swirl", "cubist", "ink"]

    /// The style `name` as a `size`×`size` image, or nil for an unknown name or a size below 8.
    public static func image(named name: String, size: Int = 256, seed: UInt64 = 11) -> RGBImage? {
        guard size >= 8, names.contains(name) else { return nil }
        var p = Painter(size: size, seed: seed ^ fnv1a64(name))
        switch name {
        case "mosaic": p.mosaic()
        case "waves": p.waves()
        case "dots": p.dots()
        case "brush": p.brush()
        case "stripes": p.stripes()
        case "swirl": p.swirl()
        case "cubist": p.cubist()
        default: p.ink()
        }
        return p.canvas.image()
    }

    /// Writes `<name>.png` for every style into `dir` (created if needed); returns the URLs in
    /// `names` order.
    public static func writeAll(to dir: URL, size: Int = 256) throws(ImageError) -> [URL] {
        do {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: dir.path, reason: RGBImage.reason(error))
        }
        var urls: [URL] = []
        for name in names {
            let url = dir.appendingPathComponent(name + ".png")
            guard let img = image(named: name, size: size) else {
                throw .encodeFailed(path: url.path, reason: "style size \(size) is below 8")
            }
            try img.write(to: url)
            urls.append(url)
        }
        return urls
    }
}

// MARK: - Painter

private typealias RGB = StyleRGB
private typealias Point = StylePoint

/// Piecewise-linear colour ramp through `colours`, t in [0, 1].
private func ramp(_ colours: [RGB], _ t: Double) -> RGB {
    let x = clamp01(t) * Double(colours.count - 1), i = min(Int(x), colours.count - 2)
    return colours[i].mixed(colours[i + 1], x - Double(i))
}

/// Holds the canvas and the generator. Each style copies `k` and `s` into locals first, so that
/// the closures handed to the canvas do not read `self` while it is being modified.
private struct Painter {
    var canvas: StyleCanvas
    var rng: SplitMix64
    /// Side in pixels, and the scale of lengths given for a 256 px image.
    let s: Double, k: Double

    init(size: Int, seed: UInt64) {
        canvas = StyleCanvas(size: size, color: RGB(1, 1, 1))
        rng = SplitMix64(seed: seed)
        s = Double(size)
        k = s / 256
    }

    mutating func u(_ lo: Double, _ hi: Double) -> Double { lo + (hi - lo) * rng.unit() }
    mutating func pick(_ xs: [RGB]) -> RGB { xs[min(Int(rng.unit() * Double(xs.count)), xs.count - 1)] }
    mutating func noise() -> StyleNoise { StyleNoise(key: rng.next()) }
    mutating func point(margin: Double = 0) -> Point { Point(u(-margin, s + margin), u(-margin, s + margin)) }
}

// MARK: - Styles

extension Painter {
    /// Jittered-grid Voronoi tiles in jewel colours, glazed, set in dark grout.
    mutating func mosaic() {
        let k = self.k
        let jewels = [0x0e7c61, 0x1b3f9c, 0xa4162f, 0x6b2d8f, 0xd9a21b, 0x138d9a, 0x1f5e3a, 0x7a1039].map(RGB.init(hex:))
        let cell = 15 * k, n = Int((s / cell).rounded(.up)) + 2
        let tone = noise(), grain = noise()
        var sites: [Point] = [], colours: [RGB] = []
        for j in 0..<n {
            for i in 0..<n {
                let c = Point(Double(i - 1) + u(0.1, 0.9), Double(j - 1) + u(0.1, 0.9)) * cell
                let t = (tone.fbm(c / (70 * k), octaves: 3) + 0.6) / 1.2 * Double(jewels.count) + u(-0.7, 0.7)
                sites.append(c)
                colours.append(jewels[(Int(t.rounded(.down)) % 8 + 8) % 8] * u(0.82, 1.12))
            }
        }
        let grout = RGB(hex: 0x26221f), half = 1.1 * k
        canvas.shade(samples: 3) { p in
            let ci = Int(p.x / cell) + 1, cj = Int(p.y / cell) + 1
            var best = 0, bestD = Double.infinity
            for j in cj - 1...cj + 1 {
                for i in ci - 1...ci + 1 {
                    let d = sites[j * n + i] - p
                    if d.dot(d) < bestD { bestD = d.dot(d); best = j * n + i }
                }
            }
            let c = sites[best]
            var edge = Double.infinity
            for j in cj - 1...cj + 1 {
                for i in ci - 1...ci + 1 where j * n + i != best {
                    let o = sites[j * n + i], nrm = (o - c) / (o - c).length
                    edge = min(edge, ((c + o) / 2 - p).dot(nrm))
                }
            }
            if edge < half { return grout * (1 + 0.25 * grain.perlin(p.x / (2 * k), p.y / (2 * k))) }
            let glaze = 1 + 0.22 * (p - c).dot(Point(-0.6, -0.8)) / cell
            return colours[best] * glaze * (1 + 0.06 * grain.perlin(p.x / (3 * k), p.y / (3 * k)))
        }
    }

    /// Rows of breaking waves, back to front: Prussian-blue bodies with fine lines along the crest,
    /// cream foam rims, crest tips twisted into curls, and spray.
    mutating func waves() {
        let k = self.k
        let deep = RGB(hex: 0x0b2545), mid = RGB(hex: 0x1d5c96), lines = RGB(hex: 0xa9c8e2)
        let foam = RGB(hex: 0xf4efe2), sky = RGB(hex: 0xe6dcc3)
        var rows: [(base: Double, amp: Double, len: Double, crests: [Double], curls: [(c: Point, r: Double, a: Double)])] = []
        var y = -10 * k
        while y < s + 30 * k {
            let len = u(70, 100) * k, amp = u(20, 30) * k
            var crests: [Double] = [], curls: [(c: Point, r: Double, a: Double)] = []
            var x = u(-len, 0)
            while x < s + len {
                crests.append(x)
                curls.append((Point(x + 0.1 * len, y - amp + 0.16 * len), 0.2 * len, u(3.5, 5)))
                x += len * u(0.85, 1.15)
            }
            rows.append((y, amp, len, crests, curls))
            y += u(34, 44) * k
        }
        canvas.shade(samples: 3) { p in
            for row in rows.reversed() {
                var q = p
                for v in row.curls {
                    let d = q - v.c, r2 = d.dot(d), rr = v.r * v.r
                    if r2 < 9 * rr { q = v.c + d.rotated(v.a * exp(-r2 / rr)) }
                }
                var h = 0.0
                for x in row.crests {
                    let t = (q.x - x) / row.len / (q.x > x ? 0.16 : 0.32)
                    h = max(h, exp(-t * t))
                }
                let depth = q.y - (row.base - row.amp * h)
                if depth <= 0 { continue }
                if depth < (2 + 5 * h * h * h * h) * k { return foam }
                let f = depth / (5 * k)
                return f - f.rounded(.down) < 0.2 && depth < 34 * k ? lines : mid.mixed(deep, clamp01(depth / (40 * k)))
            }
            return sky
        }
        for row in rows {
            for x in row.crests {
                for _ in 0..<6 {
                    let at = Point(x + u(-0.05, 0.3) * row.len, row.base - row.amp - u(2, 14) * k)
                    canvas.stroke(at, at, r: u(0.8, 1.8) * k, color: foam)
                }
            }
        }
    }

    /// Pop-art Ben-Day dots: blob regions in bold primaries with black outlines.
    mutating func dots() {
        let k = self.k
        let red = RGB(hex: 0xe0282e), yellow = RGB(hex: 0xffd319), blue = RGB(hex: 0x1f5fd1)
        let white = RGB(hex: 0xfbf8ef), black = RGB(hex: 0x121212)
        let schemes = [(yellow, red), (white, blue), (red, yellow), (blue, white), (white, red)]
        let regions = noise(), tones = noise()
        let field = StyleGrid(size: canvas.n) { p in regions.fbm(p / (80 * k), octaves: 3) }
        let tone = StyleGrid(size: canvas.n) { p in tones.fbm(p / (50 * k), octaves: 2) }
        let pitch = 9 * k, line = 2 * k, thresholds = [-0.22, -0.07, 0.07, 0.22]
        canvas.shade(samples: 3) { p in
            let f = field.at(p), slope = field.slope(p)
            var level = 0, edge = Double.infinity
            for t in thresholds {
                if f > t { level += 1 }
                edge = min(edge, abs(f - t) / slope)
            }
            if edge < line / 2 { return black }
            let (ground, dot) = schemes[level]
            let g = (p / pitch).rotated(.pi / 4), c = g.rounded(.toNearestOrAwayFromZero)
            return (g - c).length < 0.12 + 0.3 * clamp01(0.5 + 1.5 * tone.at(p)) ? dot : ground
        }
    }
}

extension Painter {
    /// Impressionist dabs: short tapering strokes along a smooth flow, warm palette, a few cool notes.
    mutating func brush() {
        let k = self.k
        let warm = [0x6e2418, 0xa8402a, 0xd9683a, 0xee9a45, 0xf5c566, 0xfbe5b0, 0xe07a6e, 0xc2455a].map(RGB.init(hex:))
        let accents = [0x7d8f4e, 0x9a86b8, 0x6f94a8].map(RGB.init(hex:))
        let flow = noise(), hue = noise(), base = u(0, .pi)
        canvas.shade(samples: 1) { p in ramp(warm, 0.5 + hue.fbm(p / (120 * k), octaves: 3)) * 0.8 }
        let count = Int(1400 * k * k)
        for i in 0..<count {
            let p = point(margin: 10 * k), big = i < count * 2 / 5
            let len = (big ? u(16, 26) : u(9, 16)) * k, r = (big ? u(4.5, 6.5) : u(2.5, 3.8)) * k
            let a = base + 1.8 * flow.fbm(p / (110 * k), octaves: 2) + u(-0.3, 0.3)
            var c = ramp(warm, 0.5 + hue.fbm(p / (120 * k), octaves: 3) + u(-0.14, 0.14)) * u(0.9, 1.1)
            if !big && rng.unit() < 0.04 { c = pick(accents) }
            let d = Point(cos(a), sin(a)) * (len / 2), phase = u(0, 6.28)
            canvas.stroke(p - d, p, r: r, color: c, alpha: 0.95, streaks: 0.15, phase: phase)
            canvas.stroke(p, p + d, r: r * 0.7, color: c, alpha: 0.95, streaks: 0.15, dry: 0.15, phase: phase)
        }
    }

    /// Op-art diagonal bands bent by lens-like bulges, black and white with red and cobalt bands.
    mutating func stripes() {
        let k = self.k
        let black = RGB(hex: 0x111111), white = RGB(hex: 0xf6f3ea), red = RGB(hex: 0xd62839), cobalt = RGB(hex: 0x1747b8)
        var bulges: [(c: Point, r: Double, a: Double)] = []
        for _ in 0..<5 { bulges.append((point(), u(50, 90) * k, (rng.unit() < 0.5 ? -1 : 1) * u(1.5, 3))) }
        let period = 16 * k, phase = u(0, 6.28), wave = u(40, 70) * k
        canvas.shade(samples: 3) { p in
            let along = (p.x + p.y) * 0.7071, across = (p.x - p.y) * 0.7071
            var phi = along / period + 0.8 * sin(across / wave + phase), squeeze = 0.0
            for b in bulges {
                let d = p - b.c, e = exp(-d.dot(d) / (b.r * b.r))
                phi += b.a * e
                squeeze += e
            }
            let i = Int(phi.rounded(.down)), f = phi - Double(i)
            guard f < 0.5 + 0.3 * tanh(2 * squeeze - 0.8) else { return white }
            switch (i % 7 + 7) % 7 {
            case 3: return red
            case 6: return cobalt
            default: return black
            }
        }
    }

    /// Van-Gogh swirls: curved strokes following eddies in a flowing field, blues with yellow cores.
    mutating func swirl() {
        let k = self.k
        let blues = [0x0d1f4f, 0x163a7a, 0x2455a4, 0x3d74bd, 0x6c9bd2, 0x2b6f8a].map(RGB.init(hex:))
        let lights = [0xf4d03f, 0xf9e79f, 0xfdf6d8, 0xe8b923].map(RGB.init(hex:))
        var eddies: [(c: Point, r: Double, spin: Double)] = []
        for _ in 0..<Int(u(5, 8)) { eddies.append((point(), u(28, 55) * k, rng.unit() < 0.5 ? -1 : 1)) }
        let drift = noise()
        func flow(_ p: Point) -> Point {
            var v = Point(1, 0.8 * drift.fbm(p / (70 * k), octaves: 2))
            for e in eddies {
                let d = p - e.c
                v += Point(-d.y, d.x) * (3.5 * e.spin / e.r * exp(-d.dot(d) / (e.r * e.r)))
            }
            return v / max(v.length, 1e-6)
        }
        canvas.shade(samples: 1) { p in ramp(Array(blues[0...2]), 0.5 + drift.fbm(p / (40 * k), octaves: 3)) }
        for _ in 0..<Int(2000 * k * k) {
            var p = point(margin: 6 * k)
            var near = Double.infinity
            for e in eddies { near = min(near, (p - e.c).length / e.r) }
            let c = near < 0.45 ? pick(lights) : (near < 0.9 && rng.unit() < 0.5 ? pick(Array(blues[3...5])) : pick(blues))
            let r = u(1.4, 2.2) * k, step = u(2.5, 3.5) * k, phase = u(0, 6.28)
            for _ in 0..<5 {
                let q = p + flow(p + flow(p) * (step / 2)) * step
                canvas.stroke(p, q, r: r, color: c, streaks: 0.1, phase: phase)
                p = q
            }
        }
    }

    /// Cubist facets: overlapping flat polygons in ochres, umbers and greys, with dark outlines.
    mutating func cubist() {
        let k = self.k
        let tones = [0xc8a25a, 0xa86a34, 0x6b4e33, 0x8d8a82, 0xcdc6b4, 0x7f7b4e, 0x4f5863, 0xe3d3ac, 0x9b3f2b].map(RGB.init(hex:))
        let outline = RGB(hex: 0x2a211b), grain = noise()
        canvas.shade(samples: 1) { p in RGB(hex: 0xb59a6c) * (1 + 0.06 * grain.fbm(p / (6 * k), octaves: 2)) }
        for i in 0..<50 {
            let c = point(margin: 20 * k), rad = (i < 20 ? u(50, 95) : u(18, 45)) * k
            let sides = Int(u(3, 6)), start = u(0, 2 * .pi)
            var pts: [Point] = []
            for j in 0..<sides {
                let a = start + (Double(j) + u(-0.3, 0.3)) * 2 * .pi / Double(sides)
                pts.append(c + Point(cos(a), sin(a)) * (rad * u(0.75, 1)))
            }
            let base = pick(tones) * u(0.9, 1.1), la = u(0, 2 * .pi), light = Point(cos(la), sin(la))
            let hatch = rng.unit() < 0.3 ? Point(cos(la + 1), sin(la + 1)) * (2 * .pi / (4 * k)) : Point(0, 0)
            canvas.polygon(pts, alpha: u(0.8, 1), line: u(1.2, 2.2) * k, lineColor: outline) { p in
                let h = max(0, sin(p.dot(hatch)))
                return base * (1 + 0.18 * (p - c).dot(light) / rad) * (1 - 0.16 * h * h)
            }
        }
    }

    /// Black ink blots with ragged edges, grey washes, splatter and a few tapering brush sweeps on paper.
    mutating func ink() {
        let k = self.k, s = self.s
        let paper = RGB(hex: 0xf1e9d6), black = RGB(hex: 0x15120f), wash = RGB(hex: 0x7c766d)
        let fibre = noise(), centre = Point(s, s) / 2
        canvas.shade(samples: 1) { p in
            let v = (p - centre).length / s
            return paper * (1 + 0.03 * fibre.fbm(Point(p.x / (40 * k), p.y / (3 * k)), octaves: 3) - 0.12 * v * v)
        }
        let blots = Int(u(8, 11))
        for i in 0..<blots {
            let c = point(margin: -20 * k), rad = u(12, 34) * k, isWash = i < 3, edge = noise()
            canvas.blend(c - 1.6 * rad, c + 1.6 * rad) { p in
                let d = p - c, inside = rad * (1 + 0.35 * edge.fbm(d / (rad * 0.6), octaves: 4)) - d.length
                // A wash dries with a darker rim; a blot is solid.
                let alpha = isWash ? 0.18 + 0.22 * exp(-max(inside, 0) / (3 * k)) : 1
                return (isWash ? wash : black, clamp01(inside + 0.5) * alpha)
            }
            if isWash { continue }
            for _ in 0..<Int(u(25, 55)) {
                let a = u(0, 2 * .pi), dist = rad * u(1, 2.6), dir = Point(cos(a), sin(a))
                let pr = max(0.6, (3.2 - dist / rad) * u(0.5, 1.6)) * k, at = c + dir * dist
                let tail = rng.unit() < 0.3 ? dir * (pr * 2.5) : Point(0, 0)
                canvas.stroke(at - tail, at, r: pr, color: black)
            }
        }
        for _ in 0..<3 {
            let p0 = point(), p1 = point(), p2 = point(), width = u(7, 11) * k, phase = u(0, 6.28)
            var prev = p0
            for j in 1...48 {
                let t = Double(j) / 48, q = p0 * ((1 - t) * (1 - t)) + p1 * (2 * t * (1 - t)) + p2 * (t * t)
                let r = width * (1 - 0.65 * t) * (0.6 + 0.4 * sin(.pi * min(1, t * 3)))
                canvas.stroke(prev, q, r: r, color: black, dry: max(0, t - 0.5) * 1.2, phase: phase)
                prev = q
            }
        }
    }
}
