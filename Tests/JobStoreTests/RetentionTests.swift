import CoordinatorAPI
@testable import JobStore
import XCTest

/// Checkpoint retention (`pruneCheckpoints`): what each state keeps, what stays referenced,
/// and that retry and re-leasing still resume from the latest checkpoint.
final class RetentionTests: XCTestCase {
    /// Five jobs, one per state, each with checkpoints every 100 steps.
    struct Fixture {
        var store: JobStore
        var running: Int64, queued: Int64, succeeded: Int64, failed: Int64, cancelled: Int64
        static let model = digest(9_000_001)
        static let preview = digest(9_000_002)
    }

    /// Job `index`'s checkpoint at `step` has the digest `index * 1000 + step`.
    func checkpoints(_ store: JobStore, _ id: Int64, token: String, index: Int, steps: [Int]) async throws {
        for step in steps {
            try await store.recordCheckpoint(jobID: id, token: token, step: step, imagesSeen: step * 4,
                                             sha256: digest(index * 1000 + step), size: Int64(step), path: "ck/\(step)")
        }
    }

    func makeFixture() async throws -> Fixture {
        let (store, _, _) = try makeStore(self)
        // Each job is leased while it is the only one queued.
        let succeeded = try await submitOne(store, "succeeded")
        var l = try await lease(store, worker: "w1")
        try await checkpoints(store, succeeded, token: l.token, index: 1, steps: [100, 200, 300])
        try await store.completeJob(jobID: succeeded, token: l.token, modelSHA256: Fixture.model, modelSize: 7)

        let failed = try await submitOne(store, "failed")
        l = try await lease(store, worker: "w1")
        try await checkpoints(store, failed, token: l.token, index: 2, steps: [100, 200, 300])
        try await store.failJob(jobID: failed, token: l.token, reason: "loss is NaN", retryable: false)

        let cancelled = try await submitOne(store, "cancelled")
        l = try await lease(store, worker: "w1")
        try await checkpoints(store, cancelled, token: l.token, index: 3, steps: [100, 200, 300])
        try await store.cancelJob(id: cancelled)

        let running = try await submitOne(store, "running")
        l = try await lease(store, worker: "w1")
        try await checkpoints(store, running, token: l.token, index: 4, steps: [100, 200, 300, 400])
        try await store.recordPreview(jobID: running, token: l.token, step: 400, sha256: Fixture.preview)

        let queued = try await submitOne(store, "queued")
        l = try await lease(store, worker: "w2")
        try await checkpoints(store, queued, token: l.token, index: 5, steps: [100, 200, 300])
        try await store.releaseJob(jobID: queued, token: l.token)
        return Fixture(store: store, running: running, queued: queued, succeeded: succeeded, failed: failed, cancelled: cancelled)
    }

    func steps(_ store: JobStore, _ id: Int64) async throws -> [Int] {
        try await store.checkpoints(jobID: id).map(\.step)
    }

    func testEachStateKeepsWhatItNeeds() async throws {
        // Given jobs in every state with three or four checkpoints each
        let f = try await makeFixture()
        let styles = try await f.store.jobs().map(\.job.config.styleSHA256)

        // When retention keeps 2 checkpoints per live job
        let result = try await f.store.pruneCheckpoints(keepLatest: 2)

        // Then running and queued jobs keep their latest two, failed and cancelled their latest,
        // and the succeeded job its latest too (its final weights and Adam state, for promote)
        let v1 = try await steps(f.store, f.running), v2 = try await steps(f.store, f.queued)
        XCTAssertEqual(v1, [300, 400])
        XCTAssertEqual(v2, [200, 300])
        let v3 = try await steps(f.store, f.failed), v4 = try await steps(f.store, f.cancelled)
        XCTAssertEqual(v3, [300])
        XCTAssertEqual(v4, [300])
        let v5 = try await steps(f.store, f.succeeded)
        XCTAssertEqual(v5, [300])
        let succeeded = try await f.store.job(id: f.succeeded)
        XCTAssertNotNil(succeeded?.latestCheckpointID)
        XCTAssertEqual(succeeded?.modelSHA256, Fixture.model)
        XCTAssertEqual(result.dropped.map { "\($0.jobID)/\($0.step)" },
                       ["\(f.succeeded)/100", "\(f.succeeded)/200",
                        "\(f.failed)/100", "\(f.failed)/200", "\(f.cancelled)/100", "\(f.cancelled)/200",
                        "\(f.running)/100", "\(f.running)/200", "\(f.queued)/100"])
        // And the rows still reference the kept checkpoints, the model, the preview and every
        // job's style image, and none of the dropped checkpoints
        let kept = [4300, 4400, 5200, 5300, 2300, 3300, 1300].map(digest)
        XCTAssertEqual(result.referenced, Set(kept + styles + [Fixture.model, Fixture.preview]))
        let again = try await f.store.referencedArtifacts()
        XCTAssertEqual(again, result.referenced)

        // And a second pass drops nothing more
        let second = try await f.store.pruneCheckpoints(keepLatest: 2)
        XCTAssertEqual(second.dropped, [])
    }

    func testDryRunChangesNothingAndAnswersTheSame() async throws {
        let f = try await makeFixture()
        var before: [JobSnapshot] = []
        for id in [f.running, f.queued, f.succeeded, f.failed, f.cancelled] { before.append(try await JobSnapshot(f.store, id)) }

        let dry = try await f.store.pruneCheckpoints(keepLatest: 1, dryRun: true)

        var after: [JobSnapshot] = []
        for id in [f.running, f.queued, f.succeeded, f.failed, f.cancelled] { after.append(try await JobSnapshot(f.store, id)) }
        XCTAssertEqual(after, before)
        let real = try await f.store.pruneCheckpoints(keepLatest: 1)
        XCTAssertEqual(dry, real)
    }

    func testRetriedAndReleasedJobsResumeFromTheirLatestCheckpointAfterPruning() async throws {
        // Given pruned failed, cancelled and queued jobs
        let f = try await makeFixture()
        try await f.store.pruneCheckpoints(keepLatest: 1)

        // When the queued job is leased, then the failed and the cancelled ones are retried and leased
        let q = try await lease(f.store, worker: "w3")
        XCTAssertEqual(q.job.id, f.queued)
        XCTAssertEqual(q.checkpoint?.step, 300)
        XCTAssertEqual(q.checkpoint?.sha256, digest(5300))
        for (id, index) in [(f.failed, 2), (f.cancelled, 3)] {
            try await f.store.retryJob(id: id)
            let l = try await lease(f.store, worker: "w\(index)")

            // Then each resumes from its checkpoint at step 300
            XCTAssertEqual(l.job.id, id)
            XCTAssertEqual(l.checkpoint?.step, 300)
            XCTAssertEqual(l.checkpoint?.sha256, digest(index * 1000 + 300))
            XCTAssertEqual(l.job.resumedFromStep, 300)
        }
    }

    func testADigestSharedWithAKeptRowStaysReferenced() async throws {
        // Given two running jobs whose old checkpoint and newest checkpoint have the same bytes
        let (store, _, _) = try makeStore(self)
        let a = try await submitOne(store, "a")
        let la = try await lease(store, worker: "w1")
        try await checkpoints(store, a, token: la.token, index: 1, steps: [100, 200, 300])
        let b = try await submitOne(store, "b")
        let lb = try await lease(store, worker: "w2")
        try await store.recordCheckpoint(jobID: b, token: lb.token, step: 100, imagesSeen: 400,
                                         sha256: digest(1100), size: 100, path: "ck/100")

        // When a's checkpoint at 100 is dropped
        let result = try await store.pruneCheckpoints(keepLatest: 2)

        // Then its digest is still referenced, by b
        XCTAssertEqual(result.dropped.map(\.sha256), [digest(1100)])
        XCTAssertTrue(result.referenced.contains(digest(1100)))
    }

    func testKeepingFewerThanOneIsRefused() async throws {
        let (store, _, _) = try makeStore(self)
        await assertStoreError(try await store.pruneCheckpoints(keepLatest: 0)) {
            if case .invalidConfig = $0 { return true } else { return false }
        }
    }
}
