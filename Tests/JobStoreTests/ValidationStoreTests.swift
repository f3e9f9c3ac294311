import CoordinatorAPI
@testable import JobStore
import XCTest

/// Validation points (migration "v6", issue 14): stored from heartbeats and complete, refused
/// when impossible, handed to the next lease with the best checkpoint, kept by retention, and
/// an early stop's reason.
final class ValidationStoreTests: XCTestCase {
    func point(_ step: Int, _ total: Double) -> ValidationPoint {
        ValidationPoint(step: step, content: total / 20, style: total / 40, contentWeighted: total / 2, styleWeighted: total / 2)
    }

    func testHeartbeatsStorePointsAndTheNextLeaseGetsHistoryAndBest() async throws {
        // Given a running job with checkpoints at 100, 200, 300 and validation points there
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "a")
        let l = try await lease(store, worker: "w1")
        for step in [100, 200, 300] {
            try await store.recordCheckpoint(jobID: id, token: l.token, step: step, imagesSeen: step, sha256: digest(step),
                                             size: 1, path: "ck/\(step)")
        }
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 300, imagesDone: 300),
                                      validation: [point(100, 9), point(200, 5), point(300, 7)])
        // A point replaces an earlier one of the same step
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 310, imagesDone: 310),
                                      validation: [point(300, 6), point(310, 4)])
        let stored = try await store.validationPoints(jobID: id)
        XCTAssertEqual(stored.map(\.step), [100, 200, 300, 310])
        XCTAssertEqual(stored[2], point(300, 6))

        // When the lease is handed back and taken again
        try await store.releaseJob(jobID: id, token: l.token)
        let again = try await lease(store, worker: "w2")

        // Then the lease has the points up to its resume step (310 is trained again) and the
        // checkpoint of the best of them
        XCTAssertEqual(again.checkpoint?.step, 300)
        XCTAssertEqual(again.validation.map(\.step), [100, 200, 300])
        XCTAssertEqual(again.best?.step, 200)
        XCTAssertEqual(again.best?.sha256, digest(200))
    }

    func testImpossiblePointsAreRefusedAndChangeNothing() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "a")
        let l = try await lease(store, worker: "w1")
        let before = try await JobSnapshot(store, id)
        for bad in [ValidationPoint(step: 10, content: .nan, style: 1, contentWeighted: 1, styleWeighted: 1),
                    ValidationPoint(step: 10, content: 1, style: -1, contentWeighted: 1, styleWeighted: 1),
                    ValidationPoint(step: 10, content: 1, style: 1, contentWeighted: .infinity, styleWeighted: 1),
                    ValidationPoint(step: -1, content: 1, style: 1, contentWeighted: 1, styleWeighted: 1)] {
            await assertStoreError(try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 10, imagesDone: 40),
                                                             validation: [bad])) {
                if case .invalidReport = $0 { return true } else { return false }
            }
        }
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
        let none = try await store.validationPoints(jobID: id)
        XCTAssertEqual(none, [])
    }

    func testCompleteWithBestStepRecordsTheEarlyStop() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "a")
        let l = try await lease(store, worker: "w1")
        let job = try await store.completeJob(jobID: id, token: l.token, modelSHA256: digest(77), modelSize: 5,
                                              finalProgress: JobProgress(step: 300, imagesDone: 1200),
                                              validation: [point(100, 3), point(200, 4), point(300, 5)], bestStep: 100)
        XCTAssertEqual(job.state, .succeeded)
        XCTAssertEqual(job.stopReason, "early-stopped at step 300 (best step 100)")
        let count = try await store.validationPoints(jobID: id).count
        XCTAssertEqual(count, 3)
        let events = try await store.events(jobID: id)
        XCTAssertTrue(events.last?.reason?.hasPrefix("early-stopped at step 300 (best step 100), model") == true)
    }

    func testABestStepAfterTheLastStepIsRefused() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "a")
        let l = try await lease(store, worker: "w1")
        await assertStoreError(try await store.completeJob(jobID: id, token: l.token, modelSHA256: digest(77), modelSize: 5,
                                                           finalProgress: JobProgress(step: 300, imagesDone: 1200),
                                                           bestStep: 301)) {
            if case .invalidReport = $0 { return true } else { return false }
        }
        let state = try await store.job(id: id)?.state
        XCTAssertEqual(state, .running)
    }

    func testRetentionKeepsTheBestCheckpointOfARunningJob() async throws {
        // Given a running job with five checkpoints, the second the best by validation
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "a")
        let l = try await lease(store, worker: "w1")
        for step in [100, 200, 300, 400, 500] {
            try await store.recordCheckpoint(jobID: id, token: l.token, step: step, imagesSeen: step, sha256: digest(step),
                                             size: 1, path: "ck/\(step)")
        }
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 500, imagesDone: 500),
                                      validation: [point(100, 9), point(200, 2), point(300, 3), point(400, 4), point(500, 5)])
        // When retention keeps the latest two
        let result = try await store.pruneCheckpoints(keepLatest: 2)
        // Then the best one stays too
        XCTAssertEqual(result.dropped.map(\.step), [100, 300])
        let kept = try await store.checkpoints(jobID: id).map(\.step)
        XCTAssertEqual(kept, [200, 400, 500])
        let best = try await store.bestCheckpoint(jobID: id)?.step
        XCTAssertEqual(best, 200)
    }
}
