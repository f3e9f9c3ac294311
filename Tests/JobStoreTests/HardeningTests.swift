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
