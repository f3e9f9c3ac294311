import CoordinatorAPI
import Foundation
import XCTest

/// The dataset manifest's canonical form, digest, training order and validation.
final class DatasetManifestTests: XCTestCase {
    static let a = String(repeating: "a", count: 64), b = String(repeating: "b", count: 64)
    static let c = String(repeating: "c", count: 64), d = String(repeating: "d", count: 64)

    /// Three files in two shards (5 + 3 bytes, then 4), one excluded between them.
    func sample() -> DatasetManifest {
        DatasetManifest(name: "coco", files: [
            .init(path: "x/1.jpg", size: 5, sha256: Self.a, shard: 0, offset: 0, length: 5),
            .init(path: "x/3.jpg", size: 3, sha256: Self.b, shard: 0, offset: 5, length: 3),
            .init(path: "y.png", size: 4, sha256: Self.c, shard: 1, offset: 0, length: 4),
        ], excluded: [.init(path: "x/2.jpg", reason: "corrupt image x/2.jpg: Premature end of JPEG file")],
        shards: [.init(sha256: Self.d, size: 8), .init(sha256: Self.a, size: 4)])
    }

    func testCanonicalJSONIsSortedCompactAndItsHashIsTheDigest() throws {
        let m = sample()
        let json = String(decoding: try m.canonicalJSON(), as: UTF8.self)
        let expected = #"{"excluded":[{"path":"x/2.jpg","reason":"corrupt image x/2.jpg: Premature end of JPEG file"}],"#
            + #""files":[{"length":5,"offset":0,"path":"x/1.jpg","sha256":"\#(Self.a)","shard":0,"size":5},"#
            + #"{"length":3,"offset":5,"path":"x/3.jpg","sha256":"\#(Self.b)","shard":0,"size":3},"#
            + #"{"length":4,"offset":0,"path":"y.png","sha256":"\#(Self.c)","shard":1,"size":4}],"#
            + #""format":1,"name":"coco","shards":[{"sha256":"\#(Self.d)","size":8},{"sha256":"\#(Self.a)","size":4}],"#
            + #""totals":{"bytes":12,"excluded":1,"files":3,"shards":2}}"#
        XCTAssertEqual(json, expected)
        XCTAssertEqual(try m.digest(), FileDigest.sha256(of: Data(expected.utf8)))
        XCTAssertEqual(try DatasetManifest.decode(Data(expected.utf8), digest: m.digest()), m)
        var renamed = m
        renamed.name = "coco2"
        XCTAssertNotEqual(try renamed.digest(), try m.digest())
    }

    func testTrainingOrderMergesFilesAndExcludedByPathBytes() {
        XCTAssertEqual(sample().trainingOrder, [.file(0), .excluded(0), .file(1), .file(2)])
        XCTAssertTrue(DatasetManifest.precedes("B.jpg", "a.jpg"), "byte order: upper case first")
        XCTAssertTrue(DatasetManifest.precedes("a/b.jpg", "a_b.jpg"), "'/' (0x2F) before '_' (0x5F)")
        XCTAssertTrue(DatasetManifest.precedes("z.jpg", "é.jpg"), "UTF-8 bytes, as Python sorts str")
    }

    func testBytesThatDoNotHashToTheDigestAreRefused() throws {
        let json = try sample().canonicalJSON()
        XCTAssertThrowsError(try DatasetManifest.decode(json, digest: Self.a)) {
            XCTAssertEqual($0 as? DatasetManifestError, .digestMismatch(expected: Self.a, actual: FileDigest.sha256(of: json)))
        }
        XCTAssertThrowsError(try DatasetManifest.decode(Data("{\"format\": 1}".utf8))) {
            XCTAssertTrue("\($0)".contains("missing key"), "\($0)")
        }
    }

    func testEveryBrokenRuleIsReported() {
        XCTAssertEqual(sample().problems(), [])
        func problems(_ change: (inout DatasetManifest) -> Void) -> [String] {
            var m = sample()
            change(&m)
            return m.problems()
        }
        XCTAssertEqual(problems { $0.format = 2 }, ["format 2 is not 1, the one this program reads"])
        XCTAssertEqual(problems { $0.files[1].path = "../etc/passwd" }.first,
                       "files[1].path: has an empty, '.' or '..' component: \"../etc/passwd\"")
        XCTAssertEqual(problems { $0.excluded[0].path = "/abs.jpg" }, ["excluded[0].path: absolute"])
        XCTAssertTrue(problems { $0.files.swapAt(0, 1) }.contains("files[1].path is not after files[0].path"))
        XCTAssertEqual(problems { $0.files[2].offset = 1 }.first,
                       "files[2] at shard 1 offset 1; expected shard 1 offset 0 (files fill shards in order)")
        XCTAssertEqual(problems { $0.files[1].offset = 6 }.first,
                       "files[1] at shard 0 offset 6; expected shard 0 offset 5 (files fill shards in order)")
        XCTAssertEqual(problems { $0.files[2].shard = 7 }, ["files[2].shard 7 is not a shard index"])
        XCTAssertEqual(problems { $0.shards[0].size = 9 }, ["files[2] at shard 1 offset 0; expected shard 0 offset 8 (files fill shards in order)"])
        XCTAssertEqual(problems { $0.shards[1].size = 5 }, ["the files fill shards up to shard 1 offset 4, not all 2 shards exactly"])
        XCTAssertEqual(problems { $0.shards[1].size = 3 }, ["files[2] ends at 4, past shard 1's 3 bytes"])
        XCTAssertEqual(problems { $0.files[0].length = 4 }.first, "files[0]: size 5 and length 4 must be equal and in 0...1073741824")
        XCTAssertEqual(problems { $0.files[0].sha256 = "ABC" }, ["files[0].sha256 is not 64 lowercase hex digits"])
        XCTAssertEqual(problems { $0.excluded[0].path = "x/1.jpg" }.last, "excluded[0].path is also in files")
        XCTAssertEqual(problems { $0.totals.bytes = 13 }.count, 1)
        XCTAssertEqual(problems { $0.name = "a b" }.count, 1)
        XCTAssertEqual(problems { $0.shards[0].size = -1 }.first, "shards[0].size -1 is not in 1...4294967296")
    }
}
