import CoordinatorAPI
import Foundation
import XCTest

/// The wire types as both ends read and write them: snake_case keys, defaults for missing
/// keys, `null` for unknown values, and clear refusals of what neither end sends.
final class WireFormatTests: XCTestCase {
    private let sha = String(repeating: "ab", count: 32)

    private func object(_ value: some Encodable) throws -> [String: Any] {
        let data = try APICoding.encoder().encode(value)
        return try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    func testJobConfigTakesTheSeedDefaultsForMissingKeys() throws {
        let json = #"{"name": "wave", "style_sha256": "\#(sha)", "steps": 7}"#
        let config = try APICoding.decoder().decode(JobConfig.self, from: Data(json.utf8))
        XCTAssertEqual(config, JobConfig(name: "wave", styleSHA256: sha, steps: 7))
        XCTAssertEqual(config.imageSize, 256)
        XCTAssertEqual(config.batchSize, 4)
        XCTAssertEqual(config.lr, 1e-3)
        XCTAssertEqual(config.contentWeight, 1e5)
        XCTAssertEqual(config.styleWeight, 1e10)
        XCTAssertEqual(config.problems(), [])
    }

    func testJobConfigRoundTripsWithSnakeCaseKeys() throws {
        let config = JobConfig(name: "a.b_c-1", styleSHA256: sha, imageSize: 128, styleSize: 96, batchSize: 2,
                               epochs: 3, maxImages: 50, steps: nil, lr: 2e-3, contentWeight: 1, styleWeight: 4,
                               checkpointEvery: 9, seed: UInt64.max, priority: -2, maxAttempts: 5)
        let keys = Set(try object(config).keys)
        XCTAssertTrue(keys.isSuperset(of: ["style_sha256", "image_size", "style_size", "batch_size", "max_images",
                                           "content_weight", "style_weight", "checkpoint_every", "max_attempts"]))
        let back = try APICoding.decoder().decode(JobConfig.self, from: APICoding.encoder().encode(config))
        XCTAssertEqual(back, config)
    }

    func testJobConfigProblemsNameEveryBadKey() {
        var config = JobConfig(name: "a/b", styleSHA256: "ABC", imageSize: 0, batchSize: -1)
        config.lr = .nan
        config.styleWeight = -1
        let problems = config.problems()
        XCTAssertEqual(problems.count, 6, "\(problems)")
        XCTAssertTrue(problems[0].hasPrefix("name: only letters"), problems[0])
        XCTAssertTrue(problems.contains("style_sha256: expected 64 lowercase hex digits, got \"ABC\""), "\(problems)")
        XCTAssertTrue(problems.contains("image_size: must be from 8 to 2048, got 0"), "\(problems)")
        XCTAssertTrue(problems.contains("batch_size: must be positive, got -1"), "\(problems)")
        XCTAssertTrue(problems.contains("lr: must be a positive number, got nan"), "\(problems)")
        XCTAssertTrue(problems.contains("style_weight: must be a non-negative number, got -1.0"), "\(problems)")
        XCTAssertEqual(JobConfig.nameProblem(".hidden"), "must not start with '.'")
        XCTAssertEqual(JobConfig.nameProblem(String(repeating: "x", count: 129)), "longer than 128 bytes")
    }

    /// Issue 11, findings 1 and 3: no value may be large enough to overflow arithmetic on the
    /// coordinator or to make a worker allocate what it cannot (a "poison" job).
    func testEveryValueHasAnUpperBound() {
        let huge = 4_611_686_018_427_387_904
        var config = JobConfig(name: "poison", styleSHA256: sha, imageSize: 1 << 31, styleSize: 1 << 20, batchSize: 1 << 20,
                               epochs: huge, maxImages: huge, steps: huge, checkpointEvery: huge, priority: Int.max,
                               maxAttempts: 1_000_000)
        config.lr = .infinity
        config.contentWeight = .infinity
        let keys = config.problems().map { String($0.prefix { $0 != ":" }) }
        XCTAssertEqual(Set(keys), ["image_size", "style_size", "batch_size", "epochs", "max_images", "steps",
                                   "checkpoint_every", "max_attempts", "priority", "lr", "content_weight"], "\(config.problems())")
        XCTAssertEqual(config.plannedImages, Int.max, "saturates instead of trapping")
        XCTAssertTrue(config.problems().contains("steps: must be from 1 to 100000000, got 4611686018427387904"))
    }

    func testAStepMustFitInMemoryNotOnlyEachValue() {
        let ok = JobConfig(name: "big", styleSHA256: sha, imageSize: 1024, batchSize: 2)
        XCTAssertEqual(ok.problems(), [])
        let tooMuch = JobConfig(name: "big", styleSHA256: sha, imageSize: 1024, batchSize: 4)
        XCTAssertEqual(tooMuch.problems(), ["batch_size × image_size²: 4 × 1024² is more than 2097152 pixels a step"])
        XCTAssertEqual(JobConfig(name: "odd", styleSHA256: sha, imageSize: 30).problems(),
                       ["image_size: must be a multiple of 4, got 30"])
    }

    func testControlCharactersInANameAreEscapedInTheMessage() {
        let problems = JobConfig(name: "x\u{1B}[2Jy", styleSHA256: sha).problems()
        XCTAssertEqual(problems, [#"name: only letters, digits, '.', '_' and '-' are allowed, got "x\u{1B}[2Jy""#])
    }

    func testJobStatusWritesEveryKeyWithNullForUnknowns() throws {
        let status = JobStatus(id: 3, name: "wave", state: .queued, attempt: 1, maxAttempts: 3, step: 0,
                               stepsTotal: nil, imagesDone: 0, imagesTotal: nil, worker: nil, resumedFromStep: 0,
                               content: nil, style: nil, total: nil, imagesPerS: nil, etaS: nil, recentTotals: [],
                               failureReason: nil, modelSHA256: nil, previewStep: nil,
                               createdAt: Date(timeIntervalSince1970: 10), updatedAt: Date(timeIntervalSince1970: 11))
        let json = try object(status)
        XCTAssertEqual(json.count, 33)
        for key in ["steps_total", "images_total", "worker", "eta_s", "failure_reason", "model_sha256", "preview_step",
                    "dataset", "dataset_sha256", "loss_network", "group", "params", "stop_reason",
                    "style_ratio", "chosen_style_weight", "init", "warm_start_job", "warm_start"] {
            XCTAssertTrue(json[key] is NSNull, "\(key) should be null, got \(String(describing: json[key]))")
        }
        XCTAssertEqual(json["created_at"] as? Double, 10)
        XCTAssertEqual(json["state"] as? String, "queued")
        XCTAssertEqual(try APICoding.decoder().decode(JobStatus.self, from: APICoding.encoder().encode(status)), status)
    }

    func testLeaseResponseWritesANullCheckpointForAFreshStart() throws {
        let lease = LeaseResponse(jobID: 9, config: JobConfig(name: "w", styleSHA256: sha), token: "t",
                                  leaseSeconds: 60, leaseExpiresAt: Date(timeIntervalSince1970: 100), attempt: 2,
                                  checkpoint: nil)
        let json = try object(lease)
        XCTAssertTrue(json["checkpoint"] is NSNull)
        XCTAssertEqual(json["job_id"] as? Int, 9)
        XCTAssertEqual(json["lease_seconds"] as? Double, 60)
        var resumed = lease
        resumed.checkpoint = CheckpointInfo(step: 40, imagesSeen: 160, sha256: sha, size: 1234)
        let back = try APICoding.decoder().decode(LeaseResponse.self, from: APICoding.encoder().encode(resumed))
        XCTAssertEqual(back, resumed)
    }

    func testHeartbeatResponseRefusesAnUnknownAction() throws {
        let ok = try APICoding.decoder().decode(HeartbeatResponse.self,
                                                from: Data(#"{"action": "continue", "lease_expires_at": 5}"#.utf8))
        XCTAssertEqual(ok, .continue(expiresAt: Date(timeIntervalSince1970: 5)))
        XCTAssertEqual(try APICoding.decoder().decode(HeartbeatResponse.self, from: Data(#"{"action": "cancel"}"#.utf8)),
                       .cancel)
        XCTAssertThrowsError(try APICoding.decoder().decode(HeartbeatResponse.self,
                                                            from: Data(#"{"action": "explode"}"#.utf8))) { error in
            XCTAssertTrue("\(error)".contains("unknown heartbeat action \"explode\""), "\(error)")
        }
    }

    func testHeartbeatRequestDefaultsToNoLossPointsAndCarriesItsProgress() throws {
        let json = #"{"token": "t", "step": 12, "images_done": 48, "images_per_s": 3.5}"#
        let request = try APICoding.decoder().decode(HeartbeatRequest.self, from: Data(json.utf8))
        XCTAssertEqual(request.lossPoints, [])
        XCTAssertEqual(request.progress, JobProgress(step: 12, imagesDone: 48, imagesPerS: 3.5))
    }

    func testLossCSVHasOneRowPerPoint() {
        let csv = LossCSV.render([LossPoint(step: 1, images: 4, content: 2, style: 3, total: 5),
                                  LossPoint(step: 2, images: 8, content: 1.5, style: 0.25, total: 1.75)])
        XCTAssertEqual(csv, "step,images,content,style,total\n1,4,2.0,3.0,5.0\n2,8,1.5,0.25,1.75\n")
    }

    func testNonFiniteNumbersTravelAsStrings() throws {
        let point = LossPoint(step: 1, images: 1, content: .infinity, style: .nan, total: -.infinity)
        let text = String(decoding: try APICoding.encoder().encode(point), as: UTF8.self)
        XCTAssertTrue(text.contains(#""content":"inf""#), text)
        let back = try APICoding.decoder().decode(LossPoint.self, from: Data(text.utf8))
        XCTAssertEqual(back.content, .infinity)
        XCTAssertTrue(back.style.isNaN)
    }
}
