import Foundation
import XCTest

/// The loopback run again, with the coordinator and each worker on its own "machine" (network
/// namespace), the workers reaching the coordinator at its namespace's address.
final class NamespaceRunTests: XCTestCase {
    var cluster: Cluster?
    var network: NamespaceNetwork?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)  // processes first: they pin the namespaces
        network?.remove()
        cluster = nil
        network = nil
        super.tearDown()
    }

    func testCoordinatorAndWorkersInSeparateNetworkNamespaces() throws {
        if let why = NamespaceNetwork.unavailableReason() {
            throw XCTSkip("separate-machines test skipped: \(why)")
        }
        let network: NamespaceNetwork
        do { network = try NamespaceNetwork(workerCount: 2) } catch {
            throw XCTSkip("separate-machines test skipped: cannot create network namespaces: \(error)")
        }
        self.network = network
        let cluster = try Cluster(leaseTimeout: 3, host: network.coordinatorAddress, port: 7000,
                                  coordinatorNamespace: network.coordinator, cliNamespace: network.workers[0])
        self.cluster = cluster
        XCTAssertEqual(try network.addresses(of: network.workers[0]).sorted(),
                       ["10.231.0.2", "127.0.0.1"])
        XCTAssertEqual(try network.addresses(of: network.coordinator).sorted(),
                       ["10.231.0.1", "127.0.0.1"])

        let steps = 10
        let config = try cluster.writeConfig(
            styles: (1...4).map { (name: "ns\($0)", imageSeed: UInt64(40 + $0), extra: [:]) }, steps: steps)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()  // through the CLI in worker 1's namespace, over the veth
        XCTAssertFalse(cluster.healthz(), "the coordinator must not be reachable from the test's own namespace")
        try cluster.submit(config)
        let w1 = try cluster.startWorker("w1", namespace: network.workers[0])
        let w2 = try cluster.startWorker("w2", namespace: network.workers[1])

        let rows = try cluster.waitForAllFinished(timeout: 120)
        print("orchestrator status, coordinator and workers in separate network namespaces:\n\(try cluster.statusText())")
        XCTAssertEqual(rows.count, 4)
        XCTAssertTrue(rows.allSatisfy { $0.state == "succeeded" }, "\(rows)")
        XCTAssertEqual(Set(rows.compactMap(\.worker)), ["w1", "w2"], "both workers trained")
        for w in [w1, w2] {
            XCTAssertTrue(w.stderr.contains("coordinator \(network.coordinatorAddress):7000"), w.stderr)
        }
        let out = try cluster.fetchAll()
        for job in rows { _ = try checkFetched(job, in: out, steps: steps, logDir: cluster.logDir) }
    }
}
