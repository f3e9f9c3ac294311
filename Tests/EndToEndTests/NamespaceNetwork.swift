import Foundation
import XCTest

// MARK: - Separate "machines" on one host

/// Network namespaces standing in for machines: one for the coordinator, one per worker, and
/// one holding a bridge that joins them (veth pairs); addresses 10.231.0.0/24 exist only inside
/// these namespaces. Everything is made by the test and removed by `remove()`.
final class NamespaceNetwork {
    let coordinator: String
    let workers: [String]
    let bridge: String
    let coordinatorAddress = "10.231.0.1"
    private var made: [String] = []
    /// Where the `ip` commands' output goes (not the cluster's folder, which is removed first).
    private let logDir = FileManager.default.temporaryDirectory

    static let ipTool = URL(fileURLWithPath: "/usr/sbin/ip")

    /// Why namespaces cannot be made here, or nil if they can be tried.
    static func unavailableReason() -> String? {
        if getuid() != 0 { return "network namespaces need root (uid \(getuid()))" }
        if !FileManager.default.isExecutableFile(atPath: ipTool.path) { return "no \(ipTool.path) (iproute2)" }
        return nil
    }

    /// Namespaces for a test, or an `XCTSkip` saying why they cannot be made on this machine.
    static func makeOrSkip(workerCount: Int) throws -> NamespaceNetwork {
        if let why = unavailableReason() { throw XCTSkip("separate-machines test skipped: \(why)") }
        do { return try NamespaceNetwork(workerCount: workerCount) } catch {
            throw XCTSkip("separate-machines test skipped: cannot create network namespaces: \(error)")
        }
    }

    init(workerCount: Int) throws {
        let tag = "nste2e-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(4).lowercased())"
        coordinator = "\(tag)-c"
        workers = (1...workerCount).map { "\(tag)-w\($0)" }
        bridge = "\(tag)-br"
        do {
            for ns in [bridge, coordinator] + workers {
                try ip(["netns", "add", ns])
                made.append(ns)
                try ip(["-n", ns, "link", "set", "lo", "up"])
            }
            try ip(["-n", bridge, "link", "add", "br0", "type", "bridge"])
            try ip(["-n", bridge, "link", "set", "br0", "up"])
            for (i, ns) in ([coordinator] + workers).enumerated() {
                let port = "v\(i)"
                try ip(["-n", bridge, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns])
                try ip(["-n", bridge, "link", "set", port, "master", "br0"])
                try ip(["-n", bridge, "link", "set", port, "up"])
                try ip(["-n", ns, "addr", "add", "10.231.0.\(i + 1)/24", "dev", "eth0"])
                try ip(["-n", ns, "link", "set", "eth0", "up"])
            }
        } catch {
            remove()
            throw error
        }
    }

    func workerAddress(_ index: Int) -> String { "10.231.0.\(index + 2)" }

    /// The IPv4 addresses of `namespace`'s interfaces.
    func addresses(of namespace: String) throws -> [String] {
        let r = try runCommand(Self.ipTool, ["-n", namespace, "-4", "-o", "addr", "show"], environment: [:], logDir: logDir)
        return r.stdout.split(separator: "\n").compactMap { line in
            let f = line.split(separator: " ")
            guard let i = f.firstIndex(of: "inet"), i + 1 < f.count else { return nil }
            return String(f[i + 1].split(separator: "/")[0])
        }
    }

    /// Deletes every namespace made (their veths go with them). Safe to call twice.
    func remove() {
        for ns in made.reversed() { _ = try? runCommand(Self.ipTool, ["netns", "del", ns], environment: [:], logDir: logDir) }
        made = []
    }

    private func ip(_ arguments: [String]) throws {
        let r = try runCommand(Self.ipTool, arguments, environment: [:], logDir: logDir, timeout: 20)
        if r.status != 0 {
            throw HarnessError("ip \(arguments.joined(separator: " ")) failed (\(r.status)): \(r.stderr)")
        }
    }
}
