import CoordinatorAPI
@testable import JobStore
import XCTest

/// Every state transition of a job, and the ones that must be refused.
final class LifecycleTests: XCTestCase {
    // MARK: - Happy path

    func testQueuedToRunningToSucceeded() async throws {
        // Given a queued job
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "mosaic")
        var job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.state, .queued)
        XCTAssertEqual(job.attempt, 1)

        // When a worker leases it, reports progress and completes it
        clock.advance(by: 5)
        let lease = try await lease(store, worker: "w1")
        XCTAssertEqual(lease.job.id, id)
        XCTAssertEqual(lease.token.count, 32)
        XCTAssertEqual(lease.expiresAt, clock.now().addingTimeInterval(60))
        XCTAssertNil(lease.checkpoint)
        let beat = try await store.heartbeat(jobID: id, token: lease.token,
                                             progress: JobProgress(step: 10, imagesDone: 40, imagesPerS: 3.5),
                                             lossPoints: [loss(9, 2.0), loss(10, 1.5)])
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(60)))
        clock.advance(by: 1)
        try await store.completeJob(jobID: id, token: lease.token, modelSHA256: digest(99), modelSize: 1234)

        // Then it is succeeded with its model, progress and the worker's name recorded
        job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.state, .succeeded)
        XCTAssertEqual(job.modelSHA256, digest(99))
        XCTAssertEqual(job.modelSize, 1234)
        XCTAssertEqual(job.step, 10)
        XCTAssertEqual(job.imagesDone, 40)
        XCTAssertEqual(job.imagesPerS, 3.5)
        XCTAssertEqual(job.leaseOwner, "w1")
        XCTAssertNil(job.leaseExpiresAt)
        XCTAssertEqual(job.finishedAt, clock.now())
        let points = try await store.lossPoints(jobID: id)
        XCTAssertEqual(points, [loss(9, 2.0), loss(10, 1.5)])
        let events = try await store.events(jobID: id).map { "\($0.kind.rawValue):\($0.toState?.rawValue ?? "-")" }
        XCTAssertEqual(events, ["submitted:queued", "leased:running", "completed:succeeded"])
        let worker = try await store.workers().first
        XCTAssertEqual(worker?.name, "w1")
        XCTAssertNil(worker?.currentJobID)

        // And a repeated completion (lost response) is answered the same, while a heartbeat is refused
        let again = try await store.completeJob(jobID: id, token: lease.token, modelSHA256: digest(99), modelSize: 1234)
        XCTAssertEqual(again, job)
        await assertStoreError(try await store.heartbeat(jobID: id, token: lease.token,
                                                         progress: JobProgress(step: 11, imagesDone: 44)),
                               isStaleLease(id))
    }

    // MARK: - Back to the queue

    func testReleaseRequeuesWithSameAttempt() async throws {
        // Given a running job
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "wave")
        let first = try await lease(store, worker: "w1")

        // When its worker hands it back
        let released = try await store.releaseJob(jobID: id, token: first.token, reason: "SIGTERM")

        // Then it is queued, same attempt, lease cleared, and the old token is refused
        XCTAssertEqual(released.state, .queued)
        XCTAssertEqual(released.attempt, 1)
        XCTAssertNil(released.leaseToken)
        XCTAssertNil(released.leaseOwner)
        let currentJob = try await store.workers().first?.currentJobID
        XCTAssertNil(currentJob)
        let last = try await require { try await store.events(jobID: id).last }
        XCTAssertEqual(last.kind, .released)
        XCTAssertEqual(last.reason, "SIGTERM")
        XCTAssertEqual(last.worker, "w1")
        await assertStoreError(try await store.releaseJob(jobID: id, token: first.token), isStaleLease(id))
        let second = try await lease(store, worker: "w2")
        XCTAssertEqual(second.job.attempt, 1)
        XCTAssertNotEqual(second.token, first.token)
    }

    func testRetryableFailureRequeuesThenFailsAtMaxAttempts() async throws {
        // Given a job allowed two attempts
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "candy", maxAttempts: 2)

        // When both attempts fail with a retryable error
        let first = try await lease(store, worker: "w1")
        let requeued = try await store.failJob(jobID: id, token: first.token, reason: "disk full", retryable: true)
        XCTAssertEqual(requeued.state, .queued)
        XCTAssertEqual(requeued.attempt, 2)
        let second = try await lease(store, worker: "w1")
        let failed = try await store.failJob(jobID: id, token: second.token, reason: "disk full", retryable: true)

        // Then the job fails with the reason and the attempt count
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.failureReason, "disk full (attempt 2 of 2)")
        let nextLease = try await store.leaseNextJob(worker: "w1", host: "h", threads: 1)
        XCTAssertNil(nextLease)
    }

    func testNonRetryableFailureFailsAtOnce() async throws {
        // Given a running job on its first of three attempts
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "udnie")
        let lease = try await lease(store, worker: "w1")

        // When its loss becomes NaN
        let failed = try await store.failJob(jobID: id, token: lease.token,
                                             reason: "loss is NaN at step 12", retryable: false)

        // Then it fails immediately, without another attempt
        XCTAssertEqual(failed.state, .failed)
        XCTAssertEqual(failed.attempt, 1)
        XCTAssertEqual(failed.failureReason, "loss is NaN at step 12")
        let stored = try await store.job(id: id)
        XCTAssertEqual(stored, failed)
        let nextLease = try await store.leaseNextJob(worker: "w2", host: "h", threads: 1)
        XCTAssertNil(nextLease)
    }

    // MARK: - Cancel and retry

    func testCancelQueuedJob() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "scream")

        let cancelled = try await store.cancelJob(id: id)

        XCTAssertEqual(cancelled.state, .cancelled)
        let nextLease = try await store.leaseNextJob(worker: "w1", host: "h", threads: 1)
        XCTAssertNil(nextLease)
        let cancelledCount = try await store.counts()[.cancelled]
        XCTAssertEqual(cancelledCount, 1)
    }

    func testCancelRunningJobStopsWorkerAndRefusesLaterReports() async throws {
        // Given a running job with one loss point
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "starry")
        let lease = try await lease(store, worker: "w1")
        _ = try await store.heartbeat(jobID: id, token: lease.token,
                                      progress: JobProgress(step: 5, imagesDone: 20), lossPoints: [loss(5, 3)])

        // When it is cancelled
        try await store.cancelJob(id: id)
        let before = try await JobSnapshot(store, id)

        // Then the worker's next heartbeat says so and records nothing
        let beat = try await store.heartbeat(jobID: id, token: lease.token,
                                             progress: JobProgress(step: 9, imagesDone: 36), lossPoints: [loss(9, 2)])
        XCTAssertEqual(beat, .cancelled)
        // And every other report under that token is refused, changing nothing
        await assertStoreError(try await store.recordCheckpoint(
            jobID: id, token: lease.token, step: 9, imagesSeen: 36, sha256: digest(1), size: 10, path: "c/1"),
            isStaleLease(id))
        await assertStoreError(try await store.completeJob(jobID: id, token: lease.token,
                                                           modelSHA256: digest(2), modelSize: 1), isStaleLease(id))
        await assertStoreError(try await store.failJob(jobID: id, token: lease.token, reason: "x", retryable: false),
                               isStaleLease(id))
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
        XCTAssertEqual(after.job?.step, 5)
        XCTAssertEqual(after.events.last?.kind, .cancelled)
        XCTAssertEqual(after.events.last?.worker, "w1")
    }

    func testRetryFailedAndCancelledJobs() async throws {
        // Given a failed job and a cancelled one
        let (store, _, _) = try makeStore(self)
        let failedID = try await submitOne(store, "a")
        let cancelledID = try await submitOne(store, "b")
        let lease = try await lease(store, worker: "w1")
        try await store.failJob(jobID: failedID, token: lease.token, reason: "NaN", retryable: false)
        try await store.cancelJob(id: cancelledID)

        // When both are retried
        let retriedFailed = try await store.retryJob(id: failedID)
        let retriedCancelled = try await store.retryJob(id: cancelledID)

        // Then both are queued afresh: attempt 1, no failure reason, no lease
        for job in [retriedFailed, retriedCancelled] {
            XCTAssertEqual(job.state, .queued)
            XCTAssertEqual(job.attempt, 1)
            XCTAssertNil(job.failureReason)
            XCTAssertNil(job.leaseToken)
        }
        let lastKind = try await store.events(jobID: failedID).last?.kind
        XCTAssertEqual(lastKind, .retried)
        let queuedCount = try await store.counts()[.queued]
        XCTAssertEqual(queuedCount, 2)
    }

    func testInvalidTransitionsAreRefusedAndChangeNothing() async throws {
        // Given one job in each of queued, running and succeeded
        let (store, _, _) = try makeStore(self)
        let done = try await submitOne(store, "done")
        let running = try await submitOne(store, "running")
        let queued = try await submitOne(store, "queued")
        let l1 = try await lease(store, worker: "w1")
        try await store.completeJob(jobID: done, token: l1.token, modelSHA256: digest(3), modelSize: 3)
        _ = try await lease(store, worker: "w2")
        let snapshots = [try await JobSnapshot(store, done), try await JobSnapshot(store, running),
                         try await JobSnapshot(store, queued)]

        // When impossible transitions are asked for, they are refused with context
        await assertStoreError(try await store.cancelJob(id: done), isInvalidTransition(done, from: .succeeded, to: .cancelled))
        await assertStoreError(try await store.retryJob(id: done), isInvalidTransition(done, from: .succeeded, to: .queued))
        await assertStoreError(try await store.retryJob(id: running), isInvalidTransition(running, from: .running, to: .queued))
        await assertStoreError(try await store.retryJob(id: queued), isInvalidTransition(queued, from: .queued, to: .queued))
        await assertStoreError(try await store.cancelJob(id: 999)) {
            if case .notFound(999) = $0 { return true } else { return false }
        }
        await assertStoreError(try await store.completeJob(jobID: queued, token: l1.token,
                                                           modelSHA256: digest(4), modelSize: 4), isStaleLease(queued))

        // Then nothing changed
        let after = [try await JobSnapshot(store, done), try await JobSnapshot(store, running),
                     try await JobSnapshot(store, queued)]
        XCTAssertEqual(after, snapshots)
    }
}
