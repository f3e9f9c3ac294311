import Foundation

/// A log–log scatter plot drawn into an `RGBImage` with the contact sheet's 5×7 font:
/// `orchestrator gallery`'s content-against-style panel. Points marked as on the front are drawn
/// in their own colour and joined, in the order given, by a line of that colour.
///
/// Pure: the same points give the same pixels. Only points with both coordinates finite and
/// positive are drawn (a log axis has no place for the others).
public enum ScatterPlot {
    /// One point: a short label drawn beside it (a trial number), and whether it is on the front.
    public struct Point: Sendable, Equatable {
        public var label: String
        public var x: Double
        public var y: Double
        public var front: Bool

        public init(label: String, x: Double, y: Double, front: Bool) {
            self.label = label
            self.x = x
            self.y = y
            self.front = front
        }

        var isDrawable: Bool { x.isFinite && y.isFinite && x > 0 && y > 0 }
    }

    // MARK: - Colours

    public typealias Colour = (UInt8, UInt8, UInt8)
    public static let background: Colour = (24, 26, 30)
    public static let plotArea: Colour = (19, 22, 27)
    public static let grid: Colour = (44, 49, 58)
    public static let text: Colour = (150, 158, 172)
    /// Points off the front.
    public static let pointColour: Colour = (88, 166, 255)
    /// Points on the front and the line joining them.
    public static let frontColour: Colour = (240, 136, 62)

    // MARK: - Layout

    /// Where the plot area lies in the image and which decades (log10) its axes span.
    public struct Layout: Sendable {
        public let width: Int, height: Int
        public let left: Int, top: Int, right: Int, bottom: Int
        public let x0: Double, x1: Double, y0: Double, y1: Double

        /// The pixel of data point (x, y), both positive and finite.
        public func pixel(x: Double, y: Double) -> (x: Int, y: Int) {
            let fx = (log10(x) - x0) / (x1 - x0), fy = (log10(y) - y0) / (y1 - y0)
            return (left + Int((fx * Double(right - left)).rounded()), bottom - Int((fy * Double(bottom - top)).rounded()))
        }
    }

    /// The layout of `points` in a `width`×`height` image: each axis spans its drawable values
    /// with a tenth of a decade to spare, and at least one decade.
    public static func layout(_ points: [Point], width: Int, height: Int) -> Layout {
        let drawn = points.filter(\.isDrawable)
        func span(_ values: [Double]) -> (Double, Double) {
            guard let lo = values.min().map(log10), let hi = values.max().map(log10) else { return (-1, 1) }
            let mid = (lo + hi) / 2, half = max((hi - lo) / 2 + 0.1, 0.5)
            return (mid - half, mid + half)
        }
        let (x0, x1) = span(drawn.map(\.x)), (y0, y1) = span(drawn.map(\.y))
        let labelChars = ticks(from: y0, to: y1).map { tickLabel($0).count }.max() ?? 3
        return Layout(width: width, height: height, left: 14 + 6 * labelChars,
                      top: 26, right: width - 18, bottom: height - 36, x0: x0, x1: x1, y0: y0, y1: y1)
    }

    // MARK: - Drawing

    /// The plot of `points` with axis titles `xTitle` and `yTitle`, on a dark background.
    public static func render(_ points: [Point], width: Int = 480, height: Int = 360,
                              xTitle: String, yTitle: String) -> RGBImage {
        precondition(width >= 120 && height >= 100, "a scatter plot of \(width)x\(height)")
        let l = layout(points, width: width, height: height)
        var img = RGBImage(width: width, height: height, pixels: [UInt8](repeating: 0, count: width * height * 3))
        fill(&img, 0..<width, 0..<height, background)
        fill(&img, l.left..<l.right + 1, l.top..<l.bottom + 1, plotArea)
        for v in ticks(from: l.x0, to: l.x1) {
            let px = l.pixel(x: v, y: pow(10, l.y0)).x
            fill(&img, px..<px + 1, l.top..<l.bottom + 1, grid)
            let label = tickLabel(v), w = ContactSheet.textWidth(label, scale: 1)
            ContactSheet.draw(label, into: &img, x: px - w / 2, y: l.bottom + 6, scale: 1, colour: text)
        }
        for v in ticks(from: l.y0, to: l.y1) {
            let py = l.pixel(x: pow(10, l.x0), y: v).y
            fill(&img, l.left..<l.right + 1, py..<py + 1, grid)
            let label = tickLabel(v)
            ContactSheet.draw(label, into: &img, x: l.left - 6 - ContactSheet.textWidth(label, scale: 1) + 1, y: py - 3,
                              scale: 1, colour: text)
        }
        let xt = xTitle.uppercased(), yt = yTitle.uppercased()
        ContactSheet.draw(xt, into: &img, x: (l.left + l.right - ContactSheet.textWidth(xt, scale: 1)) / 2,
                          y: height - 14, scale: 1, colour: text)
        ContactSheet.draw(yt, into: &img, x: 8, y: 10, scale: 1, colour: text)

        let drawn = points.filter(\.isDrawable)
        let front = drawn.filter(\.front).map { l.pixel(x: $0.x, y: $0.y) }
        for (a, b) in zip(front, front.dropFirst()) { line(&img, from: a, to: b, frontColour) }
        // Off-front points first, so that the front's markers stay on top.
        for p in drawn.sorted(by: { !$0.front && $1.front }) {
            let c = l.pixel(x: p.x, y: p.y), colour = p.front ? frontColour : pointColour
            disc(&img, c, radius: p.front ? 4 : 3, colour)
            ContactSheet.draw(p.label.uppercased(), into: &img, x: c.x + 6, y: c.y - 10, scale: 1, colour: colour)
        }
        return img
    }

    // MARK: - Ticks

    /// Values to mark between 10^a and 10^b: 1-2-5 multiples of each decade when the axis spans
    /// less than one and a half decades, 1-3 multiples up to three, else decades (a decade-aligned
    /// axis of three or more holds at least three).
    public static func ticks(from a: Double, to b: Double) -> [Double] {
        guard a.isFinite, b.isFinite, b > a, b - a < 700 else { return [] }
        let multiples: [Double] = b - a < 1.5 ? [1, 2, 5] : (b - a < 3 ? [1, 3] : [1])
        let step = b - a > 12 ? Int((b - a) / 6) : 1
        return stride(from: Int(floor(a)), through: Int(ceil(b)), by: step)
            .flatMap { e in multiples.map { $0 * pow(10, Double(e)) } }
            .filter { log10($0) >= a && log10($0) <= b }
    }

    /// `0.2`, `500`, or `2E-5` outside 0.01…9999 (the font has capitals only).
    public static func tickLabel(_ v: Double) -> String {
        if v >= 0.01 && v < 10_000 { return String(format: "%g", v) }
        let e = Int(floor(log10(v) + 1e-9))
        return String(format: "%gE%d", (v / pow(10, Double(e)) * 1000).rounded() / 1000, e)
    }

    // MARK: - Pixels

    static func set(_ img: inout RGBImage, _ x: Int, _ y: Int, _ c: Colour) {
        guard x >= 0, y >= 0, x < img.width, y < img.height else { return }
        let i = (y * img.width + x) * 3
        img.pixels[i] = c.0; img.pixels[i + 1] = c.1; img.pixels[i + 2] = c.2
    }

    static func fill(_ img: inout RGBImage, _ xs: Range<Int>, _ ys: Range<Int>, _ c: Colour) {
        for y in ys { for x in xs { set(&img, x, y, c) } }
    }

    static func disc(_ img: inout RGBImage, _ c: (x: Int, y: Int), radius r: Int, _ colour: Colour) {
        for dy in -r...r { for dx in -r...r where dx * dx + dy * dy <= r * r { set(&img, c.x + dx, c.y + dy, colour) } }
    }

    /// A line two pixels thick from `a` to `b` (one step per pixel of the longer axis).
    static func line(_ img: inout RGBImage, from a: (x: Int, y: Int), to b: (x: Int, y: Int), _ c: Colour) {
        let n = max(abs(b.x - a.x), abs(b.y - a.y), 1)
        for i in 0...n {
            let x = a.x + (b.x - a.x) * i / n, y = a.y + (b.y - a.y) * i / n
            set(&img, x, y, c); set(&img, x + 1, y, c); set(&img, x, y + 1, c)
        }
    }
}
