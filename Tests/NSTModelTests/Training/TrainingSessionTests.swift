import Foundation
import NSTModel
import XCTest

/// The training loop around the trainer: data order, skipped files, resume, non-finite losses.
final class TrainingSessionTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        Threads.configure(2)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-session-\(UUID().uuidString)")
        _ = try SyntheticImages.writeDataset(to: dir.appendingPathComponent("data"), count: 6, size: 16, seed: 5)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    func options(steps: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.imageSize = 16; o.styleSize = 16; o.batchSize = 2; o.steps = steps
        o.contentWeight = 1; o.styleWeight = 1e3
        return o
    }

    func session(_ o: TrainingOptions) throws -> TrainingSession {
        let folder = try ImageFolder(root: dir.appendingPathComponent("data"))
        let style = SyntheticImages.contentImage(index: 99, width: 24, height: 20, seed: 1)
        return try TrainingSession(options: o, style: style, dataset: folder, vgg: VGG16(randomSeed: 0))
    }

    func testResumedRunRepeatsTheUninterruptedOneExactly() throws {
        // Given an uninterrupted 6-step run (two epochs of 3 batches)
        let full = try session(options(steps: 6))
        var expected: [Double] = []
        while !full.isFinished { expected.append(try full.runStep().loss!.total) }

        // When another run stops after step 4, checkpoints, and a fresh session resumes from it
        let first = try session(options(steps: 6))
        for _ in 0..<4 { _ = try first.runStep() }
        let ckpt = dir.appendingPathComponent("step4.safetensors")
        try first.writeCheckpoint(to: ckpt)
        let resumed = try session(options(steps: 6))
        try resumed.resume(from: SafeTensors.read(contentsOf: ckpt))

        // Then it continues at step 5 with the same data position and the same losses, bit for bit
        XCTAssertEqual(resumed.state, CheckpointState(step: 4, imagesSeen: 8))
        XCTAssertEqual(resumed.dataPosition, 2)
        var after: [Double] = []
        while !resumed.isFinished {
            let r = try resumed.runStep()
            XCTAssertGreaterThan(r.step, 4)
            after.append(r.loss!.total)
        }
        XCTAssertEqual(after, Array(expected[4...]))
        XCTAssertEqual(resumed.state.imagesSeen, 12)
    }

    func testEpochsCycleTheSortedFilesAndTheLastBatchIsPartial() throws {
        // 6 files + 1 more make 4 batches of 2, the last with one image
        try SyntheticImages.contentImage(index: 7, width: 16, height: 16).write(to: dir.appendingPathComponent("data/zz.png"))
        var o = options(steps: 1)
        o.steps = nil
        o.epochs = 2
        let s = try session(o)
        XCTAssertEqual(s.totalSteps, 8)
        var sizes: [Int] = []
        while !s.isFinished { sizes.append(try s.runStep().batchImages) }
        XCTAssertEqual(sizes, [2, 2, 2, 1, 2, 2, 2, 1])
        XCTAssertEqual(s.state.imagesSeen, 14)
    }

    func testUnreadableFilesAreSkippedAndReported() throws {
        try Data("not an image".utf8).write(to: dir.appendingPathComponent("data/img_00000_notes.png"))
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 0, 16]).write(to: dir.appendingPathComponent("data/img_00001_cut.jpg"))
        let s = try session(options(steps: 4))
        var skipped: [String] = []
        var images = 0
        while !s.isFinished {
            let r = try s.runStep()
            skipped += r.skipped
            images += r.batchImages
            if let v = r.loss { XCTAssertTrue(v.total.isFinite) }
        }
        XCTAssertEqual(skipped.count, 2, "\(skipped)")
        XCTAssertTrue(skipped.contains { $0.contains("img_00000_notes.png") })
        XCTAssertTrue(skipped.contains { $0.contains("img_00001_cut.jpg") })
        XCTAssertEqual(images, 6, "8 files, 2 unreadable: every readable image trained once")
    }

    func testNonFiniteLossStopsWithTheStep() throws {
        var o = options(steps: 3)
        o.contentWeight = .nan
        let s = try session(o)
        XCTAssertThrowsError(try s.runStep()) { error in
            guard case TrainingError.nonFiniteLoss(let step, _, _) = error else { return XCTFail("\(error)") }
            XCTAssertEqual(step, 1)
        }
    }

    func testBadOptionsAndEmptyDatasetAreRefused() throws {
        var o = options(steps: 2)
        o.imageSize = 18
        XCTAssertThrowsError(try session(o)) { XCTAssertTrue("\($0)".contains("multiple of 4")) }
        // Issue 11, finding 3: sizes that would wrap a tensor's element count (NSTModel is built
        // -Ounchecked) or ask for hundreds of GB are refused with their values.
        o.imageSize = 1 << 31
        XCTAssertThrowsError(try session(o)) { XCTAssertTrue("\($0)".contains("at most 8192, got 2147483648"), "\($0)") }
        o.imageSize = 2048
        o.batchSize = 64
        XCTAssertThrowsError(try session(o)) { XCTAssertTrue("\($0)".contains("64 × 2048²"), "\($0)") }
        XCTAssertEqual(Tensor.elementCount([2, 3, 4]), 24)
        let empty = dir.appendingPathComponent("empty")
        try FileManager.default.createDirectory(at: empty, withIntermediateDirectories: true)
        XCTAssertThrowsError(try TrainingSession(options: options(steps: 2), style: SyntheticImages.contentImage(index: 0, width: 8, height: 8),
                                                 dataset: ImageFolder(root: empty), vgg: VGG16(randomSeed: 0))) {
            XCTAssertEqual($0 as? TrainingError, .emptyDataset(path: empty.path))
        }
    }

    func testCheckpointLoadsAsAModelAndRejectsAPlainModel() throws {
        let s = try session(options(steps: 2))
        _ = try s.runStep()
        let ckpt = dir.appendingPathComponent("c.safetensors"), model = dir.appendingPathComponent("m.safetensors")
        try s.writeCheckpoint(to: ckpt)
        try s.trainer.net.save(to: model)
        let net = try TransformerNet(contentsOf: ckpt)
        XCTAssertEqual(net.conv1.weight.value.array, s.trainer.net.conv1.weight.value.array)
        let other = try session(options(steps: 2))
        XCTAssertThrowsError(try other.resume(from: SafeTensors.read(contentsOf: model))) {
            XCTAssertTrue("\($0)".contains("not a training checkpoint"), "\($0)")
        }
    }

    func testVGGWeightsErrorsNameTheFileAndTheKey() throws {
        let vggFile = dir.appendingPathComponent("vgg.safetensors")
        let vgg = VGG16(randomSeed: 3)
        var tensors = vgg.parameters.map { (name: $0.name, tensor: $0.value) }
        tensors.removeAll { $0.name == "features.19.weight" }
        tensors.append((name: "classifier.0.weight", tensor: Tensor(shape: [2, 2])))
        try SafeTensors.write(tensors, to: vggFile)
        XCTAssertThrowsError(try VGG16(contentsOf: vggFile)) {
            XCTAssertEqual($0 as? WeightsError, .missingKey(file: vggFile.path, key: "features.19.weight"))
        }
        XCTAssertThrowsError(try VGGSource.resolve(path: nil, random: false, environment: [:])) {
            XCTAssertTrue("\($0)".contains("--vgg-weights"))
        }
        XCTAssertEqual(try VGGSource.resolve(path: nil, random: false, environment: ["NST_VGG16_WEIGHTS": "/x.safetensors"]), .file("/x.safetensors"))
        // A full file with torchvision's extra keys loads; the random VGG16 round-trips.
        try vgg.save(to: vggFile)
        XCTAssertEqual(try VGG16(contentsOf: vggFile).parameters[4].value.array, vgg.parameters[4].value.array)
    }
}
