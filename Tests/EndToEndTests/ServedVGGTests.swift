import Foundation
import NSTModel
import XCTest

/// Issue 13, part 3: a worker without VGG16 weights uses the coordinator's (`serve
/// --vgg-weights`), downloaded once into its cache, verified, and reused by later jobs and a
/// restarted worker. (That the store pins them against the garbage collector: `PinTests`.)
final class ServedVGGTests: XCTestCase {
    var cluster: Cluster!

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        super.tearDown()
    }

    func testAWorkerWithoutWeightsDownloadsTheCoordinatorsOnceAndCachesThem() throws {
        cluster = try Cluster(leaseTimeout: 5)
        // Real-shaped VGG16 weights (seeded, not ImageNet), as a safetensors file on the coordinator
        let weights = cluster.root.appendingPathComponent("vgg16-test.safetensors")
        let vgg = VGG16(randomSeed: 11)
        try SafeTensors.write(vgg.parameters.map { (name: $0.name, tensor: $0.value) }, to: weights)
        let digest = try sha256(of: weights, logDir: cluster.logDir)
        cluster.serveArguments = ["--vgg-weights", weights.path]
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        XCTAssertTrue(try cluster.waitForLog(cluster.coordinator!, containing: "serving the VGG16 weights").contains(String(digest.prefix(12))))

        // A worker with its own worker token, no weights and an empty cache
        let minted = try cluster.cli(["token", "create", "--worker", "--name", "bare"])
        XCTAssertEqual(minted.status, 0, minted.stderr)
        let tokenFile = cluster.root.appendingPathComponent("bare.token")
        try minted.stdout.write(to: tokenFile, atomically: true, encoding: .utf8)
        let cache = cluster.root.appendingPathComponent("cache")
        let args = ["--token-file", tokenFile.path, "--cache-dir", cache.path]
        let config = try cluster.writeConfig(styles: [("first", 71, [:]), ("second", 72, [:])], steps: 2)
        try cluster.submit(config)
        let w1 = try cluster.startWorker("bare", extra: args, randomVGG: false)
        XCTAssertEqual(try cluster.waitForAllFinished(timeout: 180).map(\.state), ["succeeded", "succeeded"], w1.stderr)

        // Then it downloaded them once, verified, into its cache
        XCTAssertTrue(w1.stderr.contains("no VGG16 weights on this machine"), w1.stderr)
        XCTAssertEqual(w1.stderr.components(separatedBy: "downloading the coordinator's VGG16 weights").count - 1, 1, w1.stderr)
        let cached = cache.appendingPathComponent("store/\(digest.prefix(2))/\(digest)")
        XCTAssertEqual(try sha256(of: cached, logDir: cluster.logDir), digest)

        // And a restarted worker finds them in the cache: no download
        w1.kill(SIGTERM)
        _ = w1.waitForExit(timeout: 30)
        let third = try cluster.writeConfig(styles: [("third", 73, [:])], steps: 2)
        try cluster.submit(third)
        let w2 = try cluster.startWorker("bare-again", extra: args, randomVGG: false)
        XCTAssertEqual(try cluster.waitForAllFinished(timeout: 180).map(\.state), ["succeeded", "succeeded", "succeeded"], w2.stderr)
        XCTAssertTrue(w2.stderr.contains("(cached)"), w2.stderr)
        XCTAssertFalse(w2.stderr.contains("downloading the coordinator's VGG16 weights"), w2.stderr)
    }

    func testAWorkerWithoutWeightsFromACoordinatorWithoutThemHandsTheJobBackAndStops() throws {
        cluster = try Cluster(leaseTimeout: 5)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let config = try cluster.writeConfig(styles: [("untouched", 74, [:])], steps: 2)
        try cluster.submit(config)
        let worker = try cluster.startWorker("bare", extra: ["--cache-dir", cluster.root.appendingPathComponent("cache").path],
                                             randomVGG: false)
        let status = worker.waitForExit(timeout: 60)
        XCTAssertNotNil(status, "the worker stops")
        XCTAssertNotEqual(status, 0)
        XCTAssertTrue(worker.stderr.contains("this worker has no VGG16 weights and the coordinator serves none"), worker.stderr)
        // The job is back in the queue, its attempt not used up
        let rows = try cluster.status()
        XCTAssertEqual(rows.map(\.state), ["queued"])
        XCTAssertEqual(rows.map(\.attempt), [1])
    }
}
