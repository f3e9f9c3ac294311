import CoordinatorAPI
@testable import JobStore
import XCTest

/// Checkpoints, resuming from the latest one, and loss curves across a resume.
final class ResumeTests: XCTestCase {
    func testReleaseResumesFromLatestCheckpointAndReplacesRedoneSteps() async throws {
        // Given w1 trained to step 250 with checkpoints at 100 and 200, then stopped
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "mosaic")
        let a = try await lease(store, worker: "w1")
        _ = try await store.heartbeat(jobID: id, token: a.token, progress: JobProgress(step: 150, imagesDone: 600),
                                      lossPoints: [loss(100, 9), loss(150, 8)])
        try await store.recordCheckpoint(jobID: id, token: a.token, step: 100, imagesSeen: 400,
                                         sha256: digest(100), size: 100, path: "ck/100")
        let ck200 = try await store.recordCheckpoint(jobID: id, token: a.token, step: 200, imagesSeen: 800,
                                                     sha256: digest(200), size: 200, path: "ck/200")
        _ = try await store.heartbeat(jobID: id, token: a.token, progress: JobProgress(step: 250, imagesDone: 1000),
                                      lossPoints: [loss(200, 7), loss(201, 6.9), loss(250, 6)])
        let latestBefore = try await store.latestCheckpoint(jobID: id)
        XCTAssertEqual(latestBefore, ck200)

        // When its lease expires and w2 leases the job
        clock.advance(by: 61)
        let b = try await lease(store, worker: "w2")

        // Then w2 resumes from the checkpoint at step 200
        XCTAssertEqual(b.checkpoint, ck200)
        XCTAssertEqual(b.job.resumedFromStep, 200)
        XCTAssertEqual(b.job.step, 200)
        XCTAssertEqual(b.job.imagesDone, 800)
        let storedResume = try await store.job(id: id)?.resumedFromStep
        XCTAssertEqual(storedResume, 200)
        // And the abandoned attempt's losses after step 200 are gone, earlier ones kept
        let steps = try await store.lossPoints(jobID: id).map(\.step)
        XCTAssertEqual(steps, [100, 150, 200])
        let latestLoss = try await store.jobs().first?.latestLoss
        XCTAssertEqual(latestLoss, loss(200, 7))

        // When w2 redoes step 201 with a different loss
        _ = try await store.heartbeat(jobID: id, token: b.token, progress: JobProgress(step: 201, imagesDone: 804),
                                      lossPoints: [loss(201, 5.5)])

        // Then step 201 appears once, with w2's value
        let curve = try await store.lossPoints(jobID: id)
        XCTAssertEqual(curve.map(\.step), [100, 150, 200, 201])
        XCTAssertEqual(curve.last, loss(201, 5.5))
        let latestLossAfter = try await store.jobs().first?.latestLoss
        XCTAssertEqual(latestLossAfter, loss(201, 5.5))
    }

    func testSameStepReportedTwiceWithinALeaseIsReplaced() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "wave")
        let l = try await lease(store, worker: "w1")
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 3, imagesDone: 12),
                                      lossPoints: [loss(2, 4), loss(3, 3)])
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 4, imagesDone: 16),
                                      lossPoints: [loss(3, 2.5), loss(4, 2)])
        let points = try await store.lossPoints(jobID: id)
        XCTAssertEqual(points, [loss(2, 4), loss(3, 2.5), loss(4, 2)])
    }

    func testOutOfOrderHeartbeatDoesNotMoveProgressBack() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "wave")
        let l = try await lease(store, worker: "w1")
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 9, imagesDone: 36, imagesPerS: 2))
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 7, imagesDone: 28, imagesPerS: 1))
        let job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.step, 9)
        XCTAssertEqual(job.imagesDone, 36)
        XCTAssertEqual(job.imagesPerS, 2)
    }

    func testCheckpointOfSameStepIsReplacedAndOlderOneDoesNotBecomeLatest() async throws {
        // Given a checkpoint at step 20
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "candy")
        let l = try await lease(store, worker: "w1")
        let first = try await store.recordCheckpoint(jobID: id, token: l.token, step: 20, imagesSeen: 80,
                                                     sha256: digest(20), size: 20, path: "ck/a")

        // When step 20 is uploaded again (a retried upload) and then a late step 10 arrives
        let again = try await store.recordCheckpoint(jobID: id, token: l.token, step: 20, imagesSeen: 80,
                                                     sha256: digest(21), size: 21, path: "ck/b")
        try await store.recordCheckpoint(jobID: id, token: l.token, step: 10, imagesSeen: 40,
                                         sha256: digest(10), size: 10, path: "ck/c")

        // Then step 20 is one row with the new file, and it stays the latest
        XCTAssertEqual(again.id, first.id)
        let steps = try await store.checkpoints(jobID: id).map(\.step)
        XCTAssertEqual(steps, [10, 20])
        let latest = try await require { try await store.latestCheckpoint(jobID: id) }
        XCTAssertEqual(latest.sha256, digest(21))
        XCTAssertEqual(latest.path, "ck/b")
        let checkpointEvents = try await store.events(jobID: id).filter { $0.kind == .checkpointed }.count
        XCTAssertEqual(checkpointEvents, 3)
    }

    func testCheckpointBeforeResumePointIsRefused() async throws {
        // Given a job resumed from step 100
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "udnie")
        let a = try await lease(store, worker: "w1")
        try await store.recordCheckpoint(jobID: id, token: a.token, step: 100, imagesSeen: 400,
                                         sha256: digest(1), size: 1, path: "ck/1")
        try await store.releaseJob(jobID: id, token: a.token)
        let b = try await lease(store, worker: "w2")
        XCTAssertEqual(b.job.resumedFromStep, 100)

        // When a checkpoint of step 50 is recorded, it is refused
        await assertStoreError(try await store.recordCheckpoint(jobID: id, token: b.token, step: 50, imagesSeen: 200,
                                                                sha256: digest(2), size: 2, path: "ck/2")) {
            if case .invalidReport(id, _) = $0 { return true } else { return false }
        }
        let steps = try await store.checkpoints(jobID: id).map(\.step)
        XCTAssertEqual(steps, [100])
    }

    func testRetriedJobResumesFromItsCheckpoint() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "scream")
        let a = try await lease(store, worker: "w1")
        try await store.recordCheckpoint(jobID: id, token: a.token, step: 30, imagesSeen: 120,
                                         sha256: digest(30), size: 30, path: "ck/30")
        try await store.cancelJob(id: id)
        try await store.retryJob(id: id)
        let b = try await lease(store, worker: "w2")
        XCTAssertEqual(b.job.resumedFromStep, 30)
        XCTAssertEqual(b.checkpoint?.step, 30)
    }
}
