import Foundation
import NSTModel
import XCTest

final class ContactSheetTests: XCTestCase {
    func testTilesAreCopiedInPlaceAndLabelled() throws {
        let tiles = SyntheticStyles.names.prefix(3).map { (label: $0, image: SyntheticStyles.image(named: $0, size: 64)!) }
        let sheet = ContactSheet.make(Array(tiles), tileSize: 64, columns: 2)
        // 2 columns, 2 rows: gap 12, cell 76 wide and 64 + 24 + 12 high.
        XCTAssertEqual(sheet.width, 12 + 2 * 76)
        XCTAssertEqual(sheet.height, 12 + 2 * 100)
        func pixel(_ img: RGBImage, _ x: Int, _ y: Int) -> [UInt8] { Array(img.pixels[(y * img.width + x) * 3..<(y * img.width + x) * 3 + 3]) }
        for (k, tile) in tiles.enumerated() {
            let x0 = 12 + (k % 2) * 76, y0 = 12 + (k / 2) * 100
            for (x, y) in [(0, 0), (63, 63), (10, 40)] {
                XCTAssertEqual(pixel(sheet, x0 + x, y0 + y), pixel(tile.image, x, y), "tile \(k) at \(x),\(y)")
            }
            // The label row under the tile has light text pixels.
            let labelRow = (y0 + 64 + 6)..<(y0 + 64 + 20)
            let lit = labelRow.flatMap { y in (x0..<x0 + 64).map { pixel(sheet, $0, y) } }.filter { $0[0] > 200 }
            XCTAssertGreaterThan(lit.count, 20, "label of tile \(k)")
        }
        if let path = ProcessInfo.processInfo.environment["CONTACT_SHEET_OUT"] {
            try ContactSheet.make(SyntheticStyles.names.map { ($0, SyntheticStyles.image(named: $0, size: 128)!) }, tileSize: 128)
                .write(to: URL(fileURLWithPath: path))
        }
    }
}
