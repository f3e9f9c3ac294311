import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import XCTest

/// Issue 12, part 1: TLS on the coordinator, a private CA from `orchestrator tls init`, and
/// clear errors for every way a TLS connection can be wrong. Real processes on loopback.
final class TLSTests: XCTestCase {
    var clusters: [Cluster] = []

    override func tearDown() {
        for c in clusters { c.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0) }
        clusters = []
        super.tearDown()
    }

    /// `orchestrator tls init --out DIR --host …`; returns DIR.
    func tlsInit(_ cluster: Cluster, hosts: [String], days: Int = 30, name: String) throws -> URL {
        let dir = cluster.root.appendingPathComponent(name)
        let r = try runCommand(cluster.orchestrator, ["tls", "init", "--out", dir.path, "--days", String(days)]
                                   + hosts.flatMap { ["--host", $0] },
                               environment: cluster.environment, logDir: cluster.logDir)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.contains("wrote ca.pem, ca-key.pem, server.pem, server-key.pem"), r.stdout)
        let mode = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("server-key.pem").path)[.posixPermissions] as? Int
        XCTAssertEqual(mode, 0o600, "private keys are readable by their owner only")
        return dir
    }

    /// A coordinator serving HTTPS with the certificate in `dir`.
    func tlsCluster(_ dir: URL? = nil, hosts: [String] = ["localhost", "127.0.0.1"], days: Int = 30) throws -> (Cluster, URL) {
        let cluster = try Cluster(leaseTimeout: 5)
        clusters.append(cluster)
        let certs = try dir ?? tlsInit(cluster, hosts: hosts, days: days, name: "tls")
        cluster.serveArguments = ["--tls-cert", certs.appendingPathComponent("server.pem").path,
                                  "--tls-key", certs.appendingPathComponent("server-key.pem").path]
        cluster.cliCoordinator = ["--coordinator", "https://localhost:\(cluster.port)",
                                  "--ca-file", certs.appendingPathComponent("ca.pem").path]
        return (cluster, certs)
    }

    /// `orchestrator status --coordinator ADDRESS ARGS` against `cluster`.
    func status(_ cluster: Cluster, _ address: String, _ extra: [String] = []) throws -> CommandResult {
        try runCommand(cluster.orchestrator, ["status", "--coordinator", address] + extra,
                       environment: cluster.environment, logDir: cluster.logDir, timeout: 30)
    }

    func testAWorkerTrainsOverTLSWithAPrivateCA() throws {
        let (cluster, certs) = try tlsCluster()
        let ca = certs.appendingPathComponent("ca.pem").path
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let config = try cluster.writeConfig(styles: [("secure", 41, [:])], steps: 4)
        try cluster.submit(config)
        try cluster.startWorker("w1", extra: ["--ca-file", ca], via: "https://localhost:\(cluster.port)")
        let rows = try cluster.waitForAllFinished(timeout: 120)
        XCTAssertEqual(rows.map(\.state), ["succeeded"])
        let out = try cluster.fetchAll()
        XCTAssertTrue(FileManager.default.fileExists(atPath: out.appendingPathComponent("secure.safetensors").path))
        // The CA can come from the environment too.
        var env = cluster.environment
        env["ORCHESTRATOR_CA_FILE"] = ca
        let r = try runCommand(cluster.orchestrator, ["status", "--coordinator", "https://127.0.0.1:\(cluster.port)"],
                               environment: env, logDir: cluster.logDir)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    func testTheDashboardSessionCookieIsSecureUnderTLS() async throws {
        let (cluster, certs) = try tlsCluster()
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.trustRoots = .file(certs.appendingPathComponent("ca.pem").path)
        let client = HTTPClient(eventLoopGroupProvider: .singleton,
                                configuration: .init(tlsConfiguration: tls, redirectConfiguration: .disallow))
        do {
            var request = HTTPClientRequest(url: "https://localhost:\(cluster.port)/login")
            request.method = .POST
            request.headers.add(name: "Content-Type", value: "application/x-www-form-urlencoded")
            request.body = .bytes(ByteBuffer(string: "token=" + cluster.token))
            let response = try await client.execute(request, timeout: .seconds(20))
            XCTAssertEqual(response.status.code, 303)
            let cookie = try XCTUnwrap(response.headers.first(name: "Set-Cookie"))
            XCTAssertTrue(cookie.hasSuffix("; HttpOnly; SameSite=Strict; Secure"), cookie)
            XCTAssertFalse(cookie.contains(cluster.token))
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
    }

    func testEveryWrongTLSSetupIsAClearError() throws {
        let (cluster, certs) = try tlsCluster(hosts: ["localhost"])
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let ca = certs.appendingPathComponent("ca.pem").path
        let port = cluster.port

        // Plain HTTP to the TLS port.
        let plain = try status(cluster, "127.0.0.1:\(port)")
        XCTAssertNotEqual(plain.status, 0)
        XCTAssertTrue(plain.stderr.contains("if it serves TLS, use https://127.0.0.1:\(port)"), plain.stderr)
        // The system's CAs only: the private CA is not trusted.
        let untrusted = try status(cluster, "https://localhost:\(port)")
        XCTAssertTrue(untrusted.stderr.contains("TLS with the coordinator at localhost failed: certificate verify failed"), untrusted.stderr)
        // Another private CA.
        let other = try tlsInit(cluster, hosts: ["localhost"], name: "other-ca")
        let wrongCA = try status(cluster, "https://localhost:\(port)", ["--ca-file", other.appendingPathComponent("ca.pem").path])
        XCTAssertTrue(wrongCA.stderr.contains("TLS with the coordinator at localhost failed: certificate verify failed"), wrongCA.stderr)
        // The right CA, but a host name the certificate does not carry.
        let wrongHost = try status(cluster, "https://127.0.0.1:\(port)", ["--ca-file", ca])
        XCTAssertNotEqual(wrongHost.status, 0)
        XCTAssertTrue(wrongHost.stderr.contains("TLS with the coordinator at 127.0.0.1 failed"), wrongHost.stderr)
        // A CA file that is not one.
        let bogus = cluster.root.appendingPathComponent("bogus.pem")
        try Data("not a certificate\n".utf8).write(to: bogus)
        let unreadable = try status(cluster, "https://localhost:\(port)", ["--ca-file", bogus.path])
        XCTAssertTrue(unreadable.stderr.contains("cannot read the CA file \(bogus.path)") || unreadable.stderr.contains("no certificate in the CA file"),
                      unreadable.stderr)
        // And all is well with the right name and CA.
        let ok = try status(cluster, "https://localhost:\(port)", ["--ca-file", ca])
        XCTAssertEqual(ok.status, 0, ok.stderr)
    }

    func testAnExpiredCertificateIsRefused() throws {
        let (cluster, certs) = try tlsCluster(days: 0)
        try cluster.startCoordinator()
        _ = waitUntil(timeout: 10) { (try? self.status(cluster, "https://localhost:\(cluster.port)"))?.stderr.contains("TLS") == true }
        let r = try status(cluster, "https://localhost:\(cluster.port)", ["--ca-file", certs.appendingPathComponent("ca.pem").path])
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("TLS with the coordinator at localhost failed: certificate verify failed"), r.stderr)
    }

    func testHTTPSToAPlainCoordinatorSaysSo() throws {
        let cluster = try Cluster(leaseTimeout: 5)
        clusters.append(cluster)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        let r = try status(cluster, "https://127.0.0.1:\(cluster.port)")
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("the other end does not speak TLS"), r.stderr)
    }

    func testPlainHTTPOffLoopbackIsRefusedUnlessAskedFor() throws {
        let cluster = try Cluster(leaseTimeout: 5)
        clusters.append(cluster)
        let r = try runCommand(cluster.orchestrator, ["serve", "--host", "0.0.0.0", "--port", "0", "--state-dir",
                                                      cluster.stateDir.path],
                               environment: cluster.environment, logDir: cluster.logDir, timeout: 30)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderr.contains("refusing to serve plain HTTP on 0.0.0.0"), r.stderr)
        XCTAssertTrue(r.stderr.contains("--tls-cert"), r.stderr)
    }
}
