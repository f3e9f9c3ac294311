import CoordinatorAPI
@testable import JobStore
import XCTest

/// Issue 14, parts 6 and 7 in the store (migration "v7"): an auto style weight reported in a
/// heartbeat is recorded and checked; a warm start's candidates in the lease, what submit
/// refuses, what a heartbeat may claim, and the artifacts a worker may then download.
final class WarmStartStoreTests: XCTestCase {
    /// Submits, leases and completes `name` with style image `style` and model `digest(model)`.
    func finished(_ store: JobStore, _ name: String, style: Int, model: Int) async throws -> Int64 {
        var c = config(name)
        c.styleSHA256 = digest(style)
        let submitted = try await store.submitJobs([c]).created
        let id = try XCTUnwrap(submitted.first)
        let l = try await lease(store, worker: "w-\(name)")
        XCTAssertEqual(l.job.id, id)
        _ = try await store.completeJob(jobID: id, token: l.token, modelSHA256: digest(model), modelSize: 100 + Int64(model),
                                        finalProgress: JobProgress(step: 10, imagesDone: 40))
        return id
    }

    func testNearestOffersTheNewestFinishedModelPerStyleAndKeepsAnEarlierChoice() async throws {
        // Given finished jobs: two of style 1 (the newer wins), one of style 2; and a failed one
        let (store, _, _) = try makeStore(self)
        _ = try await finished(store, "old", style: 1, model: 11)
        let newer = try await finished(store, "newer", style: 1, model: 12)
        let other = try await finished(store, "other", style: 2, model: 13)
        _ = try await submitOne(store, "broken")
        let b = try await lease(store, worker: "wb")
        _ = try await store.failJob(jobID: b.job.id, token: b.token, reason: "x", retryable: false)

        // When a job with "init": "nearest" is leased
        var c = config("new")
        c.initFrom = "nearest"
        let submitted = try await store.submitJobs([c]).created
        let id = try XCTUnwrap(submitted.first)
        let (credential, _) = try await store.createWorkerCredential(name: "w1")
        let leased = try await store.leaseNextJob(worker: "w1", host: "h", threads: 1, credentialID: credential.id)
        let l = try XCTUnwrap(leased)

        // Then the candidates are the newest finished job of each style, newest first
        XCTAssertEqual(l.initCandidates.map(\.jobID), [other, newer])
        XCTAssertEqual(l.initCandidates[1].model, WeightsInfo(sha256: digest(12), size: 112))
        XCTAssertEqual(l.initCandidates[1].styleSHA256, digest(1))
        // And its worker may download their style images and models, not the old job's model
        for sha in [digest(1), digest(2), digest(12), digest(13)] {
            let needed = try await store.artifactNeeded(sha256: sha, byCredential: credential.id)
            XCTAssertTrue(needed, sha)
        }
        let oldModel = try await store.artifactNeeded(sha256: digest(11), byCredential: credential.id)
        XCTAssertFalse(oldModel)

        // When the worker reports its choice, and the job is later leased again from scratch
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 0, imagesDone: 0),
                                      warmStart: WarmStartReport(jobID: other, distance: 0.25, candidates: 2))
        let job = try await store.job(id: id)
        XCTAssertEqual(job?.warmStartJobID, other)
        XCTAssertEqual(job?.warmStart, "job \(other) (other): Gram distance 0.25, nearest of 2")
        try await store.releaseJob(jobID: id, token: l.token)
        let again = try await lease(store, worker: "w2")

        // Then the lease offers only the model chosen before
        XCTAssertEqual(again.initCandidates.map(\.jobID), [other])
    }

    func testAChoiceStaysAcceptedWhenANewerJobOfItsStyleFinishesAfterTheLease() async throws {
        // Given a nearest job leased while "first" (style 1) was the only candidate, and a job
        // of the same style that finishes afterwards (so "first" is no longer the newest)
        let (store, _, _) = try makeStore(self)
        let first = try await finished(store, "first", style: 1, model: 11)
        var later = config("later")
        later.styleSHA256 = digest(1)
        later.priority = -1
        var c = config("new")
        c.initFrom = "nearest"
        let submitted = try await store.submitJobs([c, later]).created
        let l = try await lease(store, worker: "w1")
        XCTAssertEqual(l.job.id, submitted[0])
        XCTAssertEqual(l.initCandidates.map(\.jobID), [first])
        let other = try await lease(store, worker: "w2")
        _ = try await store.completeJob(jobID: other.job.id, token: other.token, modelSHA256: digest(12), modelSize: 5,
                                        finalProgress: JobProgress(step: 10, imagesDone: 40))

        // When the worker reports the candidate its lease offered
        let result = try await store.heartbeat(jobID: submitted[0], token: l.token, progress: JobProgress(step: 0, imagesDone: 0),
                                               warmStart: WarmStartReport(jobID: first, distance: 0, candidates: 1))

        // Then it is recorded (a refusal would stop the job)
        guard case .continue = result else { return XCTFail("\(result)") }
        let job = try await store.job(id: submitted[0])
        XCTAssertEqual(job?.warmStartJobID, first)
    }

    func testInitJobMustNameAFinishedJobAndAResumeOffersNothing() async throws {
        let (store, _, _) = try makeStore(self)
        let source = try await finished(store, "src", style: 1, model: 11)
        let running = try await submitOne(store, "busy")
        var bad = config("x")
        for (text, expected) in [("job:999", "there is no job 999"), ("job:\(running)", "has no model to start from (it is queued)")] {
            bad.initFrom = text
            await assertStoreError(try await store.submitJobs([bad])) { error in
                guard case .invalidConfig(let reason) = error else { return false }
                return reason.contains(expected) && reason.contains("init:")
            }
        }
        bad.initFrom = "job:1x"
        await assertStoreError(try await store.submitJobs([bad])) {
            if case .invalidConfig(let reason) = $0 { return reason.contains("expected \"nearest\" or \"job:ID\"") } else { return false }
        }
        _ = try await lease(store, worker: "w0")  // "busy" takes its lease; nothing else was created

        var good = config("warm")
        good.initFrom = "job:\(source)"
        let submitted = try await store.submitJobs([good]).created
        let id = try XCTUnwrap(submitted.first)
        let l = try await lease(store, worker: "w1")
        XCTAssertEqual(l.job.id, id)
        XCTAssertEqual(l.initCandidates.map(\.jobID), [source])

        // A report naming another job is refused and changes nothing
        let before = try await JobSnapshot(store, id)
        await assertStoreError(try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 1, imagesDone: 4),
                                                         warmStart: WarmStartReport(jobID: running))) {
            if case .invalidReport(_, let reason) = $0 { return reason.contains("is not a model job") } else { return false }
        }
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)

        // A resumed attempt has its checkpoint: no candidates
        try await store.recordCheckpoint(jobID: id, token: l.token, step: 5, imagesSeen: 20, sha256: digest(500), size: 1, path: "ck")
        try await store.releaseJob(jobID: id, token: l.token)
        let resumed = try await lease(store, worker: "w2")
        XCTAssertEqual(resumed.checkpoint?.step, 5)
        XCTAssertEqual(resumed.initCandidates, [])
    }

    func testAnAutoStyleWeightIsRecordedAndHostileValuesAreRefused() async throws {
        let (store, _, _) = try makeStore(self)
        var auto = config("auto")
        auto.styleRatio = 2
        let submitted = try await store.submitJobs([auto]).created
        let id = try XCTUnwrap(submitted.first)
        let l = try await lease(store, worker: "w1")
        let before = try await JobSnapshot(store, id)
        for bad in [Double.nan, .infinity, 0, -5, 1e31] {
            await assertStoreError(try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 1, imagesDone: 4),
                                                             styleWeight: bad)) {
                if case .invalidReport(_, let reason) = $0 { return reason.contains("style_weight") } else { return false }
            }
        }
        let after = try await JobSnapshot(store, id)
        XCTAssertEqual(after, before)
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 1, imagesDone: 4), styleWeight: 12345.5)
        let recorded = try await store.job(id: id)?.chosenStyleWeight
        XCTAssertEqual(recorded, 12345.5)

        // A job with a fixed weight may not report one
        let fixed = try await submitOne(store, "fixed")
        let f = try await lease(store, worker: "w2")
        XCTAssertEqual(f.job.id, fixed)
        await assertStoreError(try await store.heartbeat(jobID: fixed, token: f.token, progress: JobProgress(step: 1, imagesDone: 4),
                                                         styleWeight: 100)) {
            if case .invalidReport(_, let reason) = $0 { return reason.contains("does not choose its style weight") } else { return false }
        }
    }
}
