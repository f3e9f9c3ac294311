import Foundation
import NSTModel
import XCTest

/// Issue 13: the coordinator serves the training data (`serve --dataset NAME=DIR`) and workers
/// need nothing but its address: they fetch the manifest and shards into their cache, verified,
/// train on exactly the bytes the job pinned, and reuse the cache for later jobs.
final class ServedDatasetTests: XCTestCase {
    var clusters: [Cluster] = []
    var network: NamespaceNetwork?

    override func tearDown() {
        for c in clusters { c.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0) }
        network?.remove()
        super.tearDown()
    }

    /// Shards of about 4 KB, so the cluster's small images make several.
    static let shardBytes = "4000"
    static let datasetKind = "nst_served_bytes_total{kind=\"dataset\"}"

    /// A cluster whose dataset folder also holds a file that does not decode and one that is
    /// not an image (both must be handled as `train` handles them, never fatally).
    func makeCluster(serving: Bool, leaseTimeout: Double = 3) throws -> Cluster {
        let cluster = try Cluster(leaseTimeout: leaseTimeout)
        clusters.append(cluster)
        try Data("not a jpeg at all".utf8).write(to: cluster.datasetDir.appendingPathComponent("img_00003b.jpg"))
        try Data("notes".utf8).write(to: cluster.datasetDir.appendingPathComponent("notes.txt"))
        if serving {
            cluster.serveArguments = ["--dataset", "coco=\(cluster.datasetDir.path)", "--dataset-shard-bytes", Self.shardBytes]
        }
        return cluster
    }

    func shardFiles(in cache: URL) -> [URL] {
        let store = cache.appendingPathComponent("store")
        let dirs = (try? FileManager.default.contentsOfDirectory(atPath: store.path)) ?? []
        return dirs.flatMap { d in
            ((try? FileManager.default.contentsOfDirectory(atPath: store.path + "/" + d)) ?? [])
                .filter { !$0.hasPrefix(".") }
                .map { store.appendingPathComponent(d).appendingPathComponent($0) }
        }
    }

    /// The job's fetched loss curve, one row per step (images per step vary: the folder holds
    /// a file that does not decode, skipped from its batch).
    func losses(_ cluster: Cluster, _ name: String, steps: Int) throws -> [LossRow] {
        let rows = try cluster.status()
        let row = try XCTUnwrap(rows.first { $0.name == name }, "\(rows)")
        XCTAssertEqual(row.state, "succeeded", "\(row)")
        let curve = try readLosses(try cluster.fetchAll().appendingPathComponent("\(name).losses.csv"))
        XCTAssertEqual(curve.map(\.step), Array(1...steps), name)
        XCTAssertTrue(curve.allSatisfy { $0.total.isFinite && $0.total > 0 }, name)
        return curve
    }

    // MARK: - Identical data, identical losses

    func testServedShardsTrainExactlyLikeTheLocalFolderAndASecondJobDownloadsNothing() throws {
        let steps = 12
        // Given the job trained by a worker on its own folder, the coordinator serving no dataset
        let local = try makeCluster(serving: false)
        try local.startCoordinator()
        try local.waitForCoordinator()
        try local.submit(try local.writeConfig(styles: [("same", 31, [:])], steps: steps))
        _ = try local.startWorker("folder", extra: ["--once"])
        XCTAssertEqual(try local.waitForAllFinished(timeout: 120).map(\.state), ["succeeded"])
        let fromFolder = try losses(local, "same", steps: steps)

        // When the same job is trained from a coordinator serving that folder, by a worker with
        // no --dataset and an empty cache
        let served = try makeCluster(serving: true)
        try served.startCoordinator()
        try served.waitForCoordinator()
        try served.submit(try served.writeConfig(styles: [("same", 31, [:])], steps: steps))
        let cache = served.root.appendingPathComponent("cache")
        let worker = try served.startWorker("fetcher", extra: ["--cache-dir", cache.path], localDataset: false)
        XCTAssertEqual(try served.waitForAllFinished(timeout: 120).map(\.state), ["succeeded"], worker.stderr)

        // Then the losses are the same at every step, bit for bit
        let fromShards = try losses(served, "same", steps: steps)
        XCTAssertEqual(fromShards.map(\.total), fromFolder.map(\.total))
        XCTAssertEqual(fromShards.map(\.content), fromFolder.map(\.content))
        XCTAssertEqual(fromShards.map(\.images), fromFolder.map(\.images))
        // and the job names its dataset and manifest
        let status = try served.cli(["status", "--json"])
        XCTAssertTrue(status.stdout.contains("\"dataset\" : \"coco\"") || status.stdout.contains("\"dataset\":\"coco\""), status.stdout)
        let shards = shardFiles(in: cache)
        XCTAssertGreaterThan(shards.count, 2, "the manifest and several shards are cached")
        let first = try served.metric(Self.datasetKind)
        XCTAssertGreaterThan(first, 0)

        // And a second job on the same dataset downloads no dataset byte
        try served.submit(try served.writeConfig(styles: [("again", 31, [:])], steps: steps, file: "again.json"))
        _ = try served.waitForAllFinished(timeout: 120)
        XCTAssertEqual(try losses(served, "again", steps: steps).map(\.total), fromFolder.map(\.total))
        XCTAssertEqual(try served.metric(Self.datasetKind), first, "no dataset bytes for the second job")
        XCTAssertTrue(worker.stderr.contains("0 downloaded"), worker.stderr)

        // And a byte flipped in a cached shard is found, that shard alone fetched again, the
        // losses unchanged
        let shardSizes = shards.map { (try? FileManager.default.attributesOfItem(atPath: $0.path)[.size] as? Int) ?? 0 }
        let victim = shards[shardSizes.firstIndex(of: shardSizes.max()!)!]  // a shard, not the (smaller) manifest
        var bytes = try Data(contentsOf: victim)
        bytes[bytes.count / 2] ^= 0x10
        try bytes.write(to: victim)
        try served.submit(try served.writeConfig(styles: [("flipped", 31, [:])], steps: steps, file: "flipped.json"))
        _ = try served.waitForAllFinished(timeout: 120)
        XCTAssertEqual(try losses(served, "flipped", steps: steps).map(\.total), fromFolder.map(\.total))
        XCTAssertTrue(worker.stderr.contains("fetching its shard again"), worker.stderr)
        XCTAssertEqual(try served.metric(Self.datasetKind), first + Double(bytes.count), "exactly that shard again")
    }

    // MARK: - Resume on another machine

    func testAResumedAttemptOnASecondWorkerContinuesWithTheUninterruptedLosses() throws {
        let steps = 30
        let cluster = try makeCluster(serving: true)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(
            styles: [("straight", 21, ["priority": 1]), ("resumed", 21, ["priority": 0])], steps: steps))
        let solo = try cluster.startWorker("solo", extra: ["--once", "--cache-dir", cluster.root.appendingPathComponent("c1").path],
                                           localDataset: false)
        XCTAssertEqual(solo.waitForExit(timeout: 120), 0, solo.stderr)

        // A worker takes the second job and is killed after a checkpoint
        let victim = try cluster.startWorker("victim", extra: ["--cache-dir", cluster.root.appendingPathComponent("c2").path],
                                             localDataset: false)
        let id = try leasedJobID(cluster.waitForLog(victim, containing: "leased job "))
        _ = try cluster.waitForLog(victim, containing: "job \(id): checkpoint step ")
        victim.kill(SIGKILL)
        XCTAssertNotNil(victim.waitForExit(timeout: 10))
        let checkpointStep = try XCTUnwrap(lastUploadedCheckpoint(in: victim.stderr, job: id), victim.stderr)

        // Another, with its own empty cache and half of a shard already downloaded (cut), resumes
        let rescuerCache = cluster.root.appendingPathComponent("c3")
        let rescuer = try cluster.startWorker("rescuer", extra: ["--cache-dir", rescuerCache.path], localDataset: false)
        let rows = try cluster.waitForAllFinished(timeout: 120)
        XCTAssertTrue(rescuer.stderr.contains("resuming job \(id) from step \(checkpointStep)"), rescuer.stderr)
        XCTAssertEqual(rows.first { $0.name == "resumed" }?.attempt, 2)
        let straight = try losses(cluster, "straight", steps: steps)
        let resumed = try losses(cluster, "resumed", steps: steps)
        XCTAssertEqual(resumed.map(\.total), straight.map(\.total))
        XCTAssertNotEqual(straight.first?.total, straight.last?.total, "the curve moves: training happened")
    }

    // MARK: - A cut download resumes by range

    func testACutShardDownloadResumesWhereItStopped() throws {
        let cluster = try makeCluster(serving: true)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(styles: [("cut", 41, [:])], steps: 4))
        let manifestInfo = try datasetInfo(cluster)
        // The coordinator's copy of the first shard; half of it left as a cut download in the cache
        let firstShard = manifestInfo.firstShard
        let served = cluster.stateDir.appendingPathComponent("artifacts/\(firstShard.prefix(2))/\(firstShard)")
        let whole = try Data(contentsOf: served)
        let cache = cluster.root.appendingPathComponent("cache")
        let dir = cache.appendingPathComponent("store/\(firstShard.prefix(2))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let half = whole.count / 2
        try whole.prefix(half).write(to: dir.appendingPathComponent(".\(firstShard).partial"))

        let worker = try cluster.startWorker("w", extra: ["--once", "--cache-dir", cache.path], localDataset: false)
        XCTAssertEqual(worker.waitForExit(timeout: 120), 0, worker.stderr)
        XCTAssertEqual(try cluster.status().map(\.state), ["succeeded"])
        // Everything but the half already there crossed the network
        XCTAssertEqual(try cluster.metric(Self.datasetKind), Double(manifestInfo.totalBytes - half))
        XCTAssertEqual(try Data(contentsOf: dir.appendingPathComponent(firstShard)), whole)
    }

    /// The coordinator's dataset `coco`: its manifest's first shard, and the bytes of manifest
    /// and shards together (what a worker with an empty cache downloads).
    func datasetInfo(_ cluster: Cluster) throws -> (firstShard: String, totalBytes: Int) {
        let r = try cluster.cli(["datasets", "--json"])
        XCTAssertEqual(r.status, 0, r.stderr)
        let list = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [[String: Any]], r.stdout)
        let coco = try XCTUnwrap(list.first { $0["name"] as? String == "coco" }, r.stdout)
        let sha = try XCTUnwrap(coco["sha256"] as? String)
        let manifestFile = cluster.stateDir.appendingPathComponent("artifacts/\(sha.prefix(2))/\(sha)")
        let manifest = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestFile)) as? [String: Any]
        let shards = try XCTUnwrap(manifest?["shards"] as? [[String: Any]])
        let shardBytes = shards.compactMap { $0["size"] as? Int }.reduce(0, +)
        return (try XCTUnwrap(shards.first?["sha256"] as? String), shardBytes + (coco["size"] as? Int ?? 0))
    }

    // MARK: - A machine with nothing but the address

    func testAWorkerInItsOwnNetworkNamespaceWithAnEmptyHomeTrainsFromTheCoordinatorAlone() throws {
        let network = try NamespaceNetwork.makeOrSkip(workerCount: 1)
        self.network = network
        let cluster = try Cluster(leaseTimeout: 5, host: network.coordinatorAddress, port: 7000,
                                  coordinatorNamespace: network.coordinator, cliNamespace: network.workers[0])
        clusters.append(cluster)
        let weights = cluster.root.appendingPathComponent("vgg16-test.safetensors")
        let vgg = VGG16(randomSeed: 11)
        try SafeTensors.write(vgg.parameters.map { (name: $0.name, tensor: $0.value) }, to: weights)
        cluster.serveArguments = ["--dataset", "coco=\(cluster.datasetDir.path)", "--dataset-shard-bytes", Self.shardBytes,
                                  "--vgg-weights", weights.path]
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(styles: [("first", 51, [:]), ("second", 52, [:])], steps: 6))

        // The worker: its own namespace, an empty home, no dataset, no weights, no cache
        let home = cluster.root.appendingPathComponent("empty-home")
        try FileManager.default.createDirectory(at: home, withIntermediateDirectories: true)
        let worker = try cluster.startWorker("bare", namespace: network.workers[0], randomVGG: false, localDataset: false, home: home)
        let rows = try cluster.waitForAllFinished(timeout: 180)
        XCTAssertEqual(rows.map(\.state), ["succeeded", "succeeded"], worker.stderr)
        XCTAssertTrue(worker.stderr.contains("first step done"), worker.stderr)
        // Everything it fetched is in ~/.cache/nst-orchestrator: the weights, the manifest, the shards
        let cached = shardFiles(in: home.appendingPathComponent(".cache/nst-orchestrator"))
        XCTAssertGreaterThan(cached.count, 3, "\(cached)")
        // The second job found the data in the cache
        XCTAssertEqual(worker.stderr.components(separatedBy: "downloading the coordinator's VGG16 weights").count - 1, 1, worker.stderr)
        XCTAssertTrue(worker.stderr.contains("0 downloaded"), worker.stderr)
        // and the jobs record what they were trained with
        let json = try cluster.cli(["status", "--json"]).stdout
        XCTAssertTrue(json.contains("vgg16 sha256:"), json)
    }

    // MARK: - The loss network is on record

    func testRandomVGGIsRecordedInTheJob() throws {
        let cluster = try makeCluster(serving: true)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(styles: [("rnd", 61, [:])], steps: 2))
        let worker = try cluster.startWorker("w", extra: ["--once"], localDataset: false)
        XCTAssertEqual(worker.waitForExit(timeout: 120), 0, worker.stderr)
        let json = try cluster.cli(["status", "--json"]).stdout
        XCTAssertTrue(json.contains("random-vgg seed"), json)
    }

    // MARK: - Nothing to train on

    func testAWorkerWithoutDataFromACoordinatorServingNoneHandsTheJobBackAndStops() throws {
        let cluster = try makeCluster(serving: false)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(styles: [("untouched", 71, [:])], steps: 2))
        let worker = try cluster.startWorker("bare", localDataset: false)
        let status = worker.waitForExit(timeout: 60)
        XCTAssertNotNil(status, "the worker stops")
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(worker.stderr.contains("this worker has no --dataset and the coordinator serves no dataset"), worker.stderr)
        let rows = try cluster.status()
        XCTAssertEqual(rows.map(\.state), ["queued"])
        XCTAssertEqual(rows.map(\.attempt), [1], "the attempt is not used up")
    }

    func testABadCacheBoundIsRefusedWithTheReason() throws {
        let cluster = try makeCluster(serving: false)
        for bad in ["lots", "-5G", "1e30", "12Q"] {
            let worker = try cluster.startWorker("w-\(clusters.count)", extra: ["--cache-max-bytes=\(bad)"], localDataset: false)
            XCTAssertNotNil(worker.waitForExit(timeout: 30))
            XCTAssertNotEqual(worker.process.terminationStatus, 0)
            XCTAssertTrue(worker.stderr.contains("--cache-max-bytes: expected a byte count"), "\(bad): \(worker.stderr)")
        }
    }

    // MARK: - Held-out images come from the end of the data

    func testAJobWithHeldOutImagesAndMaxImagesFetchesOnlyTheShardsItReads() throws {
        // 8 images + 1 undecodable in shards of ~4 KB; the job trains on the first 3 images and
        // validates on the last 2: the shards in between are never needed
        let cluster = try makeCluster(serving: true)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(try cluster.writeConfig(styles: [("heldout", 81, ["validation_images": 2, "max_images": 3])], steps: 4))
        let worker = try cluster.startWorker("w", extra: ["--once"], localDataset: false)
        XCTAssertEqual(worker.waitForExit(timeout: 120), 0, worker.stderr)
        XCTAssertEqual(try cluster.status().map(\.state), ["succeeded"], worker.stderr)
        let line = try cluster.waitForLog(worker, containing: "shard(s) of ")
        let counts = line.components(separatedBy: "images, ").last?.split(separator: " ") ?? []
        let needed = Int(counts.first ?? ""), all = counts.count > 3 ? Int(counts[3]) : nil
        XCTAssertNotNil(needed, line)
        XCTAssertLessThan(needed ?? 99, all ?? 0, "only the first and last shards: \(line)")
    }
}
