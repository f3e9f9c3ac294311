import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

/// Served datasets in the store (migration "v5"): registration and versions, how submit
/// resolves and pins them, what they keep from the garbage collector, and heartbeats'
/// loss network.
final class DatasetTests: XCTestCase {
    /// Dataset `name` with manifest digest `digest(manifest)` and one shard per entry of `shards`.
    func served(_ name: String, manifest: Int, shards: [Int]) -> ServedDataset {
        ServedDataset(ref: DatasetRef(name: name, sha256: digest(manifest), size: 500, files: 10 * shards.count, excluded: 1,
                                      bytes: 1000 * Int64(shards.count), shards: shards.count),
                      shards: shards.map { DatasetManifest.Shard(sha256: digest($0), size: 1000) })
    }

    func job(_ name: String, dataset: String? = nil, datasetSHA256: String? = nil) -> JobConfig {
        var c = config(name)
        c.dataset = dataset
        c.datasetSHA256 = datasetSHA256
        return c
    }

    func invalidConfigReason(_ body: @autoclosure () async throws -> SubmitResult, file: StaticString = #filePath,
                             line: UInt = #line) async -> String {
        do {
            let result = try await body()
            XCTFail("expected invalidConfig, got \(result)", file: file, line: line)
        } catch StoreError.invalidConfig(let reason) {
            return reason
        } catch {
            XCTFail("expected invalidConfig, got \(error)", file: file, line: line)
        }
        return ""
    }

    // MARK: - Registration

    func testARestartWithAnUnchangedFolderRegistersTheSameRowAgain() async throws {
        let (store, clock, _) = try makeStore(self)
        let first = try await store.registerDatasets([served("coco", manifest: 1, shards: [11, 12]), served("tiny", manifest: 2, shards: [21])])
        XCTAssertEqual(first.map(\.isNew), [true, true])
        XCTAssertEqual(first.map(\.replaced), [nil, nil])
        clock.advance(by: 3600)

        // When the coordinator restarts with the same folders
        let again = try await store.registerDatasets([served("coco", manifest: 1, shards: [11, 12]), served("tiny", manifest: 2, shards: [21])])

        // Then the rows are the same ones: no duplicate, first registration time kept
        XCTAssertEqual(again.map(\.isNew), [false, false])
        XCTAssertEqual(again.map(\.replaced), [nil, nil])
        let versions = try await store.datasetVersions()
        XCTAssertEqual(versions.map(\.sha256), [digest(1), digest(2)])
        XCTAssertEqual(versions.map(\.registeredAt), [first[0].version.registeredAt, first[1].version.registeredAt])
        let current = try await store.servedDatasets()
        XCTAssertEqual(current.map(\.ref), [served("coco", manifest: 1, shards: [11, 12]).ref, served("tiny", manifest: 2, shards: [21]).ref])
        XCTAssertEqual(current.map(\.servedPosition), [0, 1])
        let shards = try await store.datasetShards(sha256: digest(1))
        XCTAssertEqual(shards.map(\.sha256), [digest(11), digest(12)])

        // And the order given decides the default
        try await store.registerDatasets([served("tiny", manifest: 2, shards: [21]), served("coco", manifest: 1, shards: [11, 12])])
        let reordered = try await store.servedDatasets()
        XCTAssertEqual(reordered.map(\.name), ["tiny", "coco"])
    }

    func testInconsistentDatasetsAreRefusedAndChangeNothing() async throws {
        let (store, _, _) = try makeStore(self)
        try await store.registerDatasets([served("coco", manifest: 1, shards: [11])])
        var wrongCount = served("b", manifest: 3, shards: [31])
        wrongCount.shards = []
        let bad: [[ServedDataset]] = [
            [served("a/b", manifest: 2, shards: [21])],
            [served("a", manifest: 2, shards: [21]), served("a", manifest: 3, shards: [31])],
            [wrongCount],
            [ServedDataset(ref: DatasetRef(name: "c", sha256: "xyz", size: 1, files: 1, excluded: 0, bytes: 1, shards: 0), shards: [])],
            [served("renamed", manifest: 1, shards: [11])],  // a digest registered under another name
        ]
        for datasets in bad {
            await assertStoreError(try await store.registerDatasets(datasets)) {
                if case .invalidDataset = $0 { return true } else { return false }
            }
        }
        let current = try await store.servedDatasets()
        XCTAssertEqual(current.map(\.name), ["coco"])
        let versions = try await store.datasetVersions()
        XCTAssertEqual(versions.count, 1)
    }

    // MARK: - Versions, pins and what stays referenced

    func testAnOldVersionStaysWhileAJobThatCanStillTrainPinsIt() async throws {
        let (store, _, _) = try makeStore(self)
        try await store.registerDatasets([served("coco", manifest: 1, shards: [11, 12])])
        let queued = try await submitOne(store, "queued")
        let failed = try await submitOne(store, "failed")
        let cancelled = try await submitOne(store, "cancelled")
        let pinned = try await store.job(id: queued)
        XCTAssertEqual(pinned?.config.dataset, "coco")
        XCTAssertEqual(pinned?.config.datasetSHA256, digest(1))

        // When the folder changes (shard 12 unchanged) and the coordinator restarts
        let changed = try await store.registerDatasets([served("coco", manifest: 2, shards: [13, 12])])
        XCTAssertEqual(changed.map(\.isNew), [true])
        XCTAssertEqual(changed.map(\.replaced), [digest(1)])

        // Then new jobs pin the new version, and the old one's files are still referenced
        let newer = try await submitOne(store, "newer")
        let newJob = try await store.job(id: newer)
        XCTAssertEqual(newJob?.config.datasetSHA256, digest(2))
        var referenced = try await store.referencedArtifacts()
        for n in [1, 11, 12, 2, 13] { XCTAssertTrue(referenced.contains(digest(n)), "\(n)") }

        // While one pinning job is failed (it may be retried) and one cancelled, the version stays
        let l = try await lease(store, worker: "w1")  // the oldest queued job: "queued"
        XCTAssertEqual(l.job.id, queued)
        try await store.failJob(jobID: queued, token: l.token, reason: "loss is NaN", retryable: false)
        _ = failed
        try await store.cancelJob(id: cancelled)
        var retention = try await store.pruneCheckpoints(keepLatest: 2)
        XCTAssertEqual(retention.droppedDatasets, [])
        XCTAssertTrue(retention.referenced.contains(digest(11)))
        let kept = try await store.datasetVersion(sha256: digest(1))
        XCTAssertNotNil(kept)

        // When no job that could still train pins it (the queued one cancelled, the failed one too)
        try await store.cancelJob(id: failed)
        let retried = try await store.retryJob(id: queued)  // failed → queued: still allowed
        XCTAssertEqual(retried.state, .queued)
        try await store.cancelJob(id: queued)
        let dry = try await store.pruneCheckpoints(keepLatest: 2, dryRun: true)
        XCTAssertEqual(dry.droppedDatasets.map(\.sha256), [digest(1)])
        let stillThere = try await store.datasetVersion(sha256: digest(1))
        XCTAssertNotNil(stillThere, "a dry run drops nothing")
        retention = try await store.pruneCheckpoints(keepLatest: 2)

        // Then the old version goes; its own shard is no longer referenced, the shared one is
        XCTAssertEqual(retention.droppedDatasets.map(\.sha256), [digest(1)])
        referenced = try await store.referencedArtifacts()
        XCTAssertFalse(referenced.contains(digest(1)))
        XCTAssertFalse(referenced.contains(digest(11)))
        for n in [2, 12, 13] { XCTAssertTrue(referenced.contains(digest(n)), "\(n)") }
        let gone = try await store.datasetVersion(sha256: digest(1))
        XCTAssertNil(gone)
        let shards = try await store.datasetShards(sha256: digest(1))
        XCTAssertEqual(shards, [])
        // And a cancelled job pinned to it cannot be retried onto other data
        let before = try await store.job(id: cancelled)
        await assertStoreError(try await store.retryJob(id: cancelled)) {
            if case .datasetVersionGone(cancelled, "coco", digest(1)) = $0 { return true } else { return false }
        }
        let after = try await store.job(id: cancelled)
        XCTAssertEqual(after, before)
    }

    func testASucceededJobPinsNothingAndARestartWithoutDatasetsServesNone() async throws {
        let (store, _, _) = try makeStore(self)
        try await store.registerDatasets([served("coco", manifest: 1, shards: [11])])
        let done = try await submitOne(store, "done")
        let l = try await lease(store, worker: "w1")
        try await store.completeJob(jobID: done, token: l.token, modelSHA256: digest(99), modelSize: 1)
        let queued = try await submitOne(store, "queued")

        // When the coordinator restarts without --dataset
        try await store.registerDatasets([])

        // Then nothing is served; the queued job's version stays (referenced), until it ends
        let current = try await store.servedDatasets()
        XCTAssertEqual(current, [])
        var referenced = try await store.pruneCheckpoints(keepLatest: 2).referenced
        XCTAssertTrue(referenced.contains(digest(11)))
        try await store.cancelJob(id: queued)
        referenced = try await store.pruneCheckpoints(keepLatest: 2).referenced
        XCTAssertFalse(referenced.contains(digest(1)))
        XCTAssertFalse(referenced.contains(digest(11)))
        let versions = try await store.datasetVersions()
        XCTAssertEqual(versions, [])
        // And new jobs then name no dataset (the workers' folders)
        let plain = try await submitOne(store, "plain")
        let job = try await store.job(id: plain)
        XCTAssertNil(job?.config.dataset)
        XCTAssertNil(job?.config.datasetSHA256)
    }

    // MARK: - Submit

    func testSubmitResolvesTheDefaultOrTheNamedDatasetToItsCurrentManifest() async throws {
        let (store, _, _) = try makeStore(self)
        try await store.registerDatasets([served("coco", manifest: 1, shards: [11]), served("tiny", manifest: 2, shards: [21])])
        let result = try await store.submitJobs([job("a"), job("b", dataset: "tiny"), job("c", dataset: "coco")])
        var pins: [String?] = []
        var names: [String?] = []
        for id in result.created {
            let j = try await store.job(id: id)
            names.append(j?.config.dataset)
            pins.append(j?.config.datasetSHA256)
        }
        XCTAssertEqual(names, ["coco", "tiny", "coco"])
        XCTAssertEqual(pins, [digest(1), digest(2), digest(1)])

        // A re-submission of the same configs is recognised by name, whatever was resolved
        let again = try await store.submitJobs([job("a"), job("b", dataset: "tiny")])
        XCTAssertEqual(again.created, [])
        XCTAssertEqual(again.skipped, ["a", "b"])
    }

    func testAnUnknownDatasetOrDigestIsRefusedAndNothingIsCreated() async throws {
        let (store, _, _) = try makeStore(self)
        try await store.registerDatasets([served("coco", manifest: 1, shards: [11]), served("tiny", manifest: 2, shards: [21])])
        _ = try await submitOne(store, "keeps-v1")  // pins coco v1 (digest 1)
        try await store.registerDatasets([served("coco", manifest: 3, shards: [31]), served("tiny", manifest: 2, shards: [21])])

        let unknown = await invalidConfigReason(try await store.submitJobs([job("ok"), job("x", dataset: "imagenet")]))
        XCTAssertTrue(unknown.contains(#"configs[1] (x): dataset: "imagenet" is not served by this coordinator (it serves "coco", "tiny")"#), unknown)
        let wrongDigest = await invalidConfigReason(try await store.submitJobs([job("y", dataset: "coco", datasetSHA256: digest(77))]))
        XCTAssertTrue(wrongDigest.contains("dataset_sha256: \(digest(77)) is not a registered version of dataset \"coco\" (its current one is \(digest(3)))"),
                      wrongDigest)
        let otherDatasets = await invalidConfigReason(try await store.submitJobs([job("z", datasetSHA256: digest(2))]))
        XCTAssertTrue(otherDatasets.contains("is not a registered version of dataset \"coco\""), otherDatasets)
        let counts = try await store.counts()
        XCTAssertEqual(counts[.queued], 1, "nothing was created")

        // A registered older version of that dataset may be asked for explicitly
        let old = try await store.submitJobs([job("again-v1", dataset: "coco", datasetSHA256: digest(1))])
        let pinned = try await store.job(id: old.created[0])
        XCTAssertEqual(pinned?.config.datasetSHA256, digest(1))
        XCTAssertEqual(pinned?.config.dataset, "coco")
    }

    func testWithoutServedDatasetsAConfigNamingOneIsRefused() async throws {
        let (store, _, _) = try makeStore(self)
        let reason = await invalidConfigReason(try await store.submitJobs([job("a"), job("b", dataset: "coco")]))
        XCTAssertTrue(reason.contains("configs[1] (b): dataset: this coordinator serves no datasets"), reason)
        let digestOnly = await invalidConfigReason(try await store.submitJobs([job("c", datasetSHA256: digest(1))]))
        XCTAssertTrue(digestOnly.contains("serves no datasets"), digestOnly)
        let jobs = try await store.jobs()
        XCTAssertEqual(jobs.count, 0)
        let plain = try await store.submitJobs([job("a")])
        let stored = try await store.job(id: plain.created[0])
        XCTAssertEqual(stored?.config, job("a"), "stored as submitted")
    }

    // MARK: - Workers

    func testAWorkerTokenNeedsTheDatasetOfTheJobItHolds() async throws {
        let (store, _, _) = try makeStore(self)
        try await store.registerDatasets([served("coco", manifest: 1, shards: [11, 12])])
        let id = try await submitOne(store, "a")
        let (credential, _) = try await store.createWorkerCredential(name: "gpu1")
        let (other, _) = try await store.createWorkerCredential(name: "gpu2")
        _ = try await store.leaseNextJob(worker: "gpu1", host: "h", threads: 1, credentialID: credential.id)
        for n in [1, 11, 12] {
            let needed = try await store.artifactNeeded(sha256: digest(n), byCredential: credential.id)
            XCTAssertTrue(needed, "\(n)")
            let byOther = try await store.artifactNeeded(sha256: digest(n), byCredential: other.id)
            XCTAssertFalse(byOther, "\(n)")
        }
        let unrelated = try await store.artifactNeeded(sha256: digest(13), byCredential: credential.id)
        XCTAssertFalse(unrelated)
        // The manifest's digest is in the job's config too, but it is a dataset, not a style
        let roles = try await [store.artifactRole(sha256: digest(1)), store.artifactRole(sha256: digest(12))]
        XCTAssertEqual(roles, ["dataset", "dataset"])
        _ = id
    }

    func testAHeartbeatRecordsTheLossNetwork() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await submitOne(store, "a")
        let l = try await lease(store, worker: "w1")
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 1, imagesDone: 4),
                                      lossNetwork: "vgg16 sha256:397923af8e79")
        var job = try await store.job(id: id)
        XCTAssertEqual(job?.lossNetwork, "vgg16 sha256:397923af8e79")
        // A heartbeat without it keeps it; free text is one bounded line
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 2, imagesDone: 8))
        job = try await store.job(id: id)
        XCTAssertEqual(job?.lossNetwork, "vgg16 sha256:397923af8e79")
        _ = try await store.heartbeat(jobID: id, token: l.token, progress: JobProgress(step: 3, imagesDone: 12),
                                      lossNetwork: "random-vgg\n\u{1B}[31m" + String(repeating: "x", count: 5000))
        job = try await store.job(id: id)
        let text = try XCTUnwrap(job?.lossNetwork)
        XCTAssertFalse(text.contains("\n") || text.contains("\u{1B}"), text)
        XCTAssertLessThanOrEqual(text.utf8.count, JobStore.maxLossNetworkText + 8)
        XCTAssertTrue(text.hasPrefix("random-vgg"), text)
    }
}
