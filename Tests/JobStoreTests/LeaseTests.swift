import CoordinatorAPI
@testable import JobStore
import XCTest

/// Lease expiry on an injected clock, attempts, and fencing of stale tokens.
final class LeaseTests: XCTestCase {
    // MARK: - Expiry

    func testExpiredLeaseRequeuesWithNextAttempt() async throws {
        // Given a job leased by w1 for 60 s, whose last heartbeat was at t+10
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "mosaic")
        let lease = try await lease(store, worker: "w1")
        clock.advance(by: 10)
        let beat = try await store.heartbeat(jobID: id, token: lease.token, progress: JobProgress(step: 3, imagesDone: 12))
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(60)))

        // When exactly the extended expiry is reached, nothing expires yet
        clock.advance(by: 60)
        let expiredAtDeadline = try await store.expireLeases()
        XCTAssertEqual(expiredAtDeadline, [])
        let stateAtDeadline = try await store.job(id: id)?.state
        XCTAssertEqual(stateAtDeadline, .running)

        // When the clock passes it
        clock.advance(by: 0.5)
        let expired = try await store.expireLeases()

        // Then the job is queued again as attempt 2, with the reason naming the worker
        XCTAssertEqual(expired.count, 1)
        XCTAssertEqual(expired.first?.jobID, id)
        XCTAssertEqual(expired.first?.newState, .queued)
        XCTAssertEqual(expired.first?.worker, "w1")
        let reason = try XCTUnwrap(expired.first?.reason)
        XCTAssertTrue(reason.hasPrefix("lease expired (worker w1 last seen "), reason)
        XCTAssertTrue(reason.hasSuffix(", 61s ago)"), reason)
        let job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.state, .queued)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertNil(job.leaseToken)
        XCTAssertNil(job.leaseExpiresAt)
        let event = try await require { try await store.events(jobID: id).last }
        XCTAssertEqual(event.kind, .expired)
        XCTAssertEqual(event.fromState, .running)
        XCTAssertEqual(event.toState, .queued)
        XCTAssertEqual(event.reason, reason)
        XCTAssertEqual(event.at, clock.now())
        // And a second sweep finds nothing
        let secondSweep = try await store.expireLeases()
        XCTAssertEqual(secondSweep, [])
    }

    func testMaxAttemptsReachedFailsWithReason() async throws {
        // Given a job with three attempts whose every lease expires
        let (store, clock, _) = try makeStore(self, leaseDuration: 30)
        let id = try await submitOne(store, "candy")
        for attempt in 1...3 {
            let lease = try await lease(store, worker: "w\(attempt)")
            XCTAssertEqual(lease.job.attempt, attempt)
            clock.advance(by: 31)
        }

        // When leases are next expired
        let expired = try await store.expireLeases()

        // Then the job fails, saying which attempt it was
        XCTAssertEqual(expired.map(\.newState), [.failed])
        let job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.state, .failed)
        XCTAssertEqual(job.attempt, 3)
        XCTAssertEqual(job.failureReason, "lease expired on attempt 3 of 3")
        XCTAssertEqual(job.finishedAt, clock.now())
        let leaseAfterFailure = try await store.leaseNextJob(worker: "w4", host: "h", threads: 1)
        XCTAssertNil(leaseAfterFailure)
        let kinds = try await store.events(jobID: id).map(\.kind)
        XCTAssertEqual(kinds, [.submitted, .leased, .expired, .leased, .expired, .leased, .expired])
    }

    func testCustomLeaseDurationIsKeptByHeartbeats() async throws {
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "wave")
        let lease = try await require { try await store.leaseNextJob(worker: "w1", host: "h", threads: 1, leaseDuration: 5) }
        XCTAssertEqual(lease.expiresAt, clock.now().addingTimeInterval(5))
        clock.advance(by: 4)
        let beat = try await store.heartbeat(jobID: id, token: lease.token, progress: JobProgress(step: 1, imagesDone: 4))
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(5)))
    }

    func testLateHeartbeatAfterExpiryIsRefusedAndRequeues() async throws {
        // Given a lease that ran out while nobody swept
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "udnie")
        let lease = try await lease(store, worker: "w1")
        clock.advance(by: 61)

        // When its worker finally reports
        await assertStoreError(try await store.heartbeat(jobID: id, token: lease.token,
                                                         progress: JobProgress(step: 50, imagesDone: 200),
                                                         lossPoints: [loss(50, 1)]), isStaleLease(id))

        // Then the report is not recorded, but the expiry is
        let job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.state, .queued)
        XCTAssertEqual(job.attempt, 2)
        XCTAssertEqual(job.step, 0)
        let points = try await store.lossPoints(jobID: id)
        XCTAssertEqual(points, [])
        let lastKind = try await store.events(jobID: id).last?.kind
        XCTAssertEqual(lastKind, .expired)
    }

    // MARK: - Fencing

    func testOldTokenIsFencedAfterReleaseToAnotherWorker() async throws {
        // Given w1's lease expired and w2 leased the job and reported progress
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "starry")
        let a = try await lease(store, worker: "w1")
        _ = try await store.heartbeat(jobID: id, token: a.token, progress: JobProgress(step: 4, imagesDone: 16),
                                      lossPoints: [loss(4, 9)])
        clock.advance(by: 61)
        let b = try await lease(store, worker: "w2")
        XCTAssertEqual(b.job.id, id)
        XCTAssertEqual(b.job.attempt, 2)
        _ = try await store.heartbeat(jobID: id, token: b.token, progress: JobProgress(step: 2, imagesDone: 8),
                                      lossPoints: [loss(2, 5)])
        let before = try await JobSnapshot(store, id)

        // When w1, presumed dead, reports, uploads and completes with its old token
        await assertStoreError(try await store.heartbeat(jobID: id, token: a.token,
                                                         progress: JobProgress(step: 80, imagesDone: 320),
                                                         lossPoints: [loss(2, 100), loss(80, 100)]), isStaleLease(id))
        await assertStoreError(try await store.recordCheckpoint(jobID: id, token: a.token, step: 80, imagesSeen: 320,
                                                                sha256: digest(7), size: 7, path: "ck/7"), isStaleLease(id))
        await assertStoreError(try await store.completeJob(jobID: id, token: a.token,
                                                           modelSHA256: digest(8), modelSize: 8), isStaleLease(id))
        await assertStoreError(try await store.failJob(jobID: id, token: a.token, reason: "x", retryable: true),
                               isStaleLease(id))
        await assertStoreError(try await store.releaseJob(jobID: id, token: a.token), isStaleLease(id))

        // Then every row is as w2 left it
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
        XCTAssertEqual(after.job?.leaseOwner, "w2")
        XCTAssertEqual(after.job?.leaseToken, b.token)
        XCTAssertEqual(after.lossPoints, [loss(2, 5)])
        XCTAssertEqual(after.checkpoints, [])
        // And w2 carries on
        try await store.completeJob(jobID: id, token: b.token, modelSHA256: digest(9), modelSize: 9)
        let finalState = try await store.job(id: id)?.state
        XCTAssertEqual(finalState, .succeeded)
    }

    func testUnknownTokenAndJobAreRefused() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "x")
        _ = try await lease(store, worker: "w1")
        await assertStoreError(try await store.heartbeat(jobID: id, token: "forged",
                                                         progress: JobProgress(step: 1, imagesDone: 1)), isStaleLease(id))
        await assertStoreError(try await store.heartbeat(jobID: 42, token: "t",
                                                         progress: JobProgress(step: 1, imagesDone: 1))) {
            if case .notFound(42) = $0 { return true } else { return false }
        }
    }

    func testBadReportsAreRefusedWithoutChange() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "x")
        let l = try await lease(store, worker: "w1")
        let before = try await JobSnapshot(store, id)
        let isInvalid: (StoreError) -> Bool = { if case .invalidReport(id, _) = $0 { return true } else { return false } }
        await assertStoreError(try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: -1, imagesDone: 0)), isInvalid)
        await assertStoreError(try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 1, imagesDone: 4),
                                                         lossPoints: [LossPoint(step: 1, images: 4, content: .nan, style: 1, total: .nan)]), isInvalid)
        await assertStoreError(try await store.recordCheckpoint(jobID: id, token: l.token, step: 1, imagesSeen: 4,
                                                                sha256: "not-a-digest", size: 1, path: "p"), isInvalid)
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
    }
}
