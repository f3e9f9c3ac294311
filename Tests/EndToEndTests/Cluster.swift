import Foundation
import NSTModel
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

// MARK: - A cluster of real processes

/// A coordinator, workers and the CLI as real processes (`.build/debug/orchestrator`,
/// `.build/debug/worker`) sharing a temporary directory: dataset, style images, config, the
/// coordinator's state dir, the workers' work dirs and every process's log.
final class Cluster {
    let root: URL
    let bin: URL
    let token = "e2e-" + UUID().uuidString
    let leaseTimeout: Double
    /// Where the coordinator listens and where workers and the CLI reach it.
    let host: String
    let port: Int
    /// Network namespace of the coordinator, and of the CLI (nil: this one).
    let coordinatorNamespace: String?
    let cliNamespace: String?
    private(set) var coordinator: ChildProcess?
    /// Extra `serve` arguments (e.g. `--tls-cert`), and how the CLI reaches the coordinator when
    /// not as `address` (e.g. `https://localhost:PORT --ca-file ca.pem`).
    var serveArguments: [String] = []
    var cliCoordinator: [String]?
    private(set) var workers: [String: ChildProcess] = [:]
    private var children: [ChildProcess] = []

    var stateDir: URL { root.appendingPathComponent("state") }
    var datasetDir: URL { root.appendingPathComponent("dataset") }
    var logDir: URL { root.appendingPathComponent("logs") }
    var address: String { "\(host):\(port)" }
    var orchestrator: URL { bin.appendingPathComponent("orchestrator") }
    var workerBinary: URL { bin.appendingPathComponent("worker") }

    /// Makes the temp dir with 8 synthetic 32×32 content images.
    init(leaseTimeout: Double = 3, host: String = "127.0.0.1", port: Int? = nil,
         coordinatorNamespace: String? = nil, cliNamespace: String? = nil) throws {
        bin = try Self.binDirectory()
        root = FileManager.default.temporaryDirectory
            .appendingPathComponent("nst-e2e-\(ProcessInfo.processInfo.processIdentifier)-\(UUID().uuidString.prefix(8))")
        self.leaseTimeout = leaseTimeout
        self.host = host
        self.port = try port ?? freeTCPPort()
        self.coordinatorNamespace = coordinatorNamespace
        self.cliNamespace = cliNamespace
        for dir in [root, stateDir, logDir] {
            try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        }
        _ = try SyntheticImages.writeDataset(to: datasetDir, count: 8, size: 32)
    }

    /// `.build/debug` (or wherever the test bundle was built), holding both executables.
    static func binDirectory() throws -> URL {
        let fromFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent(".build/debug")
        let candidates = [Bundle.main.bundleURL, Bundle.main.bundleURL.deletingLastPathComponent(),
                          URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent(), fromFile]
        let fm = FileManager.default
        for dir in candidates where fm.isExecutableFile(atPath: dir.appendingPathComponent("worker").path)
            && fm.isExecutableFile(atPath: dir.appendingPathComponent("orchestrator").path) {
            return dir
        }
        throw HarnessError("worker and orchestrator executables not found in \(candidates.map(\.path)); run `swift build --build-tests` first")
    }

    var environment: [String: String] {
        var env = ProcessInfo.processInfo.environment
        env["ORCHESTRATOR_TOKEN"] = token
        env.removeValue(forKey: "ORCHESTRATOR_COORDINATOR")
        // No VGG16 weights from this machine: a test that wants them says so.
        env.removeValue(forKey: "NST_VGG16_WEIGHTS")
        env["TORCH_HOME"] = root.appendingPathComponent("torch-home").path
        // Workers' download caches stay inside the test's folder, never in the real ~/.cache.
        env["XDG_CACHE_HOME"] = root.appendingPathComponent("xdg-cache").path
        return env
    }

    // MARK: Config

    /// Writes one style PNG per name (a different synthetic scene for each `imageSeed`) and
    /// `styles.json` with tiny sizes; returns the config's URL.
    func writeConfig(styles: [(name: String, imageSeed: UInt64, extra: [String: Any])], steps: Int,
                     checkpointEvery: Int = 2, file: String = "styles.json") throws -> URL {
        let styleDir = root.appendingPathComponent("styles")
        try FileManager.default.createDirectory(at: styleDir, withIntermediateDirectories: true)
        var entries: [[String: Any]] = []
        for style in styles {
            let image = SyntheticImages.contentImage(index: 1, width: 32, height: 32, seed: style.imageSeed)
            let url = styleDir.appendingPathComponent("style-\(style.imageSeed).png")
            try image.pngData().write(to: url)
            var entry: [String: Any] = ["name": style.name, "image": "styles/\(url.lastPathComponent)"]
            entry.merge(style.extra) { $1 }
            entries.append(entry)
        }
        let config: [String: Any] = [
            "defaults": ["image_size": 32, "style_size": 32, "batch_size": 2, "steps": steps,
                         "checkpoint_every": checkpointEvery, "lr": 1e-3, "seed": 42,
                         "validation_images": 0],  // 8 images only: a test that wants validation says so
            "styles": entries,
        ]
        let url = root.appendingPathComponent(file)
        try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys]).write(to: url)
        return url
    }

    // MARK: Processes

    func startCoordinator(label: String = "coordinator") throws {
        let child = try ChildProcess(
            label: label, executable: orchestrator,
            arguments: ["serve", "--host", host, "--port", String(port), "--state-dir", stateDir.path,
                        "--lease-timeout", String(leaseTimeout)] + serveArguments
                + (CoordinatorAddressCheck.isLoopback(host) || serveArguments.contains("--tls-cert") ? [] : ["--insecure-http"]),
            environment: environment, logDir: logDir, namespace: coordinatorNamespace)
        children.append(child)
        coordinator = child
    }

    /// Waits for `GET /healthz` (loopback) or a successful `status` through the CLI (from
    /// another namespace, which also proves the route between them).
    func waitForCoordinator(timeout: TimeInterval = 30) throws {
        let up = try waitUntil(timeout: timeout) {
            if let c = coordinator, !c.isRunning {
                throw HarnessError("coordinator exited with \(c.process.terminationStatus): \(c.stderr)")
            }
            return cliNamespace == nil && cliCoordinator == nil ? healthz()
                : ((try? cli(["status", "--json"], timeout: 10).status) == 0)
        }
        if !up { throw HarnessError("coordinator at \(address) not healthy after \(timeout) s: \(coordinator?.stderr ?? "")") }
    }

    /// True if `GET http://address/healthz` answers 200 with `"ok": true`.
    /// `GET /metrics` with the admin token: the value of the sample named exactly `sample`
    /// (e.g. `nst_served_bytes_total{kind="dataset"}`), 0 when absent.
    func metric(_ sample: String) throws -> Double {
        guard let url = URL(string: "http://\(address)/metrics") else { throw HarnessError("bad address \(address)") }
        final class Answer: @unchecked Sendable { var text: String?; var status = 0 }
        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: url)
        request.timeoutInterval = 10
        request.setValue("Bearer \(token)", forHTTPHeaderField: "Authorization")
        URLSession.shared.dataTask(with: request) { data, response, _ in
            answer.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            answer.text = data.map { String(decoding: $0, as: UTF8.self) }
            done.signal()
        }.resume()
        done.wait()
        guard answer.status == 200, let text = answer.text else { throw HarnessError("GET /metrics answered \(answer.status)") }
        for line in text.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1).trimmingCharacters(in: .whitespaces)) ?? .nan
        }
        return 0
    }

    func healthz() -> Bool {
        guard let url = URL(string: "http://\(address)/healthz") else { return false }
        final class Answer: @unchecked Sendable { var ok = false }
        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        var request = URLRequest(url: url)
        request.timeoutInterval = 2
        URLSession.shared.dataTask(with: request) { data, response, _ in
            if (response as? HTTPURLResponse)?.statusCode == 200, let data,
               let body = try? JSONSerialization.jsonObject(with: data) as? [String: Any] {
                answer.ok = body["ok"] as? Bool == true
            }
            done.signal()
        }.resume()
        done.wait()
        return answer.ok
    }

    @discardableResult
    /// - Parameters:
    ///   - localDataset: pass `--dataset` with the cluster's folder.
    ///   - home: run with this `HOME` and no `XDG_CACHE_HOME` (a machine with nothing of its own).
    func startWorker(_ name: String, extra: [String] = [], namespace: String? = nil,
                     via coordinatorAddress: String? = nil, randomVGG: Bool = true, localDataset: Bool = true,
                     home: URL? = nil) throws -> ChildProcess {
        let work = root.appendingPathComponent("work-\(name)")
        var environment = self.environment
        if let home {
            environment["HOME"] = home.path
            environment.removeValue(forKey: "XDG_CACHE_HOME")
        }
        let child = try ChildProcess(
            label: "worker-\(name)-\(children.count)", executable: workerBinary,
            arguments: ["--coordinator", coordinatorAddress ?? address] + (localDataset ? ["--dataset", datasetDir.path] : [])
                + ["--name", name, "--threads", "1", "--work-dir", work.path] + (randomVGG ? ["--random-vgg"] : []) + extra,
            environment: environment, logDir: logDir, namespace: namespace)
        children.append(child)
        workers[name] = child
        return child
    }

    /// Runs `orchestrator ARGS --coordinator ADDRESS`.
    func cli(_ arguments: [String], timeout: TimeInterval = 60) throws -> CommandResult {
        try runCommand(orchestrator, arguments + (cliCoordinator ?? ["--coordinator", address]), environment: environment,
                       logDir: logDir, namespace: cliNamespace, timeout: timeout)
    }

    /// Kills every process still running (tearDown); prints their logs if the test failed (or
    /// always, with `NST_E2E_PRINT_LOGS=1`).
    func shutdown(printLogs: Bool) {
        for child in children { child.killAndReap() }
        if printLogs || ProcessInfo.processInfo.environment["NST_E2E_PRINT_LOGS"] == "1" {
            for child in children {
                print("----- \(child.label) (stderr, last 4000 chars) -----\n\(child.stderr.suffix(4000))")
            }
        }
        try? FileManager.default.removeItem(at: root)
    }
}

/// Loopback addresses: `serve` refuses plain HTTP anywhere else unless told `--insecure-http`.
enum CoordinatorAddressCheck {
    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }
}
