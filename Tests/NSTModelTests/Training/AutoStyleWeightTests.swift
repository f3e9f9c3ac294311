import Foundation
import NSTModel
import XCTest

/// `"style_weight": "auto"` (issue 14, part 6): the chosen weight makes the first step's
/// weighted style term R times its content term, an independent computation agrees, a resumed
/// session keeps the weight, and terms that give no weight are refused with the reason. And the
/// Gram signatures behind `"init": "nearest"`.
final class AutoStyleWeightTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        Threads.configure(2)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-auto-weight-\(UUID().uuidString)")
        _ = try SyntheticImages.writeDataset(to: dir.appendingPathComponent("data"), count: 6, size: 16, seed: 5)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var style: RGBImage { SyntheticImages.contentImage(index: 99, width: 16, height: 16, seed: 1) }

    func options(steps: Int, ratio: Double?) -> TrainingOptions {
        var o = TrainingOptions()
        o.imageSize = 16; o.styleSize = 16; o.batchSize = 2; o.steps = steps
        o.contentWeight = 3; o.styleWeight = 1e3; o.styleRatio = ratio
        return o
    }

    func session(_ o: TrainingOptions) throws -> TrainingSession {
        try TrainingSession(options: o, style: style, dataset: ImageFolder(root: dir.appendingPathComponent("data")),
                            vgg: VGG16(randomSeed: 0))
    }

    func testTheFirstStepsWeightedStyleTermIsRTimesItsContentTerm() throws {
        // Given a session asked for a style term 2.5 times the content term
        let s = try session(options(steps: 3, ratio: 2.5))
        XCTAssertNil(s.autoStyleWeight)

        // When it trains its first step
        let first = try XCTUnwrap(s.runStep().loss)

        // Then the step's weighted terms (computed before the update) are in that ratio
        XCTAssertEqual(first.style / first.content, 2.5, accuracy: 1e-4)
        let chosen = try XCTUnwrap(s.autoStyleWeight)
        XCTAssertEqual(s.styleWeight, chosen.weight)
        XCTAssertNotEqual(chosen.weight, 1e3, "the config's style weight is not used")

        // And an independent computation on the first batch, with a fresh network of the same
        // seed and a separate loss object, gives the same weight
        let folder = try ImageFolder(root: dir.appendingPathComponent("data"))
        let x = Tensor(shape: [2, 3, 16, 16])
        XCTAssertEqual(try folder.loadBatch(start: 0, count: 2, size: 16, into: x).loaded, 2)
        let loss = PerceptualLoss(vgg: VGG16(randomSeed: 0), contentWeight: 1, styleWeight: 1)
        let st = Tensor(shape: [1, 3, 16, 16])
        style.writeCHW(to: st.data)
        loss.setStyle(st)
        let y = Tensor(shape: [2, 3, 16, 16])
        y.copy(from: TransformerNet(seed: 42).infer(x))
        let v = loss.loss(x: x, y: y)
        XCTAssertEqual(chosen.content, v.content, accuracy: 1e-5 * v.content)
        XCTAssertEqual(chosen.style, v.style, accuracy: 1e-5 * v.style)
        XCTAssertEqual(chosen.weight, 2.5 * 3 * v.content / v.style, accuracy: 1e-4 * chosen.weight)
    }

    func testAResumedSessionKeepsTheChosenWeightAndTrainsLikeAnUninterruptedOne() throws {
        // Given an uninterrupted auto run of 4 steps
        let whole = try session(options(steps: 4, ratio: 0.5))
        var expected: [Double] = []
        while !whole.isFinished { expected.append(try XCTUnwrap(whole.runStep().loss).total) }

        // When another run stops after 2 steps with a checkpoint, and a new session resumes it
        let first = try session(options(steps: 4, ratio: 0.5))
        var got = [try XCTUnwrap(first.runStep().loss).total, try XCTUnwrap(first.runStep().loss).total]
        let ck = dir.appendingPathComponent("ck.safetensors")
        try first.writeCheckpoint(to: ck)
        let resumed = try session(options(steps: 4, ratio: 0.5))
        try resumed.resume(from: WeightsFile.read(contentsOf: ck))

        // Then it has the first run's weight before any step, and the same losses follow
        XCTAssertEqual(resumed.styleWeight, first.styleWeight)
        XCTAssertEqual(try SafeTensors.read(contentsOf: ck).metadata[TrainingSession.autoStyleWeightKey],
                       String(format: "%.17g", first.styleWeight))
        while !resumed.isFinished { got.append(try XCTUnwrap(resumed.runStep().loss).total) }
        XCTAssertEqual(got, expected)
        XCTAssertNil(resumed.autoStyleWeight, "nothing was measured again")
    }

    func testTermsThatGiveNoWeightAreRefusedWithTheReason() {
        XCTAssertThrowsError(try AutoStyleWeight.choose(content: 1, style: 0, ratio: 1, contentWeight: 1)) { error in
            XCTAssertTrue("\(error)".contains("no weight makes the style term"), "\(error)")
        }
        XCTAssertThrowsError(try AutoStyleWeight.choose(content: .nan, style: 1, ratio: 1, contentWeight: 1))
        XCTAssertThrowsError(try AutoStyleWeight.choose(content: 0, style: 1, ratio: 1, contentWeight: 1)) { error in
            XCTAssertTrue("\(error)".contains("the weight would be 0"), "\(error)")
        }
        XCTAssertThrowsError(try AutoStyleWeight.choose(content: 1, style: 1, ratio: -1, contentWeight: 1))
        XCTAssertEqual(try AutoStyleWeight.choose(content: 2, style: 4, ratio: 3, contentWeight: 10).weight, 15)
        var o = options(steps: 1, ratio: .infinity)
        XCTAssertThrowsError(try session(o)) { XCTAssertTrue("\($0)".contains("style ratio"), "\($0)") }
        o.styleRatio = nil
        XCTAssertEqual(try session(o).styleWeight, 1e3, "without a ratio the configured weight is used")
    }

    func testGramSignaturesFindTheSameStyleNearestAtAnotherResolution() {
        // Given three style images, one of them also at twice the size
        let vgg = VGG16(randomSeed: 0)
        let a = SyntheticImages.contentImage(index: 3, width: 32, height: 32, seed: 9)
        let b = SyntheticImages.contentImage(index: 40, width: 32, height: 32, seed: 2)
        let c = SyntheticImages.contentImage(index: 77, width: 32, height: 32, seed: 4)
        let own = StyleSignature(image: a.resized(width: 64, height: 64), size: 16, vgg: vgg)

        // When the signatures are compared at one style size
        let distances = [a, b, c].map { own.distance(to: StyleSignature(image: $0, size: 16, vgg: vgg)) }

        // Then the same image is nearest, near 0, and the distance to itself is exactly 0
        XCTAssertEqual(own.distance(to: own), 0)
        XCTAssertEqual(distances.firstIndex(of: distances.min()!), 0, "\(distances)")
        XCTAssertLessThan(distances[0], 0.5 * min(distances[1], distances[2]), "\(distances)")
    }
}
