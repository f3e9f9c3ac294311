import CoordinatorAPI
import GRDB
@testable import JobStore
import XCTest

/// Migration "v2" and `recordPreview`: the latest preview image of each job.
final class PreviewTests: XCTestCase {
    func testRecordPreviewReplacesTheLatestAndAppendsAnEvent() async throws {
        // Given a running job
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "mosaic")
        let l = try await lease(store, worker: "w1")
        let fresh = try await store.job(id: id)
        XCTAssertNil(fresh?.previewSHA256)
        XCTAssertNil(fresh?.previewStep)

        // When its worker records two previews
        clock.advance(by: 5)
        let first = try await store.recordPreview(jobID: id, token: l.token, step: 5, sha256: digest(5))
        clock.advance(by: 5)
        try await store.recordPreview(jobID: id, token: l.token, step: 10, sha256: digest(10))

        // Then the second is the job's latest, stored and returned, with one event each
        XCTAssertEqual(first.previewSHA256, digest(5))
        XCTAssertEqual(first.previewStep, 5)
        let job = try await store.job(id: id)
        XCTAssertEqual(job?.previewSHA256, digest(10))
        XCTAssertEqual(job?.previewStep, 10)
        XCTAssertEqual(job?.updatedAt, clock.now())
        XCTAssertEqual(job?.state, .running)
        let events = try await store.events(jobID: id).filter { $0.kind == .previewed }
        XCTAssertEqual(events.map(\.reason), ["preview at step 5, sha256 \(digest(5).prefix(12))",
                                              "preview at step 10, sha256 \(digest(10).prefix(12))"])
        XCTAssertEqual(events.map(\.worker), ["w1", "w1"])
        let counts = try await store.eventCounts()
        XCTAssertEqual(counts[.previewed], 2)
        XCTAssertEqual(counts[.leased], 1)
        XCTAssertNil(counts[.expired])
    }

    func testStaleTokenIsRefusedAndChangesNothing() async throws {
        // Given a job whose first lease expired and that w2 now holds, with w2's preview
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "wave")
        let a = try await lease(store, worker: "w1")
        clock.advance(by: 61)
        let b = try await lease(store, worker: "w2")
        try await store.recordPreview(jobID: id, token: b.token, step: 3, sha256: digest(3))
        let before = try await JobSnapshot(store, id)

        // When w1 (presumed dead) uploads a preview, Then it is refused and nothing changes
        await assertStoreError(try await store.recordPreview(jobID: id, token: a.token, step: 9, sha256: digest(9)),
                               isStaleLease(id))
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
        XCTAssertEqual(after.job?.previewSHA256, digest(3))
    }

    func testBadReportsAreRefused() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "dots")
        let l = try await lease(store, worker: "w1")
        let before = try await JobSnapshot(store, id)
        let isInvalid: (StoreError) -> Bool = { if case .invalidReport(id, _) = $0 { return true } else { return false } }
        await assertStoreError(try await store.recordPreview(jobID: id, token: l.token, step: -1, sha256: digest(1)),
                               isInvalid)
        await assertStoreError(try await store.recordPreview(jobID: id, token: l.token, step: 1, sha256: "ABC"),
                               isInvalid)
        await assertStoreError(try await store.recordPreview(jobID: 99, token: l.token, step: 1, sha256: digest(1))) {
            if case .notFound(99) = $0 { return true } else { return false }
        }
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
    }

    func testPreviewBeforeTheResumedStepIsRefused() async throws {
        // Given an attempt resumed from the checkpoint at step 20
        let (store, clock, _) = try makeStore(self)
        let id = try await submitOne(store, "strokes")
        let a = try await lease(store, worker: "w1")
        try await store.recordCheckpoint(jobID: id, token: a.token, step: 20, imagesSeen: 80,
                                         sha256: digest(20), size: 20, path: "ck/20")
        try await store.recordPreview(jobID: id, token: a.token, step: 25, sha256: digest(25))
        clock.advance(by: 61)
        let b = try await lease(store, worker: "w2")
        XCTAssertEqual(b.job.resumedFromStep, 20)

        // Then a preview of step 19 is refused; one at step 20 replaces the older attempt's 25
        await assertStoreError(try await store.recordPreview(jobID: id, token: b.token, step: 19, sha256: digest(19))) {
            if case .invalidReport(id, let reason) = $0 { return reason.contains("before step 20") } else { return false }
        }
        try await store.recordPreview(jobID: id, token: b.token, step: 20, sha256: digest(200))
        let job = try await store.job(id: id)
        XCTAssertEqual(job?.previewStep, 20)
        XCTAssertEqual(job?.previewSHA256, digest(200))
        // And the expiry in between was counted
        let counts = try await store.eventCounts()
        XCTAssertEqual(counts[.expired], 1)
    }

    func testMigratingAVersion1FileKeepsItsJobs() async throws {
        // Given a database file migrated only to "v1", holding one job
        let path = try makeTemporaryDirectory(self).appendingPathComponent("jobs.sqlite").path
        do {
            let queue = try DatabaseQueue(path: path)
            try JobStore.migrator.migrate(queue, upTo: "v1")
            try await queue.write { db in
                try db.execute(sql: """
                    INSERT INTO jobs (name, config_json, state, created_at, updated_at)
                    VALUES ('old', ?, 'queued', 1, 1)
                    """, arguments: [String(decoding: try JSONEncoder().encode(config("old")), as: UTF8.self)])
            }
            try queue.close()
        }

        // When the store opens it
        let store = try JobStore(path: path, clock: ManualClock())
        defer { try? store.close() }

        // Then "v2" is applied, the old job reads back without a preview, and can get one
        let migrations = try await store.appliedMigrations()
        XCTAssertEqual(migrations, ["v1", "v2", "v3", "v4", "v5", "v6", "v7"])
        let old = try await store.job(named: "old")
        XCTAssertEqual(old?.name, "old")
        XCTAssertNil(old?.previewSHA256)
        let l = try await lease(store, worker: "w1")
        try await store.recordPreview(jobID: l.job.id, token: l.token, step: 0, sha256: digest(7))
        let updated = try await store.job(named: "old")
        XCTAssertEqual(updated?.previewSHA256, digest(7))
        XCTAssertEqual(updated?.previewStep, 0)
    }
}
