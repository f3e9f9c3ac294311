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
        let network = try NamespaceNetwork.makeOrSkip(workerCount: 2)
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

    /// Issue 12: the same "machines" over TLS with a private CA from `orchestrator tls init`;
    /// the certificate names the coordinator's address, and a client that does not trust the CA,
    /// or speaks plain HTTP to the TLS port, is refused with the reason, across the veth.
    func testOverTLSAcrossNetworkNamespaces() throws {
        let network = try NamespaceNetwork.makeOrSkip(workerCount: 1)
        self.network = network
        let cluster = try Cluster(leaseTimeout: 5, host: network.coordinatorAddress, port: 7000,
                                  coordinatorNamespace: network.coordinator, cliNamespace: network.workers[0])
        self.cluster = cluster
        let certs = cluster.root.appendingPathComponent("tls")
        let made = try runCommand(cluster.orchestrator, ["tls", "init", "--out", certs.path, "--host", network.coordinatorAddress],
                                  environment: cluster.environment, logDir: cluster.logDir)
        XCTAssertEqual(made.status, 0, made.stderr)
        let ca = certs.appendingPathComponent("ca.pem").path
        let https = "https://\(network.coordinatorAddress):7000"
        cluster.serveArguments = ["--tls-cert", certs.appendingPathComponent("server.pem").path,
                                  "--tls-key", certs.appendingPathComponent("server-key.pem").path]
        cluster.cliCoordinator = ["--coordinator", https, "--ca-file", ca]
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()  // status over TLS from the worker's namespace

        let config = try cluster.writeConfig(styles: [("tls1", 61, [:]), ("tls2", 62, [:])], steps: 4)
        try cluster.submit(config)
        // The worker machine gets its own worker token, over TLS from its namespace.
        let minted = try cluster.cli(["token", "create", "--worker", "--name", "ns-worker"])
        XCTAssertEqual(minted.status, 0, minted.stderr)
        let tokenFile = cluster.root.appendingPathComponent("ns-worker.token")
        try minted.stdout.write(to: tokenFile, atomically: true, encoding: .utf8)
        let w1 = try cluster.startWorker("w1", extra: ["--ca-file", ca, "--token-file", tokenFile.path],
                                         namespace: network.workers[0], via: https)
        let rows = try cluster.waitForAllFinished(timeout: 120)
        XCTAssertEqual(rows.map(\.state), ["succeeded", "succeeded"], w1.stderr)
        XCTAssertTrue(w1.stderr.contains("coordinator \(https)"), w1.stderr)
        let list = try cluster.cli(["token", "list"])
        XCTAssertTrue(list.stdout.contains("ns-worker"), list.stdout)
        XCTAssertFalse(list.stdout.contains("never"), "the worker token took the leases: \(list.stdout)")

        func status(_ args: [String]) throws -> CommandResult {
            try runCommand(cluster.orchestrator, ["status"] + args, environment: cluster.environment,
                           logDir: cluster.logDir, namespace: network.workers[0], timeout: 30)
        }
        let untrusted = try status(["--coordinator", https])
        XCTAssertTrue(untrusted.stderr.contains("TLS with the coordinator at \(network.coordinatorAddress) failed: certificate verify failed"),
                      untrusted.stderr)
        let plain = try status(["--coordinator", "\(network.coordinatorAddress):7000"])
        XCTAssertTrue(plain.stderr.contains("if it serves TLS, use \(https)"), plain.stderr)
    }
}
