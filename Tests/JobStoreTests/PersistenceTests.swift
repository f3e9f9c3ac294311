import CoordinatorAPI
@testable import JobStore
import XCTest

/// Reopening the store from its file, and the audit trail.
final class PersistenceTests: XCTestCase {
    func testReopeningKeepsEverythingAndMigratesOnce() async throws {
        // Given a store with a running job, its checkpoint and losses, and a finished job
        let (store, clock, path) = try makeStore(self)
        let ids = try await store.submitJobs([config("done"), config("running", priority: -1)]).created
        let l1 = try await lease(store, worker: "w1")
        try await store.completeJob(jobID: ids[0], token: l1.token, modelSHA256: digest(1), modelSize: 11)
        let l2 = try await lease(store, worker: "w2")
        _ = try await store.heartbeat(jobID: ids[1], token: l2.token, progress: JobProgress(step: 7, imagesDone: 28),
                                      lossPoints: [loss(7, 1.25)])
        try await store.recordCheckpoint(jobID: ids[1], token: l2.token, step: 7, imagesSeen: 28,
                                         sha256: digest(7), size: 70, path: "ck/7")
        let jobsBefore = try await store.jobs()
        let snapshots = [try await JobSnapshot(store, ids[0]), try await JobSnapshot(store, ids[1])]
        let workersBefore = try await store.workers()
        let migrations = try await store.appliedMigrations()
        XCTAssertEqual(migrations, ["v1", "v2", "v3", "v4", "v5", "v6", "v7"])
        try store.close()

        // When the store is opened again from its file (twice)
        _ = try JobStore(path: path, clock: clock)
        let reopened = try JobStore(path: path, clock: clock)

        // Then everything is there, migrations ran once, and the lease still works
        let migrationsAfter = try await reopened.appliedMigrations()
        XCTAssertEqual(migrationsAfter, ["v1", "v2", "v3", "v4", "v5", "v6", "v7"])
        let jobsAfter = try await reopened.jobs()
        XCTAssertEqual(jobsAfter, jobsBefore)
        let doneAfter = try await JobSnapshot(reopened, ids[0])
        let runningAfter = try await JobSnapshot(reopened, ids[1])
        XCTAssertEqual([doneAfter, runningAfter], snapshots)
        let workersAfter = try await reopened.workers()
        XCTAssertEqual(workersAfter, workersBefore)
        let beat = try await reopened.heartbeat(jobID: ids[1], token: l2.token,
                                                progress: JobProgress(step: 8, imagesDone: 32))
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(60)))
        let counts = try await reopened.counts()
        XCTAssertEqual(counts, [.queued: 0, .running: 1, .succeeded: 1, .failed: 0, .cancelled: 0])
    }

    func testEveryTransitionIsRecordedWithReasonAndWorker() async throws {
        // Given a job taken through release, expiry, cancel, retry and success
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "trail")
        let a = try await lease(store, worker: "w1")
        try await store.releaseJob(jobID: id, token: a.token, reason: "worker stopping (SIGINT)")
        _ = try await lease(store, worker: "w2")
        clock.advance(by: 61)
        _ = try await store.expireLeases()
        try await store.cancelJob(id: id, reason: "user cancel")
        try await store.retryJob(id: id)
        let d = try await lease(store, worker: "w3")
        try await store.recordCheckpoint(jobID: id, token: d.token, step: 5, imagesSeen: 20,
                                         sha256: digest(5), size: 5, path: "ck/5")
        try await store.completeJob(jobID: id, token: d.token, modelSHA256: digest(6), modelSize: 6)

        // Then the trail lists each step with its states, reason and worker
        let trail = try await store.events(jobID: id).map {
            [$0.kind.rawValue, $0.fromState?.rawValue ?? "-", $0.toState?.rawValue ?? "-", $0.worker ?? "-"]
                .joined(separator: " ")
        }
        XCTAssertEqual(trail, [
            "submitted - queued -",
            "leased queued running w1",
            "released running queued w1",
            "leased queued running w2",
            "expired running queued w2",
            "cancelled queued cancelled -",
            "retried cancelled queued -",
            "leased queued running w3",
            "checkpointed running running w3",
            "completed running succeeded w3",
        ])
        let reasons = try await store.events(jobID: id).map { $0.reason ?? "" }
        XCTAssertTrue(reasons.allSatisfy { !$0.isEmpty }, "\(reasons)")
        XCTAssertEqual(reasons[1], "attempt 1 of 3, starting at step 0")
        XCTAssertEqual(reasons[2], "worker stopping (SIGINT)")
        XCTAssertTrue(reasons[4].hasPrefix("lease expired (worker w2"), reasons[4])
        XCTAssertEqual(reasons[5], "user cancel")
        XCTAssertEqual(reasons[6], "retried by request")
        XCTAssertEqual(reasons[7], "attempt 1 of 3, starting at step 0")
        XCTAssertEqual(reasons[8], "checkpoint at step 5, 20 images, sha256 \(digest(5).prefix(12))")
        let lastKinds = try await store.recentEvents(limit: 2).map(\.kind)
        XCTAssertEqual(lastKinds, [.checkpointed, .completed])
    }

    func testInMemoryStoreWorks() async throws {
        let store = try JobStore.inMemory(clock: ManualClock())
        let id = try await submitOne(store, "mem")
        let l = try await lease(store, worker: "w1")
        XCTAssertEqual(l.job.id, id)
    }
}
