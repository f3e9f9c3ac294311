@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Datasets the coordinator serves (`serve --dataset NAME=DIR`, issue 13): submit pins jobs to
/// a manifest, leases name it, worker tokens may download it, the garbage collector keeps what
/// jobs pin, and `GET /v1/datasets` lists them.
final class ServedDatasetTests: XCTestCase {
    /// "coco" (the default: two shards) and "tiny" (one).
    func twoDatasets() async throws -> Harness {
        try await Harness.serving { dir in
            [try writeServedDataset(name: "coco", shards: [fakeImages(3, seed: 1), fakeImages(2, seed: 2)], into: dir),
             try writeServedDataset(name: "tiny", shards: [fakeImages(2, seed: 3)], into: dir)]
        }
    }

    func jobConfig(_ name: String, style: String, dataset: String? = nil, sha: String? = nil) -> JobConfig {
        JobConfig(name: name, styleSHA256: style, imageSize: 32, styleSize: 32, batchSize: 1, steps: 4,
                  dataset: dataset, datasetSHA256: sha)
    }

    func submit(_ client: some TestClientProtocol, _ configs: [JobConfig]) async throws -> TestResponse {
        try await client.send(.post, "/v1/jobs", body: SubmitRequest(jobs: configs, force: false))
    }

    func jobs(_ client: some TestClientProtocol) async throws -> [JobStatus] {
        let r = try await client.send(.get, "/v1/jobs")
        XCTAssertEqual(r.status, .ok)
        return try decode(JobsResponse.self, r).jobs
    }

    // MARK: - Submit

    func testSubmitPinsTheDefaultOrTheNamedDatasetsCurrentManifest() async throws {
        let h = try await twoDatasets()
        defer { h.cleanUp() }
        let (coco, tiny) = (h.config.datasets[0].ref, h.config.datasets[1].ref)
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            // When a config names no dataset, one names "tiny", one gives coco's current digest
            let r = try await submit(client, [jobConfig("a", style: style), jobConfig("b", style: style, dataset: "tiny"),
                                              jobConfig("c", style: style, sha: coco.sha256)])
            XCTAssertEqual(r.status, .ok, String(buffer: r.body))

            // Then each stored config names its dataset and pins its manifest, and status shows them
            let statuses = try await jobs(client)
            XCTAssertEqual(statuses.map(\.dataset), ["coco", "tiny", "coco"])
            XCTAssertEqual(statuses.map(\.datasetSHA256), [coco.sha256, tiny.sha256, coco.sha256])
            let detail = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/2"))
            XCTAssertEqual(detail.config.dataset, "tiny")
            XCTAssertEqual(detail.config.datasetSHA256, tiny.sha256)
            let one = try await client.send(.get, "/v1/jobs/1")
            let raw = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(buffer: one.body)) as? [String: Any])
            let job = try XCTUnwrap(raw["job"] as? [String: Any])
            XCTAssertEqual(job["dataset"] as? String, "coco")
            XCTAssertEqual(job["dataset_sha256"] as? String, coco.sha256)
            XCTAssertTrue(job.keys.contains("loss_network"))

            // And submitting the same configs again is recognised: skipped by name
            let again = try await submit(client, [jobConfig("a", style: style), jobConfig("b", style: style, dataset: "tiny")])
            XCTAssertEqual(try decode(SubmitResponse.self, again).skipped, ["a", "b"])
        }
    }

    func testAnUnknownDatasetOrDigestIsRefusedAndNothingIsCreated() async throws {
        let h = try await twoDatasets()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            let unknown = try await submit(client, [jobConfig("ok", style: style), jobConfig("x", style: style, dataset: "imagenet")])
            XCTAssertEqual(unknown.status, .badRequest)
            XCTAssertTrue(errorText(unknown).contains(#"dataset: "imagenet" is not served by this coordinator (it serves "coco", "tiny")"#),
                          errorText(unknown))
            let bogus = String(repeating: "ab", count: 32)
            let digest = try await submit(client, [jobConfig("y", style: style, dataset: "tiny", sha: bogus)])
            XCTAssertEqual(digest.status, .badRequest)
            XCTAssertTrue(errorText(digest).contains("dataset_sha256: \(bogus) is not a registered version of dataset \"tiny\""),
                          errorText(digest))
            let malformed = try await submit(client, [jobConfig("z", style: style, sha: "not-hex")])
            XCTAssertEqual(malformed.status, .badRequest)
            let listed = try await jobs(client)
            XCTAssertEqual(listed.count, 0)
        }
    }

    func testACoordinatorServingNoDatasetsRefusesConfigsThatNameOne() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            let named = try await submit(client, [jobConfig("a", style: style, dataset: "coco")])
            XCTAssertEqual(named.status, .badRequest)
            XCTAssertTrue(errorText(named).contains("this coordinator serves no datasets"), errorText(named))
            let plain = try await submit(client, [jobConfig("a", style: style)])
            XCTAssertEqual(plain.status, .ok, String(buffer: plain.body))
            let listed = try await jobs(client)
            XCTAssertEqual(listed.map(\.dataset), [nil])
            XCTAssertEqual(listed.map(\.datasetSHA256), [nil])
            let lease = try await client.lease()
            XCTAssertNil(lease.dataset, "workers use their own --dataset folder")
            let datasets = try await client.send(.get, "/v1/datasets")
            XCTAssertEqual(String(buffer: datasets.body), "[]")
        }
    }

    // MARK: - Leases

    func testALeaseNamesThePinnedManifestAlsoAnOlderVersionAfterARestart() async throws {
        let h = try await twoDatasets()
        defer { h.cleanUp() }
        let v1 = h.config.datasets[0]
        let style = try storeArtifact(makePNG(width: 8, height: 8), in: h.config.artifactsDir)
        try await h.app().test(.router) { client in
            _ = try await client.submit(["first", "second"], style: style)
            let lease = try await client.lease()
            XCTAssertEqual(lease.dataset, v1.ref)
            XCTAssertEqual(lease.config.datasetSHA256, v1.ref.sha256)
        }

        // When the coordinator restarts with coco changed (its second shard is the same)
        var config = h.config
        let changed = try writeServedDataset(name: "coco", shards: [fakeImages(3, seed: 9), fakeImages(2, seed: 2)],
                                             into: config.artifactsDir)
        XCTAssertEqual(changed.shards[1], v1.shards[1])
        config.datasets[0] = changed
        let registered = try await registerServedDatasets(config, store: h.store)
        XCTAssertEqual(registered.map(\.replaced), [v1.ref.sha256, nil])
        try await buildCoordinator(config, store: h.store).test(.router) { client in
            // Then the queued job still gets the version it pinned; a new job gets the new one
            let second = try await client.lease()
            XCTAssertEqual(second.jobID, 2)
            XCTAssertEqual(second.dataset, v1.ref)
            _ = try await client.submit(["third"], style: style)
            let third = try await client.lease()
            XCTAssertEqual(third.dataset, changed.ref)
            let listed = try decode([DatasetRef].self, try await client.send(.get, "/v1/datasets"))
            XCTAssertEqual(listed, [changed.ref, h.config.datasets[1].ref])
        }
    }

    // MARK: - Worker tokens and the metric

    func testAWorkerTokenDownloadsDatasetShardsButNoOtherArtifactsAndTheBytesCountAsDataset() async throws {
        let h = try await twoDatasets()
        defer { h.cleanUp() }
        let coco = h.config.datasets[0], tiny = h.config.datasets[1]
        try await h.app().test(.router) { client in
            let worker = try await h.store.createWorkerCredential(name: "gpu1").token
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            let otherStyle = try await client.putArtifact(makePNG(width: 8, height: 8, seed: 5))
            _ = try await client.submit(["held"], style: style)
            _ = try await client.submit(["other"], style: otherStyle)
            let lease = try await client.leaseAs(worker)
            XCTAssertEqual(lease.dataset, coco.ref)

            func get(_ sha: String, range: String? = nil) async throws -> TestResponse {
                var h = headers(token: worker)
                if let range { h[.range] = range }
                return try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: h)
            }
            // The manifest and shards of the served datasets (any of them), and its job's style
            var expected: Int64 = 0
            for sha in coco.artifacts + tiny.artifacts {
                let r = try await get(sha)
                XCTAssertEqual(r.status, .ok, "\(sha): \(String(buffer: r.body))")
                XCTAssertEqual(sha256Hex(Data(buffer: r.body)), sha)
                expected += Int64(r.body.readableBytes)
            }
            let part = try await get(coco.shards[0].sha256, range: "bytes=10-19")
            XCTAssertEqual(part.status, .partialContent)
            expected += 10
            let styleGot = try await get(style)
            XCTAssertEqual(styleGot.status, .ok)

            // Not another job's style, nor a file no one serves
            let forbidden = try await get(otherStyle)
            XCTAssertEqual(forbidden.status, .forbidden)
            let stray = try storeArtifact(Data("stray".utf8), in: h.config.artifactsDir)
            let strayGot = try await get(stray)
            XCTAssertEqual(strayGot.status, .forbidden)
            // Nor the list of datasets (the admin's)
            let list = try await client.execute(uri: "/v1/datasets", method: .get, headers: headers(token: worker))
            XCTAssertEqual(list.status, .forbidden)

            let m = try await scrape(client)
            XCTAssertEqual(m[#"nst_served_bytes_total{kind="dataset"}"#], Double(expected))
            XCTAssertEqual(m[#"nst_served_bytes_total{kind="style"}"#], Double(makePNG(width: 8, height: 8).count))
        }
    }

    func testAnOlderVersionIsDownloadableOnlyByTheWorkerHoldingAJobThatPinsIt() async throws {
        let h = try await twoDatasets()
        defer { h.cleanUp() }
        let v1 = h.config.datasets[0]
        let style = try storeArtifact(makePNG(width: 8, height: 8), in: h.config.artifactsDir)
        _ = try await h.store.submitJobs([jobConfig("pinned", style: style)])
        var config = h.config
        config.datasets = [try writeServedDataset(name: "coco", shards: [fakeImages(4, seed: 7)], into: config.artifactsDir)]
        try await registerServedDatasets(config, store: h.store)
        try await buildCoordinator(config, store: h.store).test(.router) { client in
            let holder = try await h.store.createWorkerCredential(name: "holder").token
            let other = try await h.store.createWorkerCredential(name: "other").token
            let lease = try await client.leaseAs(holder)
            XCTAssertEqual(lease.dataset, v1.ref)
            for sha in v1.artifacts {
                let byHolder = try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: headers(token: holder))
                XCTAssertEqual(byHolder.status, .ok)
                let byOther = try await client.execute(uri: "/v1/artifacts/\(sha)", method: .get, headers: headers(token: other))
                XCTAssertEqual(byOther.status, .forbidden)
            }
            let m = try await scrape(client)
            XCTAssertEqual(m[#"nst_served_bytes_total{kind="dataset"}"#], Double(v1.ref.size + v1.shards.map(\.size).reduce(0, +)))
        }
    }

    // MARK: - Heartbeats

    func testAHeartbeatsLossNetworkShowsInTheJobsStatus() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["a"], style: style)
            let lease = try await client.lease()
            let r = try await client.send(.post, "/v1/jobs/1/heartbeat",
                                          body: HeartbeatRequest(token: lease.token, step: 1, imagesDone: 1,
                                                                 lossNetwork: "random-vgg seed 0"))
            XCTAssertEqual(r.status, .ok, String(buffer: r.body))
            let listed = try await jobs(client)
            XCTAssertEqual(listed.map(\.lossNetwork), ["random-vgg seed 0"])
            let detail = try decode(JobDetail.self, try await client.send(.get, "/v1/jobs/1"))
            XCTAssertEqual(detail.job.lossNetwork, "random-vgg seed 0")
        }
    }

    // MARK: - Garbage collection

    func testTheCollectorKeepsAPinnedOldVersionAndDropsItOnceNoJobCanTrainOnIt() async throws {
        var v1: ServedDataset?
        let f = try StorageFixture { config in
            v1 = try? writeServedDataset(name: "coco", shards: [fakeImages(3, seed: 1), fakeImages(2, seed: 2)], into: config.artifactsDir)
            config.datasets = v1.map { [$0] } ?? []
        }
        defer { f.cleanUp() }
        let old = try XCTUnwrap(v1)
        try await registerServedDatasets(f.config, store: f.store)
        let style = try storeArtifact(makePNG(width: 8, height: 8), in: f.config.artifactsDir)
        let pinned = try await f.store.submitJobs([jobConfig("pinned", style: style)]).created[0]

        // When the folder changes (shard 1 the same) and the coordinator restarts
        var config = f.config
        let v2 = try writeServedDataset(name: "coco", shards: [fakeImages(3, seed: 8), fakeImages(2, seed: 2)], into: config.artifactsDir)
        config.datasets = [v2]
        try await registerServedDatasets(config, store: f.store)
        _ = try await f.store.submitJobs([jobConfig("fresh", style: style)])
        // Every file is older than the grace age
        for sha in old.artifacts + v2.artifacts + [style] { try f.ageArtifact(sha, hours: 3) }

        // Then a collection keeps both versions: the queued job pins the old one
        var report = try await f.collect()
        XCTAssertEqual(report.errors, [])
        for sha in old.artifacts + v2.artifacts { XCTAssertTrue(f.artifactExists(sha), sha) }
        try await f.assertEveryReferencedFileExists()

        // When the pinning job is cancelled, the next collection drops the old version's own files
        try await f.store.cancelJob(id: pinned)
        report = try await f.collect()
        XCTAssertEqual(report.errors, [])
        XCTAssertFalse(f.artifactExists(old.ref.sha256), "the old manifest")
        XCTAssertFalse(f.artifactExists(old.shards[0].sha256), "the old version's own shard")
        for sha in v2.artifacts { XCTAssertTrue(f.artifactExists(sha), "the current version: \(sha)") }
        XCTAssertEqual(report.unreferenced.files, 2)
        let versions = try await f.store.datasetVersions()
        XCTAssertEqual(versions.map(\.sha256), [v2.ref.sha256])
        try await f.assertEveryReferencedFileExists()
        // And the cancelled job cannot be retried onto data that is gone
        let retry = try await buildCoordinator(config, store: f.store).test(.router) { client in
            try await client.send(.post, "/v1/jobs/\(pinned)/retry")
        }
        XCTAssertEqual(retry.status, .conflict)
        XCTAssertTrue(errorText(retry).contains("which is no longer kept"), errorText(retry))
    }
}
