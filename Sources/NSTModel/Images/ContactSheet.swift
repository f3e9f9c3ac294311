/// A grid of labelled images in one PNG-ready picture: the demo's "one content image beside its
/// stylisations", and `orchestrator gallery`'s trials of a sweep.
public enum ContactSheet {
    /// Lays `tiles` out left to right, `columns` per row, each resized to `tileSize`×`tileSize`
    /// with its label underneath in a 5×7 pixel font (scaled ×`labelScale`), on a dark
    /// background. A label may have several lines (`\n`); each is upper-cased, centred and cut
    /// to the tile's width, and every label gets the room of the longest.
    public static func make(_ tiles: [(label: String, image: RGBImage)], tileSize: Int = 256, columns: Int? = nil,
                            labelScale: Int = 2) -> RGBImage {
        let cols = max(1, min(columns ?? tiles.count, max(tiles.count, 1)))
        let rows = max(1, (tiles.count + cols - 1) / cols)
        let scale = max(1, labelScale)
        let lines = tiles.map { $0.label.split(separator: "\n", omittingEmptySubsequences: false) }
        let gap = 12, lineH = 7 * scale + 4, labelH = 6 + lineH * max(1, lines.map(\.count).max() ?? 1)
        let cellW = tileSize + gap, cellH = tileSize + labelH + gap
        let width = gap + cols * cellW, height = gap + rows * cellH
        var sheet = RGBImage(width: width, height: height,
                             pixels: [UInt8](repeating: 0, count: width * height * 3))
        for i in 0..<sheet.pixels.count / 3 { sheet.pixels[3 * i] = 24; sheet.pixels[3 * i + 1] = 26; sheet.pixels[3 * i + 2] = 30 }
        for (k, tile) in tiles.enumerated() {
            let x0 = gap + (k % cols) * cellW, y0 = gap + (k / cols) * cellH
            let img = tile.image.width == tileSize && tile.image.height == tileSize
                ? tile.image : tile.image.resized(width: tileSize, height: tileSize)
            for y in 0..<tileSize {
                let src = y * tileSize * 3, dst = ((y0 + y) * width + x0) * 3
                sheet.pixels.replaceSubrange(dst..<dst + tileSize * 3, with: img.pixels[src..<src + tileSize * 3])
            }
            for (n, line) in lines[k].enumerated() {
                let text = String(line.uppercased().prefix(tileSize / (6 * scale)))
                let tx = x0 + max(0, (tileSize - text.count * 6 * scale) / 2)
                draw(text, into: &sheet, x: tx, y: y0 + tileSize + 6 + n * lineH, scale: scale)
            }
        }
        return sheet
    }

    /// Draws `text` with its top-left corner at (x, y) in `colour` (characters without a glyph
    /// are blank; pixels outside the image are dropped).
    static func draw(_ text: String, into img: inout RGBImage, x: Int, y: Int, scale: Int,
                     colour: (UInt8, UInt8, UInt8) = (235, 235, 240)) {
        for (k, ch) in text.enumerated() {
            guard let rows = glyphs[ch] else { continue }
            for (r, bits) in rows.enumerated() {
                for c in 0..<5 where bits & (1 << (4 - c)) != 0 {
                    for dy in 0..<scale {
                        for dx in 0..<scale {
                            let px = x + k * 6 * scale + c * scale + dx, py = y + r * scale + dy
                            guard px >= 0, py >= 0, px < img.width, py < img.height else { continue }
                            let i = (py * img.width + px) * 3
                            img.pixels[i] = colour.0; img.pixels[i + 1] = colour.1; img.pixels[i + 2] = colour.2
                        }
                    }
                }
            }
        }
    }

    /// 5×7 glyphs, one 5-bit row each (top row first).
    static let glyphs: [Character: [UInt8]] = [
        "A": [14, 17, 17, 31, 17, 17, 17], "B": [30, 17, 17, 30, 17, 17, 30], "C": [14, 17, 16, 16, 16, 17, 14],
        "D": [30, 17, 17, 17, 17, 17, 30], "E": [31, 16, 16, 30, 16, 16, 31], "F": [31, 16, 16, 30, 16, 16, 16],
        "G": [14, 17, 16, 23, 17, 17, 15], "H": [17, 17, 17, 31, 17, 17, 17], "I": [14, 4, 4, 4, 4, 4, 14],
        "J": [7, 2, 2, 2, 2, 18, 12], "K": [17, 18, 20, 24, 20, 18, 17], "L": [16, 16, 16, 16, 16, 16, 31],
        "M": [17, 27, 21, 21, 17, 17, 17], "N": [17, 17, 25, 21, 19, 17, 17], "O": [14, 17, 17, 17, 17, 17, 14],
        "P": [30, 17, 17, 30, 16, 16, 16], "Q": [14, 17, 17, 17, 21, 18, 13], "R": [30, 17, 17, 30, 20, 18, 17],
        "S": [15, 16, 16, 14, 1, 1, 30], "T": [31, 4, 4, 4, 4, 4, 4], "U": [17, 17, 17, 17, 17, 17, 14],
        "V": [17, 17, 17, 17, 17, 10, 4], "W": [17, 17, 17, 21, 21, 21, 10], "X": [17, 17, 10, 4, 10, 17, 17],
        "Y": [17, 17, 10, 4, 4, 4, 4], "Z": [31, 1, 2, 4, 8, 16, 31],
        "0": [14, 17, 19, 21, 25, 17, 14], "1": [4, 12, 4, 4, 4, 4, 14], "2": [14, 17, 1, 2, 4, 8, 31],
        "3": [31, 2, 4, 2, 1, 17, 14], "4": [2, 6, 10, 18, 31, 2, 2], "5": [31, 16, 30, 1, 1, 17, 14],
        "6": [6, 8, 16, 30, 17, 17, 14], "7": [31, 1, 2, 4, 8, 8, 8], "8": [14, 17, 17, 14, 17, 17, 14],
        "9": [14, 17, 17, 15, 1, 2, 12], "-": [0, 0, 0, 31, 0, 0, 0], "_": [0, 0, 0, 0, 0, 0, 31],
        ".": [0, 0, 0, 0, 0, 12, 12], ":": [0, 12, 12, 0, 12, 12, 0], "/": [1, 1, 2, 4, 8, 16, 16],
        "(": [2, 4, 8, 8, 8, 4, 2], ")": [8, 4, 2, 2, 2, 4, 8], " ": [0, 0, 0, 0, 0, 0, 0],
        "=": [0, 0, 31, 0, 31, 0, 0], ",": [0, 0, 0, 0, 12, 4, 8], "+": [0, 4, 4, 31, 4, 4, 0],
        "#": [10, 10, 31, 10, 31, 10, 10], "%": [24, 25, 2, 4, 8, 19, 3], "'": [4, 4, 8, 0, 0, 0, 0],
        "*": [0, 4, 21, 14, 21, 4, 0], "?": [14, 17, 1, 2, 4, 0, 4], "!": [4, 4, 4, 4, 4, 0, 4],
    ]

    /// Width in pixels of `text` drawn at `scale` (6 columns a character, the last one blank).
    static func textWidth(_ text: String, scale: Int) -> Int { text.count * 6 * scale }
}
