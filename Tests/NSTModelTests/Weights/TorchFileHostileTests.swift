import Foundation
@testable import NSTModel
import XCTest

/// Hostile and broken `.pth` files, built byte by byte: each must be refused with the right
/// `WeightsError` case, naming the file, and nothing may crash or allocate what the file merely claims.
final class TorchFileHostileTests: XCTestCase {
    private var folder: URL!

    override func setUpWithError() throws {
        folder = FileManager.default.temporaryDirectory.appendingPathComponent("TorchFileHostile-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: folder) }

    /// A zip with `data.pkl` = `pickle` and the given storages, read through the public entry point.
    private func readZip(_ pickle: PickleBytes, storages: [String: [UInt8]] = [:], extra: [(String, [UInt8])] = [],
                         name: String = "f.pth") throws -> (url: URL, read: () throws -> SafeTensors) {
        let url = folder.appendingPathComponent(name)
        var records: [(path: String, bytes: [UInt8])] = [("data.pkl", pickle.bytes)]
        records += storages.sorted { $0.key < $1.key }.map { ("data/\($0.key)", $0.value) }
        records += extra.map { (path: $0.0, bytes: $0.1) }
        try writeTorchZip(records, to: url)
        return (url, { try WeightsFile.read(contentsOf: url) })
    }

    private func unpickle(_ p: PickleBytes) throws(WeightsError) -> PickleValue {
        var u = Unpickler(data: p.data, file: "t.pth", source: "data.pkl")
        return try u.load()
    }

    // MARK: - A hand-made file that is fine, as a baseline

    func testHandMadeStateDictReads() throws {
        let t = FakeTensor(name: "w", key: "0", count: 6, offset: 1, size: [2, 2], stride: [1, 2])
        let f = try readZip(.stateDict([t]), storages: ["0": float32Bytes([0, 1, 2, 3, 4, 5])])
        XCTAssertEqual(try f.read().require("w", shape: [2, 2]).array, [1, 3, 2, 4])
    }

    /// Python 2 pickles keep names as SHORT_BINSTRING / BINSTRING; PyTorch ≤ 0.3 pickled tensors with
    /// `_rebuild_tensor(storage, offset, size, stride)`, storage ids with a sixth element None.
    func testPython2StringsAndVersion1TensorsRead() throws {
        var p = PickleBytes()
        p.emptyOrderedDict()
        p.op(0x28)
        p.op(0x55, 1); p.bytes += Array("w".utf8)  // SHORT_BINSTRING 'w'
        p.global("torch._utils", "_rebuild_tensor")
        p.op(0x28, 0x28); p.string("storage"); p.global("torch", "DoubleStorage")
        p.op(0x54, 1, 0, 0, 0); p.bytes += Array("7".utf8)  // BINSTRING '7'
        p.string("cuda:0"); p.int(3); p.op(0x4E, 0x74, 0x51)  // NONE TUPLE BINPERSID
        p.int(1); p.ints([2]); p.ints([1]); p.op(0x74, 0x52)
        p.op(0x75, 0x2E)
        let doubles: [Double] = [1.5, -0.25, 1e-3]
        let bytes = doubles.flatMap { v in withUnsafeBytes(of: v.bitPattern.littleEndian) { Array($0) } }
        let f = try readZip(p, storages: ["7": bytes])
        XCTAssertEqual(try f.read().require("w", shape: [2]).array, [-0.25, Float(1e-3)])
    }

    // MARK: - Globals that would run code

    func testGlobalsOutsideTheAllowListAreRefusedBeforeAnythingRuns() throws {
        for (module, name) in [("os", "system"), ("posix", "system"), ("builtins", "eval"), ("subprocess", "Popen"),
                               ("torch", "load"), ("torch._utils", "_rebuild_qtensor"), ("__main__", "TransformerNet"),
                               ("collections", "defaultdict")] {
            var p = PickleBytes()
            p.global(module, name); p.string("touch /tmp/pwned"); p.op(0x85, 0x52, 0x2E)  // TUPLE1 REDUCE STOP
            let f = try readZip(p)
            assertThrows(.forbiddenGlobal(file: f.url.path, global: "\(module).\(name)"), f.read)
        }
        // STACK_GLOBAL (protocol 4) takes the names from the stack.
        var p = PickleBytes()
        p.string("builtins"); p.string("eval"); p.op(0x93); p.string("1+1"); p.op(0x85, 0x52, 0x2E)
        assertThrows(.forbiddenGlobal(file: "t.pth", global: "builtins.eval")) { try unpickle(p) }
        // An allowed storage class is still not callable.
        var q = PickleBytes()
        q.global("torch", "FloatStorage"); q.op(0x29, 0x52, 0x2E)
        assertThrows({ try unpickle(q) }, where: isBadPickle("torch.FloatStorage is called"))
    }

    // MARK: - Sizes, offsets and storages that do not fit

    func testViewsOutsideTheirStorageAndOverflowingSizesAreRefused() throws {
        let four = float32Bytes([1, 2, 3, 4])
        let cases: [(FakeTensor, String)] = [
            (FakeTensor(name: "t", key: "0", count: 4, size: [10], stride: [1]), "reaches element 9 of storage 0, which has 4"),
            (FakeTensor(name: "t", key: "0", count: 4, offset: 3, size: [2], stride: [1]), "reaches element 4"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [2, 2], stride: [2, 2]), "reaches element 4"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [1 << 62, 4], stride: [4, 1]), "overflows"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [1 << 40, 1 << 30], stride: [0, 0]), "overflows"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [1 << 30, 1 << 4], stride: [0, 0]), "far more than its storage's 4"),
            (FakeTensor(name: "t", key: "0", count: 4, offset: 1, size: [2], stride: [Int.max]), "overflows"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [2], stride: [-1]), "negative stride"),
            (FakeTensor(name: "t", key: "0", count: 4, offset: -1, size: [2], stride: [1]), "negative storage offset"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [2, -2], stride: [1, 1]), "negative dimension"),
            (FakeTensor(name: "t", key: "0", count: 4, size: [2, 2], stride: [1]), "different lengths"),
        ]
        for (t, reason) in cases {
            let f = try readZip(.stateDict([t]), storages: ["0": four])
            let error = assertThrows({ try f.read() }, where: isBadTorchFile(reason))
            XCTAssertEqual(error?.file, f.url.path)
            XCTAssertTrue(error?.description.contains("tensor t:") ?? false, "\(String(describing: error))")
        }
    }

    func testStoragesShorterThanDeclaredOrMissingAreRefused() throws {
        let t = FakeTensor(name: "t", key: "0", count: 12, size: [3, 4], stride: [4, 1])
        let short = try readZip(.stateDict([t]), storages: ["0": float32Bytes([1, 2])])
        assertThrows({ try short.read() }, where: isBadTorchFile("storage 0 holds 8 bytes, but its 12 float32 elements need 48"))
        let missing = try readZip(.stateDict([t]), name: "missing.pth")
        assertThrows({ try missing.read() }, where: isBadTorchFile("record archive/data/0 of storage 0 is missing"))
        var huge = t
        huge.count = 1 << 62
        let overflow = try readZip(.stateDict([huge]), storages: ["0": float32Bytes([1])], name: "huge.pth")
        assertThrows({ try overflow.read() }, where: isBadTorchFile("overflow"))
        // The same storage described with two types is refused (torch.save never writes that).
        let a = FakeTensor(name: "a", key: "0", count: 2, size: [2], stride: [1])
        var b = a; b.name = "b"; b.storageClass = "HalfStorage"; b.count = 4
        let twice = try readZip(.stateDict([a, b]), storages: ["0": float32Bytes([1, 2])], name: "twice.pth")
        assertThrows({ try twice.read() }, where: isBadPickle("storage 0 is described twice"))
    }

    func testOtherDTypesAreSkippedOrRefused() throws {
        let long = FakeTensor(name: "n", key: "1", storageClass: "LongStorage", count: 1, size: [], stride: [])
        let float = FakeTensor(name: "w", key: "0", count: 1, size: [1], stride: [1])
        let f = try readZip(.stateDict([float, long]), storages: ["0": float32Bytes([5])])  // no record needed for "1"
        let file = try TorchFile.read(contentsOf: f.url)
        XCTAssertEqual(file.weights.tensors.keys.sorted(), ["w"])
        XCTAssertEqual(file.skipped, [SkippedTensor(name: "n", dtype: "int64")])
        let complex = FakeTensor(name: "c", key: "0", storageClass: "ComplexFloatStorage", count: 1, size: [1], stride: [1])
        let g = try readZip(.stateDict([complex]), storages: ["0": float32Bytes([1, 2])], name: "complex.pth")
        assertThrows(.unsupportedDType(file: g.url.path, key: "c", dtype: "complex64"), g.read)
        let unknown = FakeTensor(name: "q", key: "0", storageClass: "QInt8Storage", count: 1, size: [1], stride: [1])
        let h = try readZip(.stateDict([unknown]), storages: ["0": [1]], name: "q.pth")
        assertThrows(.forbiddenGlobal(file: h.url.path, global: "torch.QInt8Storage"), h.read)
    }

    // MARK: - Broken archives

    func testBrokenArchivesAreRefused() throws {
        let noPickle = folder.appendingPathComponent("nopickle.pth")
        try writeTorchZip([("version", Array("3\n".utf8))], to: noPickle)
        assertThrows({ try WeightsFile.read(contentsOf: noPickle) }, where: isBadTorchFile("no <archive>/data.pkl record"))

        let t = FakeTensor(name: "t", key: "0", count: 1, size: [1], stride: [1])
        let bigEndian = try readZip(.stateDict([t]), storages: ["0": [0, 0, 0x80, 0x3F]], extra: [("byteorder", Array("big".utf8))])
        assertThrows({ try bigEndian.read() }, where: isBadTorchFile("stored big-endian"))
        let little = try readZip(.stateDict([t]), storages: ["0": float32Bytes([1])], extra: [("byteorder", Array("little".utf8))],
                                 name: "little.pth")
        XCTAssertEqual(try little.read()["t"].array, [1])

        var notDict = PickleBytes()
        notDict.op(0x5D, 0x2E)  // EMPTY_LIST STOP
        let list = try readZip(notDict, name: "list.pth")
        assertThrows({ try list.read() }, where: isBadTorchFile("the file holds a list, not a state dict"))
        var noTensors = PickleBytes()
        noTensors.op(0x7D); noTensors.string("epoch"); noTensors.int(3); noTensors.op(0x73, 0x2E)
        let epoch = try readZip(noTensors, name: "epoch.pth")
        assertThrows({ try epoch.read() }, where: isBadTorchFile("no tensors in the dict (keys: epoch)"))
    }

    /// A zip directory that claims a 4 GB storage record (in the local and the central header) neither
    /// makes us reserve 4 GB nor passes: the bytes are not there.
    func testRecordSizesTheZipClaimsAreNotTrusted() throws {
        let t = FakeTensor(name: "t", key: "0", count: 4, size: [4], stride: [1])
        let f = try readZip(.stateDict([t]), storages: ["0": float32Bytes([1, 2, 3, 4])])
        var bytes = [UInt8](try Data(contentsOf: f.url))
        let name = Array("archive/data/0".utf8)
        var patched = 0
        for i in 0 ..< bytes.count - 50 {
            let local = bytes[i ..< i + 4] == [0x50, 0x4B, 0x03, 0x04] && Array(bytes[i + 30 ..< i + 30 + name.count]) == name
            let central = bytes[i ..< i + 4] == [0x50, 0x4B, 0x01, 0x02] && Array(bytes[i + 46 ..< i + 46 + name.count]) == name
            guard local || central else { continue }
            let at = i + (local ? 22 : 24)  // uncompressed size
            bytes.replaceSubrange(at ..< at + 4, with: [0xF0, 0xFF, 0xFF, 0xFF])
            patched += 1
        }
        XCTAssertEqual(patched, 2)
        try Data(bytes).write(to: f.url)
        assertThrows({ try f.read() }, where: isBadTorchFile("record archive/data/0"))
    }

    /// Every prefix of a real torch.save file is refused (most lose the zip directory), none crashes.
    func testTruncatedZipsAreRefusedAtEveryLength() throws {
        let whole = try Data(contentsOf: PthFixture.url("dtypes.pth"))
        let url = folder.appendingPathComponent("cut.pth")
        for length in Array(stride(from: 0, to: whole.count, by: 37)) + [whole.count - 1, whole.count - 22] {
            try whole.prefix(length).write(to: url)
            assertThrows({ try WeightsFile.read(contentsOf: url) }, where: { $0.file == url.path })
        }
    }

    /// Flipped bytes anywhere in a real file: a checksum, a pickle or a view check catches the
    /// damage, or the file still reads; nothing crashes.
    func testCorruptedZipBytesNeverCrash() throws {
        let whole = [UInt8](try Data(contentsOf: PthFixture.url("dtypes.pth")))
        let url = folder.appendingPathComponent("flip.pth")
        var rng = SplitMix64(seed: 11)
        var refused = 0
        for _ in 0..<150 {
            var bytes = whole
            let at = Int(rng.next() % UInt64(bytes.count))
            bytes[at] ^= UInt8(truncatingIfNeeded: rng.next() | 1)
            try Data(bytes).write(to: url)
            do { _ = try WeightsFile.read(contentsOf: url) } catch { refused += 1; XCTAssertEqual(error.file, url.path) }
        }
        XCTAssertGreaterThan(refused, 0)
    }

    /// Every single-byte change of a real legacy file, through the in-memory reader.
    func testEveryByteOfALegacyFileMutatedNeverCrashes() throws {
        let whole = try Data(contentsOf: PthFixture.url("dtypes-legacy.pth"))
        var refused = 0, read = 0
        for at in 0..<whole.count {
            for value: UInt8 in [0x00, 0xFF, whole[at] &+ 1] where value != whole[at] {
                var bytes = whole
                bytes[at] = value
                do { _ = try TorchFile.readLegacy(data: bytes, file: "m.pth"); read += 1 } catch { refused += 1 }
            }
        }
        XCTAssertGreaterThan(refused, 1000)
        XCTAssertGreaterThan(read, 0, "changes inside tensor data leave a readable file")
    }

    // MARK: - Malformed pickles

    func testMalformedPicklesAreRefusedWithTheProblem() throws {
        func pickle(_ build: (inout PickleBytes) -> Void) -> PickleBytes { var p = PickleBytes(); build(&p); return p }
        let cases: [(PickleBytes, String)] = [
            (pickle { $0.op(0x52) }, "stack underflow"),                                            // REDUCE on nothing
            (pickle { $0.int(1); $0.op(0x86) }, "stack underflow"),                                 // TUPLE2 of one
            (pickle { $0.op(0x30) }, "no MARK to pop to"),                                           // POP on nothing
            (pickle { $0.int(1); $0.op(0x28, 0x85) }, "stack underflow"),                           // TUPLE1 across a MARK
            (pickle { $0.op(0x69) }, "unsupported opcode 0x69 ('i')"),                             // INST
            (pickle { $0.op(0xFF) }, "unsupported opcode 0xFF"),
            (pickle { $0.op(0x7D) }, "the pickle ends before its STOP opcode"),                    // no STOP
            (pickle { $0.op(0x58, 0xFF, 0xFF, 0xFF, 0xFF, 0x61) }, "needs 4294967295 bytes"),      // BINUNICODE too long
            (pickle { $0.op(0x8D, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF) }, "too large"), // BINUNICODE8
            (pickle { $0.op(0x68, 7, 0x2E) }, "memo entry 7 was never stored"),                    // BINGET
            (pickle { $0.op(0x63); $0.bytes += Array(repeating: 0x61, count: 300) }, "newline-terminated"),
            (pickle { $0.op(0x58, 2, 0, 0, 0, 0xC3, 0x28, 0x2E) }, "not valid UTF-8"),
            (pickle { $0.op(0x80, 9) }, "pickle protocol 9 is newer than 5"),
            (pickle { $0.op(0x7D, 0x4B, 1, 0x2E) }, "STOP with 2 values"),
            (pickle { $0.op(0x29, 0x4B, 1, 0x61, 0x2E) }, "APPEND to a 0-tuple, not a list"),
            (pickle { $0.op(0x5D, 0x4B, 1, 0x4B, 2, 0x73, 0x2E) }, "SETITEM on a list, not a dict"),
            (pickle { $0.op(0x7D, 0x28, 0x4B, 1, 0x75, 0x2E) }, "odd number"),
            (pickle { $0.op(0x5D, 0x71, 0, 0x68, 0, 0x61, 0x2E) }, "contains itself"),             // l.append(l)
            (pickle { $0.op(0x7D, 0x71, 0, 0x85, 0x68, 0, 0x4B, 1, 0x4B, 2, 0x73, 0x2E) }, "changes after being placed"),
            (pickle { $0.op(0x4B, 1, 0x29, 0x52, 0x2E) }, "REDUCE calls the integer 1, not a global"),
            (pickle { $0.op(0x4B, 1, 0x4B, 2, 0x62, 0x2E) }, "BUILD on the integer 1"),
            (pickle { $0.string("storage"); $0.op(0x85, 0x51, 0x2E) }, "persistent id a 1-tuple is not"),
            (pickle { $0.emptyOrderedDict(); $0.op(0x29, 0x52, 0x2E) }, "REDUCE calls a dict"),
            (pickle { $0.global("torch._utils", "_rebuild_tensor_v2"); $0.op(0x29, 0x52, 0x2E) }, "_rebuild_tensor_v2 called with []"),
            (pickle { $0.global("collections", "OrderedDict"); $0.int(1); $0.op(0x85, 0x52, 0x2E) }, "OrderedDict called with arguments"),
        ]
        for (p, reason) in cases {
            assertThrows({ try unpickle(p) }, where: isBadPickle(reason))
        }
        let described = assertThrows({ try unpickle(cases[4].0) }, where: { _ in true })
        XCTAssertEqual(described?.description, "t.pth: bad pickle: data.pkl, byte 2: unsupported opcode 0x69 ('i')")
    }

    func testDeepNestingIsRefusedNotRecursedInto() throws {
        var tuples = PickleBytes()
        tuples.op(0x29)
        tuples.bytes += Array(repeating: 0x85, count: 100_000)  // ((((),),),)… 100 000 deep
        tuples.op(0x2E)
        assertThrows({ try unpickle(tuples) }, where: isBadPickle("values nested deeper than 64"))

        var marks = PickleBytes()
        marks.bytes += Array(repeating: 0x28, count: 100_000)
        assertThrows({ try unpickle(marks) }, where: isBadPickle("marks nested deeper than 64"))

        // Lists nested through the memo: l0 = [], l1 = [l0], … each built on top of the previous one.
        var lists = PickleBytes()
        lists.op(0x5D)
        for _ in 0..<1000 { lists.op(0x71, 0, 0x30, 0x5D, 0x68, 0, 0x61) }  // BINPUT 0, POP, [], BINGET 0, APPEND
        lists.op(0x2E)
        assertThrows({ try unpickle(lists) }, where: isBadPickle("values nested deeper than 64"))

        var nones = PickleBytes()  // a flood of values, each cheap to write
        nones.bytes += Array(repeating: 0x4E, count: Unpickler.maxOpcodes + 1)
        assertThrows({ try unpickle(nones) }, where: isBadPickle("more than 4000000 opcodes"))

        var ok = PickleBytes()  // 60 levels are fine
        ok.op(0x29)
        ok.bytes += Array(repeating: 0x85, count: 59)
        ok.op(0x2E)
        XCTAssertEqual(try unpickle(ok).depth, 60)
    }

    // MARK: - The legacy format's own checks

    func testLegacyStreamsThatLieAreRefused() throws {
        let whole = try Data(contentsOf: PthFixture.url("dtypes-legacy.pth"))
        for cut in [whole.count - 1, whole.count - 60, 40, 10] {
            assertThrows({ try TorchFile.readLegacy(data: whole.prefix(cut), file: "l.pth") }, where: { $0.file == "l.pth" })
        }
        assertThrows({ try TorchFile.readLegacy(data: whole.prefix(whole.count - 4), file: "l.pth") },
                     where: isBadTorchFile("truncated"))
        var notTorch = PickleBytes()
        notTorch.op(0x7D, 0x2E)
        assertThrows({ try TorchFile.readLegacy(data: notTorch.data, file: "l.pth") }, where: isBadTorchFile("magic number"))
    }
}
