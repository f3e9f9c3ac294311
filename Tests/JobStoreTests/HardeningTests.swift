import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

/// Issue 11: what a worker sends is bounded and escaped before it is stored, and polling
/// alone leaves no trace.
final class HardeningTests: XCTestCase {
    /// Finding 11: a failure reason of megabytes with escape sequences went into the job row,
    /// the events, the logs and `orchestrator status` as it was.
    func testFreeTextFromAWorkerIsBoundedAndEscaped() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "wave", maxAttempts: 1)
        let l = try await store.leaseNextJob(worker: "w1", host: "evil\u{1B}]0;owned\u{07}" + String(repeating: "h", count: 5000),
                                             threads: Int.max)
        let lease = try XCTUnwrap(l)
        let reason = "\u{1B}[2J\u{1B}[H" + String(repeating: "x", count: 8 << 20)
        let failed = try await store.failJob(jobID: id, token: lease.token, reason: reason, retryable: false)
        let stored = try XCTUnwrap(failed.failureReason)
        XCTAssertLessThanOrEqual(stored.utf8.count, Sanitize.maxFreeText + 3)
        XCTAssertFalse(stored.unicodeScalars.contains { $0.value == 0x1B })
        XCTAssertTrue(stored.hasPrefix(#"\u{1B}[2J\u{1B}[H"#), stored.prefix(40).description)
        let events = try await store.events(jobID: id)
        XCTAssertTrue(events.allSatisfy { ($0.reason ?? "").utf8.count <= Sanitize.maxFreeText + 3 })
        let workers = try await store.workers()
        let worker = try XCTUnwrap(workers.first)
        XCTAssertLessThanOrEqual(worker.host.utf8.count, 258)
        XCTAssertTrue(Sanitize.isClean(worker.host, limit: 258), worker.host)
        XCTAssertEqual(worker.threads, 1 << 16)
    }

    /// Finding 7: every `POST /v1/lease` with a new worker name added a worker row (and a
    /// metrics series), even when nothing was leased.
    func testPollingWithoutALeaseAddsNoWorker() async throws {
        let (store, _, _) = try makeStore(self)
        for i in 0..<50 {
            let nothing = try await store.leaseNextJob(worker: "poller-\(i)", host: "h", threads: 1)
            XCTAssertNil(nothing)
        }
        let none = try await store.workers()
        XCTAssertEqual(none.count, 0)
        _ = try await submitOne(store, "wave")
        _ = try await store.leaseNextJob(worker: "poller-7", host: "h", threads: 1)
        let one = try await store.workers()
        XCTAssertEqual(one.map(\.name), ["poller-7"])
    }

    /// Finding 13: lease tokens are compared in constant time; the comparison is exact.
    func testTokenComparisonIsExact() async throws {
        XCTAssertTrue(constantTimeEqual("0123abcd", "0123abcd"))
        XCTAssertFalse(constantTimeEqual("0123abcd", "0123abce"))
        XCTAssertFalse(constantTimeEqual("0123abcd", "0123abc"))
        XCTAssertFalse(constantTimeEqual(nil, ""))
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "wave")
        let leased = try await store.leaseNextJob(worker: "w1", host: "h", threads: 1)
        let lease = try XCTUnwrap(leased)
        var forged = Array(lease.token)
        forged[forged.count - 1] = forged.last == "0" ? "1" : "0"
        await assertStoreError(try await store.heartbeat(jobID: id, token: String(forged),
                                                         progress: JobProgress(step: 1, imagesDone: 1))) { error in
            if case .staleLease = error { return true }
            return false
        }
    }
}

/// Issue 11, findings 6 and 8: time the coordinator could not hear its workers is not charged
/// to them.
final class GraceTests: XCTestCase {
    /// Finding 6: after a restart, every lease whose deadline passed during the outage expired
    /// at once with attempt + 1; three maintenance restarts failed every running job.
    func testARestartGivesRunningLeasesAFullPeriodOfGrace() async throws {
        let (store, clock, path) = try makeStore(self, leaseDuration: 60)
        let id = try await submitOne(store, "wave", maxAttempts: 3)
        let lease = try await lease(store, worker: "w1")
        try store.close()

        // The coordinator is down for five minutes, then starts again on the same file.
        clock.advance(by: 300)
        let restarted = try JobStore(path: path, clock: clock, leaseDuration: 60)
        let extended = try await restarted.grantGrace()
        XCTAssertEqual(extended, 1)
        let expired = try await restarted.expireLeases()
        XCTAssertEqual(expired, [], "no lease expires for the outage")

        // The worker, still alive, is heard again: its lease holds and no attempt is charged.
        clock.advance(by: 30)
        let beat = try await restarted.heartbeat(jobID: id, token: lease.token, progress: JobProgress(step: 3, imagesDone: 3))
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(60)))
        // A worker that died during the outage is noticed one lease period later.
        clock.advance(by: 61)
        let late = try await restarted.expireLeases()
        XCTAssertEqual(late.map(\.jobID), [id])
        XCTAssertEqual(late.first?.attempt, 1)
        try restarted.close()
    }

    /// Finding 8: with the disk full, heartbeats failed (500) and could not extend leases, and
    /// when space returned every overdue lease expired at once.
    func testLeasesSurviveAFullDiskAndGetGraceWhenSpaceReturns() async throws {
        let (store, clock, _) = try makeStore(self, leaseDuration: 60)
        let id = try await submitOne(store, "wave")
        let lease = try await lease(store, worker: "w1")

        // The disk fills up: SQLite may not grow the file any more.
        try await store.dbWriter.write { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 1
            _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(pages)")
        }
        let points = (1...2000).map { LossPoint(step: $0, images: $0, content: 1, style: 1, total: 2) }
        clock.advance(by: 20)
        do {
            _ = try await store.heartbeat(jobID: id, token: lease.token, progress: JobProgress(step: 2000, imagesDone: 2000),
                                          lossPoints: points)
            XCTFail("the heartbeat should not fit")
        } catch let error as StoreError {
            XCTAssertTrue(error.isStorageFull, "\(error)")
        }
        // The worker keeps trying for longer than its lease while the disk is full.
        clock.advance(by: 120)

        // Space returns.
        try await store.dbWriter.write { db in _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = 1073741823") }
        let expired = try await store.expireLeases()
        XCTAssertEqual(expired, [], "the first write after the outage grants grace before expiring")
        let beat = try await store.heartbeat(jobID: id, token: lease.token, progress: JobProgress(step: 2000, imagesDone: 2000),
                                             lossPoints: points)
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(60)))
        let job = try await store.job(id: id)
        XCTAssertEqual(job?.attempt, 1)
    }
}
