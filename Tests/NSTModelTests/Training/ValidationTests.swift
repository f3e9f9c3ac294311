import Foundation
import NSTModel
import XCTest

/// The held-out split and the validation losses (issue 14): which images are held out, numbers
/// equal to an independent per-image computation, and no effect on training.
final class ValidationTests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        Threads.configure(2)
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-validation-\(UUID().uuidString)")
        _ = try SyntheticImages.writeDataset(to: dir.appendingPathComponent("data"), count: 7, size: 16, seed: 5)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(at: dir) }

    var style: RGBImage { SyntheticImages.contentImage(index: 99, width: 16, height: 16, seed: 1) }

    func options(steps: Int) -> TrainingOptions {
        var o = TrainingOptions()
        o.imageSize = 16; o.styleSize = 16; o.batchSize = 2; o.steps = steps
        o.contentWeight = 3; o.styleWeight = 1e3
        return o
    }

    func session(_ o: TrainingOptions, validationImages: Int) throws -> TrainingSession {
        let all = try ImageFolder(root: dir.appendingPathComponent("data"))
        let split = try HeldOutSplit(all, validationImages: validationImages)
        return try TrainingSession(options: o, style: style, dataset: split.training, validation: split.validation,
                                   vgg: VGG16(randomSeed: 0))
    }

    /// Loads image `index` of the sorted folder alone.
    func image(_ folder: ImageFolder, _ index: Int) throws -> Tensor {
        let x = Tensor(shape: [1, 3, 16, 16])
        XCTAssertEqual(try folder.loadBatch(start: index, count: 1, size: 16, into: x).loaded, 1)
        return x
    }

    func testTheLastImagesAreHeldOutAndMaxImagesCutsTheRest() throws {
        let all = try ImageFolder(root: dir.appendingPathComponent("data"))
        let split = try HeldOutSplit(all, validationImages: 2, maxImages: 3)
        XCTAssertEqual(split.training.count, 3)
        XCTAssertEqual(split.validation?.count, 2)
        // Validation image 0 is the sixth of seven, training image 2 the third.
        let v = Tensor(shape: [2, 3, 16, 16])
        XCTAssertEqual(try split.validation!.loadBatch(start: 0, count: 2, size: 16, into: v).loaded, 2)
        XCTAssertEqual(Tensor(viewing: v, shape: [1, 3, 16, 16]).array, try image(all, 5).array)
        let t = Tensor(shape: [2, 3, 16, 16])
        XCTAssertEqual(try split.training.loadBatch(start: 2, count: 2, size: 16, into: t).loaded, 1)
        XCTAssertEqual(Tensor(viewing: t, shape: [1, 3, 16, 16]).array, try image(all, 2).array)

        // Without validation the dataset is used as it is (the seed's order, no wrapper).
        let plain = try HeldOutSplit(all, validationImages: 0)
        XCTAssertTrue(plain.training is ImageFolder)
        XCTAssertNil(plain.validation)
    }

    func testTooFewImagesIsAClearError() throws {
        let all = try ImageFolder(root: dir.appendingPathComponent("data"))
        XCTAssertThrowsError(try HeldOutSplit(all, validationImages: 7)) { error in
            XCTAssertEqual(error as? TrainingError, .tooFewImages(path: all.description, count: 7, validation: 7))
            XCTAssertTrue("\(error)".contains("needs at least 8"), "\(error)")
        }
        XCTAssertEqual(try HeldOutSplit(all, validationImages: 6).training.count, 1)
    }

    func testValidationLossesEqualAnIndependentPerImageComputation() throws {
        // Given a session trained two steps on 4 images, with 3 held out (batches of 2 and 1)
        let s = try session(options(steps: 4), validationImages: 3)
        _ = try s.runStep(); _ = try s.runStep()

        // When it validates
        let v = try XCTUnwrap(s.validate())

        // Then the numbers are the means over the images of the per-image losses computed with
        // the network's inference path and a separate loss object, one image at a time
        let all = try ImageFolder(root: dir.appendingPathComponent("data"))
        let loss = PerceptualLoss(vgg: VGG16(randomSeed: 0), contentWeight: 1, styleWeight: 1)
        let st = Tensor(shape: [1, 3, 16, 16])
        style.writeCHW(to: st.data)
        loss.setStyle(st)
        var content = 0.0, styleLoss = 0.0
        for i in 4..<7 {
            let x = try image(all, i)
            let y = Tensor(shape: [1, 3, 16, 16])
            y.copy(from: s.trainer.net.infer(x))
            let value = loss.loss(x: x, y: y)
            content += value.content / 3
            styleLoss += value.style / 3
        }
        XCTAssertEqual(v.images, 3)
        XCTAssertEqual(v.content, content, accuracy: 1e-5 * content)
        XCTAssertEqual(v.style, styleLoss, accuracy: 1e-5 * styleLoss)
        XCTAssertEqual(v.contentWeighted, 3 * v.content, accuracy: 1e-12 * v.contentWeighted)
        XCTAssertEqual(v.styleWeighted, 1e3 * v.style, accuracy: 1e-12 * v.styleWeighted)
        XCTAssertEqual(v.total, v.contentWeighted + v.styleWeighted)
        XCTAssertGreaterThan(v.content, 0)
        XCTAssertGreaterThan(v.style, 0)
    }

    func testValidatingLeavesTrainingBitIdentical() throws {
        // Given two sessions on the same data, one validating twice after steps 1 and 3
        let plain = try session(options(steps: 5), validationImages: 2)
        let checked = try session(options(steps: 5), validationImages: 2)
        var a: [Double] = [], b: [Double] = []
        while !plain.isFinished { a.append(try plain.runStep().loss!.total) }
        var first: ValidationLosses?
        while !checked.isFinished {
            let r = try checked.runStep()
            b.append(r.loss!.total)
            if r.step == 1 || r.step == 3 {
                let v1 = try checked.validate(), v2 = try checked.validate()
                XCTAssertEqual(v1, v2)
                if first == nil { first = v1 }
            }
        }
        // Then the losses, counters and weights are the same bit for bit
        XCTAssertEqual(a, b)
        XCTAssertEqual(plain.state, checked.state)
        for (p, q) in zip(plain.trainer.net.parameters, checked.trainer.net.parameters) {
            XCTAssertEqual(p.value.array, q.value.array, p.name)
        }
        // and validation changed as the network trained
        XCTAssertNotEqual(first, try checked.validate())
    }

    func testNoValidationImagesMeansNoValidation() throws {
        let s = try session(options(steps: 1), validationImages: 0)
        XCTAssertNil(try s.validate())
        XCTAssertEqual(s.dataset.count, 7)
    }
}
