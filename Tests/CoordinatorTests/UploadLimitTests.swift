@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
@testable import JobStore
import NIOCore
import XCTest

/// Per-kind upload limits (413), the store quota (507), and a full disk (507).
final class UploadLimitTests: XCTestCase {
    // MARK: - Limits per kind

    func testDefaultLimitsPerKindCappedByMaxUploadBytes() throws {
        let limits = UploadLimits()
        XCTAssertEqual([limits.artifact, limits.checkpoint, limits.model, limits.preview],
                       [64 << 20, 256 << 20, 256 << 20, 8 << 20])
        var config = CoordinatorConfig(stateDir: URL(fileURLWithPath: "/nonexistent"), maxUploadBytes: 100 << 20)
        config.storage.uploadLimits.model = 50 << 20
        let store = ArtifactStore(config: config)
        XCTAssertEqual(UploadKind.allCases.map { store.limit(for: $0) },
                       [100 << 20, 50 << 20, 8 << 20, 64 << 20])  // checkpoint, model, preview, artifact
    }

    func testEachKindIsRefusedAboveItsOwnLimitWithAMessageNamingIt() async throws {
        let f = try StorageFixture {
            $0.storage.uploadLimits.artifact = 1000
            $0.storage.uploadLimits.checkpoint = 2000
            $0.storage.uploadLimits.model = 3000
            $0.storage.uploadLimits.preview = 500
        }
        defer { f.cleanUp() }
        try await f.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))  // 230 bytes
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()
            let before = f.harness.files()

            let artifact = try await client.tryPutArtifact(bytes(1001, seed: 1))
            XCTAssertEqual(artifact.status, .contentTooLarge)
            XCTAssertEqual(errorText(artifact), "upload of 1001 bytes exceeds the limit of 1000 bytes for style images and other artifacts")
            let checkpoint = try await client.putCheckpoint(job: 1, step: 1, images: 1, data: bytes(2001, seed: 2), leaseToken: lease.token)
            XCTAssertEqual(checkpoint.status, .contentTooLarge)
            XCTAssertEqual(errorText(checkpoint), "upload of 2001 bytes exceeds the limit of 2000 bytes for checkpoints")
            let model = try await client.putModel(job: 1, data: bytes(3001, seed: 3), leaseToken: lease.token)
            XCTAssertEqual(model.status, .contentTooLarge)
            XCTAssertEqual(errorText(model), "upload of 3001 bytes exceeds the limit of 3000 bytes for models")
            let png = makePNG(width: 16, height: 16)
            let preview = try await client.putPreview(job: 1, step: 1, data: png, leaseToken: lease.token)
            XCTAssertEqual(preview.status, .contentTooLarge)
            XCTAssertEqual(errorText(preview), "upload of \(png.count) bytes exceeds the limit of 500 bytes for previews")
            XCTAssertEqual(f.harness.files(), before)
            XCTAssertEqual(f.harness.tmpFiles(), [])

            // at the limit, each is accepted
            let ok1 = try await client.tryPutArtifact(bytes(1000, seed: 1)).status
            let ok2 = try await client.putCheckpoint(job: 1, step: 1, images: 1, data: bytes(2000, seed: 2), leaseToken: lease.token).status
            let ok3 = try await client.putModel(job: 1, data: bytes(3000, seed: 3), leaseToken: lease.token).status
            XCTAssertEqual([ok1, ok2, ok3], [.created, .created, .created])
        }
    }

    func testTheStreamedBodyIsCheckedNotOnlyItsDeclaredLength() async throws {
        // Given a store whose artifact limit is 1000 bytes
        let f = try StorageFixture { $0.storage.uploadLimits.artifact = 1000 }
        defer { f.cleanUp() }
        let store = ArtifactStore(config: f.config)
        try store.prepare()

        // When a body declared as 500 bytes runs on past the limit (one buffer of 1200 bytes)
        let body = TestBody()
        body.send(bytes(1200, seed: 1))
        body.finish()
        do {
            _ = try await store.ingest(body.stream, expected: String(repeating: "a", count: 64), contentLength: 500, kind: .artifact)
            XCTFail("accepted a body past the limit")
        } catch let error as APIError {
            // Then it is cut with a 413 once past the limit, and nothing is kept
            XCTAssertEqual(error.status, .contentTooLarge)
            XCTAssertEqual(error.message, "upload body exceeds the limit of 1000 bytes for style images and other artifacts (1200 bytes received so far)")
        }
        XCTAssertEqual(f.harness.tmpFiles(), [])
        XCTAssertEqual(f.harness.files(), [])

        // And a body past its declared length but within the limit is a 400 (cut at its
        // declared length: no more than that is ever written)
        let short = TestBody()
        short.send(bytes(800, seed: 1))
        short.finish()
        do {
            _ = try await store.ingest(short.stream, expected: String(repeating: "a", count: 64), contentLength: 500, kind: .artifact)
            XCTFail("accepted a body longer than declared")
        } catch let error as APIError {
            XCTAssertEqual(error.status, .badRequest)
            XCTAssertEqual(error.message, "body longer than its Content-Length of 500 bytes")
        }
        XCTAssertEqual(f.harness.tmpFiles(), [])
    }

    // MARK: - Store quota

    func testUploadsPastTheStoreQuotaAre507AndACollectionMakesRoom() async throws {
        let f = try StorageFixture { $0.storage.maxStoreBytes = 10_000 }
        defer { f.cleanUp() }
        try await f.app().test(.router) { client in
            // Given 6000 bytes stored
            let a = bytes(6000, seed: 1), b = bytes(6000, seed: 2)
            try await client.putArtifact(a)

            // When 6000 more are uploaded
            let refused = try await client.tryPutArtifact(b)

            // Then the answer is 507 with the quota, and nothing is kept
            XCTAssertEqual(refused.status.code, 507)
            XCTAssertEqual(errorText(refused), "the artifact store is full: this artifact of 6000 bytes would take it past its quota of "
                           + "10000 bytes (6000 stored, 0 reserved by uploads in progress); run `orchestrator gc` or raise `serve --max-store-bytes`")
            XCTAssertFalse(f.artifactExists(sha256Hex(b)))
            XCTAssertEqual(f.harness.tmpFiles(), [])
            // and uploading what is already stored again adds nothing, so it is accepted
            let same = try await client.tryPutArtifact(a).status
            XCTAssertEqual(same, .created)

            // When another process's collection deletes the unused 6000 bytes
            let report = try await f.collect(hoursLater: 2)
            XCTAssertEqual(report.unreferenced.bytes, 6000)

            // Then the upload fits
            let fits = try await client.tryPutArtifact(b).status
            XCTAssertEqual(fits, .created)
        }
    }

    func testConcurrentUploadsCannotJointlyPassTheQuota() async throws {
        let f = try StorageFixture { $0.storage.maxStoreBytes = 10_000 }
        defer { f.cleanUp() }
        let store = ArtifactStore(config: f.config)
        try store.prepare()
        let a = bytes(6000, seed: 1), b = bytes(6000, seed: 2)

        // Given an upload of 6000 bytes in progress (1000 sent)
        let slow = TestBody()
        slow.send(a.prefix(1000))
        let first = Task { try await store.ingest(slow.stream, expected: sha256Hex(a), contentLength: 6000, kind: .checkpoint) }
        while store.usage.current.reserved == 0 { try await Task.sleep(for: .milliseconds(10)) }

        // When a second one of 6000 bytes starts
        let body = TestBody()
        body.send(b)
        body.finish()
        do {
            _ = try await store.ingest(body.stream, expected: sha256Hex(b), contentLength: 6000, kind: .checkpoint)
            XCTFail("two uploads passed the quota together")
        } catch let error as APIError {
            // Then it is refused, counting the first one's reservation
            XCTAssertEqual(error.status.code, 507)
            XCTAssertTrue(error.message.contains("(0 stored, 6000 reserved by uploads in progress)"), error.message)
        }

        // And the first completes
        slow.send(a.dropFirst(1000))
        slow.finish()
        let size = try await first.value
        XCTAssertEqual(size, 6000)
        XCTAssertEqual(store.usage.current.stored, 6000)
        XCTAssertEqual(store.usage.current.reserved, 0)
    }

    // MARK: - Disk full

    func testADiskFullUploadIs507AndLeavesNoFileAndTheStoreConsistent() async throws {
        // Given a coordinator whose disk fills up when the switch is on: writes past 1000
        // bytes fail with ENOSPC, and an fsync at 1500 bytes with EDQUOT
        let full = Locked(false)
        let f = try StorageFixture {
            $0.storage.writeFault = { offset in
                guard full.withLockedValue({ $0 }) else { return nil }
                return offset == 1500 ? EDQUOT : offset >= 1000 ? ENOSPC : nil
            }
        }
        defer { f.cleanUp() }
        try await f.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()
            let good = bytes(3000, seed: 1)
            let first = try await client.putCheckpoint(job: 1, step: 2, images: 2, data: good, leaseToken: lease.token).status
            XCTAssertEqual(first, .created)
            let before = f.harness.files()
            full.withLockedValue { $0 = true }

            // When a checkpoint of 5000 bytes is uploaded (written whole, then fsync fails)
            let next = bytes(5000, seed: 2)
            let refused = try await client.execute(
                uri: "/v1/jobs/1/checkpoints/4", method: .put,
                headers: headers(token: Harness.token, [.init("X-Lease-Token")!: lease.token, .init("X-Content-SHA256")!: sha256Hex(next),
                                                        .init("X-Images-Seen")!: "4", .contentLength: "5000"]),
                body: ByteBuffer(bytes: next))

            // Then the answer is 507 saying the disk is full, no file is left, and step 2 stays the latest
            XCTAssertEqual(refused.status.code, 507)
            XCTAssertTrue(errorText(refused).hasPrefix("the coordinator's disk is full (fsync upload: No space left on device)"),
                          errorText(refused))
            XCTAssertTrue(errorText(refused).hasSuffix("nothing was kept"), errorText(refused))
            XCTAssertEqual(f.harness.tmpFiles(), [])
            XCTAssertEqual(f.harness.files(), before)
            let latest = try await f.store.latestCheckpoint(jobID: 1)
            XCTAssertEqual(latest?.step, 2)
            let rows = try await f.store.checkpoints(jobID: 1).count
            XCTAssertEqual(rows, 1)

            // And a quota exceeded at fsync is a 507 as well, leaving nothing
            let artifact = try await client.tryPutArtifact(bytes(1500, seed: 3))
            XCTAssertEqual(artifact.status.code, 507)
            XCTAssertTrue(errorText(artifact).hasPrefix("the coordinator's disk is full (fsync upload: Disk quota exceeded)"),
                          errorText(artifact))
            XCTAssertEqual(f.harness.tmpFiles(), [])
            XCTAssertEqual(f.harness.files(), before)

            // And a write that fails midway (buffers of 800 bytes: the third one fails) leaves nothing
            let store = ArtifactStore(config: f.config)
            let body = TestBody()
            for start in stride(from: 0, to: 5000, by: 800) { body.send(next[start..<min(start + 800, 5000)]) }
            body.finish()
            do {
                _ = try await store.ingest(body.stream, expected: sha256Hex(next), contentLength: 5000, kind: .checkpoint)
                XCTFail("stored an upload on a full disk")
            } catch let error as APIError {
                XCTAssertEqual(error.status.code, 507)
                XCTAssertEqual(error.message, "the coordinator's disk is full (write upload: No space left on device) "
                               + "while storing a checkpoint of 5000 bytes; nothing was kept")
            }
            XCTAssertEqual(f.harness.tmpFiles(), [])
            XCTAssertEqual(f.harness.files(), before)

            // And once there is room again, the same upload succeeds and is recorded
            full.withLockedValue { $0 = false }
            let retried = try await client.putCheckpoint(job: 1, step: 4, images: 4, data: next, leaseToken: lease.token).status
            XCTAssertEqual(retried, .created)
            let after = try await f.store.latestCheckpoint(jobID: 1)
            XCTAssertEqual(after?.sha256, sha256Hex(next))
            try await f.assertEveryReferencedFileExists()
        }
    }

    func testADatabaseThatCannotGrowIs507AndRecordsNothing() async throws {
        let f = try StorageFixture()
        defer { f.cleanUp() }
        try await f.app().test(.router) { client in
            // Given a running job with a checkpoint at step 2
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave"], style: style)
            let lease = try await client.lease()
            let first = try await client.putCheckpoint(job: 1, step: 2, images: 2, data: bytes(3000, seed: 1), leaseToken: lease.token).status
            XCTAssertEqual(first, .created)

            // And a database that cannot grow, as on a full disk (SQLite answers SQLITE_FULL
            // past max_page_count); the free room in its pages is filled up
            try await f.store.dbWriter.writeWithoutTransaction { db in
                let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
                for size in [2000, 500, 100, 20, 1] {
                    while (try? db.execute(sql: "INSERT INTO events (job_id, at, kind, reason) VALUES (NULL, 0, 'submitted', ?)",
                                           arguments: [String(repeating: "x", count: size)])) != nil {}
                }
            }

            // When the next checkpoint is uploaded
            let next = bytes(5000, seed: 2)
            let refused = try await client.putCheckpoint(job: 1, step: 4, images: 4, data: next, leaseToken: lease.token)

            // Then the answer is 507, nothing is recorded, and step 2 stays the latest
            XCTAssertEqual(refused.status.code, 507)
            XCTAssertTrue(errorText(refused).hasPrefix("the coordinator's disk is full: database error during recordCheckpoint"),
                          errorText(refused))
            let latest = try await f.store.latestCheckpoint(jobID: 1)
            XCTAssertEqual(latest?.step, 2)
            XCTAssertEqual(f.harness.tmpFiles(), [])
            try await f.assertEveryReferencedFileExists()

            // And once the database can grow again, the stored but unrecorded file is
            // unreferenced (collected after the grace age) and the upload can be repeated
            try await f.store.dbWriter.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA max_page_count = 1000000") }
            let report = try await f.collect(hoursLater: 2)
            XCTAssertEqual(report.unreferenced.files, 1)
            XCTAssertFalse(f.artifactExists(sha256Hex(next)))
            let retried = try await client.putCheckpoint(job: 1, step: 4, images: 4, data: next, leaseToken: lease.token).status
            XCTAssertEqual(retried, .created)
            try await f.assertEveryReferencedFileExists()
        }
    }
}
