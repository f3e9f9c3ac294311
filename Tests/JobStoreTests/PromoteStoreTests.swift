import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

/// Issue 14, part 5, in the store: `promoteJob` queues a job that starts from a copy of the
/// source's final checkpoint with its curve up to there; refusals change nothing.
final class PromoteStoreTests: XCTestCase {
    /// A job trained 6 steps (checkpoints at 4 and at its final step 6, loss points 1…6), succeeded.
    func succeededJob(_ store: JobStore, finalCheckpoint: Bool = true) async throws -> Int64 {
        let id = try await submitOne(store, "trial")
        let l = try await lease(store, worker: "w1")
        let points = (1...6).map { loss($0, Double(100 - $0)) }
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 6, imagesDone: 24), lossPoints: points)
        for step in finalCheckpoint ? [4, 6] : [4] {
            try await store.recordCheckpoint(jobID: id, token: l.token, step: step, imagesSeen: step * 4,
                                             sha256: digest(step), size: 10, path: "ck/\(step)")
        }
        _ = try await store.completeJob(jobID: id, token: l.token, modelSHA256: digest(99), modelSize: 7,
                                        finalProgress: JobProgress(step: 6, imagesDone: 24))
        return id
    }

    func testAPromotedJobStartsFromACopyOfTheFinalCheckpointWithTheCurveUpToIt() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await succeededJob(store)
        let job = try await store.promoteJob(id: id, steps: 20)
        XCTAssertEqual(job.name, "trial-promoted")
        XCTAssertEqual(job.state, .queued)
        XCTAssertEqual(job.config.steps, 20)
        XCTAssertEqual(job.resumedFromStep, 6)
        let copied = try await store.checkpoints(jobID: job.id)
        XCTAssertEqual(copied.map(\.step), [6])
        XCTAssertEqual(copied.first?.sha256, digest(6))
        let curve = try await store.lossPoints(jobID: job.id)
        XCTAssertEqual(curve.map(\.step), Array(1...6))
        // Its lease resumes from the final checkpoint
        let l = try await lease(store, worker: "w2")
        XCTAssertEqual(l.job.id, job.id)
        XCTAssertEqual(l.checkpoint?.step, 6)
        XCTAssertEqual(l.checkpoint?.sha256, digest(6))
        // And the source's final checkpoint survives retention (it is what promote needs)
        try await store.pruneCheckpoints(keepLatest: 1)
        let kept = try await store.checkpoints(jobID: id)
        XCTAssertEqual(kept.map(\.step), [6])
    }

    func testRefusalsNameTheProblemAndChangeNothing() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await succeededJob(store)
        let before = try await store.jobs().count
        await assertStoreError(try await store.promoteJob(id: id, steps: 6)) { "\($0)".contains("steps: 6 is not beyond the 6 steps") }
        await assertStoreError(try await store.promoteJob(id: id)) { "\($0)".contains("give the new budget as steps or as epochs") }
        await assertStoreError(try await store.promoteJob(id: id, steps: 9, epochs: 2)) { "\($0)".contains("one of them") }
        await assertStoreError(try await store.promoteJob(id: id, name: "bad name", steps: 9)) { "\($0)".contains("name:") }
        await assertStoreError(try await store.promoteJob(id: 42, steps: 9)) { if case .notFound(42) = $0 { true } else { false } }
        _ = try await store.promoteJob(id: id, steps: 9)
        await assertStoreError(try await store.promoteJob(id: id, steps: 12)) { "\($0)".contains("already queued or running") }
        let after = try await store.jobs().count
        XCTAssertEqual(after, before + 1)

        // A job that did not succeed, or kept no checkpoint at its final step
        let running = try await submitOne(store, "running")
        _ = try await lease(store, worker: "w9")
        await assertStoreError(try await store.promoteJob(id: running, steps: 9)) { if case .invalidTransition = $0 { true } else { false } }
        let (other, _, _) = try makeStore(self)
        let noFinal = try await succeededJob(other, finalCheckpoint: false)
        await assertStoreError(try await other.promoteJob(id: noFinal, steps: 9)) { "\($0)".contains("kept no final checkpoint") }
    }
}
