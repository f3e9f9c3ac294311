import APIClient
import ArgumentParser
import Coordinator
import CoordinatorAPI
import Foundation
import JobStore
import NSTModel

/// `orchestrator bench-coordinator`: the coordinator's throughput and latency for lease,
/// heartbeat and release requests from many concurrent simulated workers on loopback.
///
/// Without `--coordinator` it starts `orchestrator serve` in a child process (its own Swift
/// runtime) on a free loopback port with a temporary state directory and a random token, and
/// stops it at the end. Each simulated worker has its own `CoordinatorClient` (as real workers
/// do) and loops: lease a job, send `--heartbeats-per-lease` heartbeats with 1–3 loss points
/// each, release the job (re-queued, so the queue never runs dry), lease again.
struct BenchCoordinator: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-coordinator",
        abstract: "Measure the coordinator's lease/heartbeat/release throughput and latency with simulated workers on loopback.")

    @Option(help: "Concurrent simulated workers.") var workers = 50
    @Option(help: "Tiny jobs submitted first (at least --workers).") var jobs = 200
    @Option(help: "Seconds of load.") var duration: Double = 20
    @Option(name: .customLong("heartbeat-every"), help: "Seconds between a worker's heartbeats (0: back to back).")
    var heartbeatEvery: Double = 0
    @Option(name: .customLong("heartbeats-per-lease"), help: "Heartbeats before a worker releases its job.")
    var heartbeatsPerLease = 20
    @Option(help: "Per-request timeout in seconds.") var timeout: Double = 10
    @Option(name: .customLong("coordinator"), help: "Bench a running coordinator at HOST:PORT (loopback only) instead of starting one.")
    var coordinator: String?
    @Option(name: .customLong("token-file"), help: "With --coordinator: file holding its token (default: $ORCHESTRATOR_TOKEN).")
    var tokenFile: String?
    @Option(name: .customLong("state-dir"), help: "State directory for the coordinator started here (kept; default: a temporary one, removed).")
    var stateDir: String?
    @Flag(help: "Start the coordinator with TLS (a private CA made here, as `tls init` does); clients trust that CA.")
    var tls = false
    @Option(name: .customLong("ca-file"), help: "With --coordinator https://…: the CA to trust.")
    var caFile: String?
    @Flag(name: .customLong("worker-tokens"), help: "Each simulated worker uses its own worker token (made with the admin token) instead of the admin token.")
    var workerTokens = false
    @Flag(name: .customLong("shared-client"), help: "One client for all workers instead of one each (AsyncHTTPClient's default pool: 8 connections).")
    var sharedClient = false
    @Flag(help: "Print one JSON object.") var json = false

    func validate() throws {
        guard (1...1000).contains(workers) else { throw ValidationError("--workers must be from 1 to 1000") }
        guard jobs >= workers, jobs <= 100_000 else { throw ValidationError("--jobs must be from --workers (\(workers)) to 100000") }
        guard duration.isFinite, duration > 0, duration <= 3600 else { throw ValidationError("--duration must be in (0, 3600] seconds") }
        guard heartbeatEvery.isFinite, heartbeatEvery >= 0 else { throw ValidationError("--heartbeat-every must be >= 0") }
        guard heartbeatsPerLease >= 1 else { throw ValidationError("--heartbeats-per-lease must be at least 1") }
        guard timeout.isFinite, timeout > 0, timeout <= 300 else { throw ValidationError("--timeout must be in (0, 300] seconds") }
        if let coordinator {
            let address: CoordinatorAddress
            do { address = try CoordinatorAddress(parsing: coordinator) } catch { throw ValidationError("\(error)") }
            guard CoordinatorConfig.isLoopback(host: address.host) else {
                throw ValidationError("--coordinator must be a loopback address (127.x.y.z, ::1, localhost), got \(address.host)")
            }
            if stateDir != nil { throw ValidationError("--state-dir is for the coordinator started here, not with --coordinator") }
            if tls { throw ValidationError("--tls is for the coordinator started here; with --coordinator give https://… and --ca-file") }
        }
    }

    func run() async throws {
        var server: ServerProcess?
        defer { server?.stop() }
        let address: String, token: String?, ca: String?
        if let coordinator {
            (address, ca) = (coordinator, caFile)
            do { token = try CoordinatorDefaults.token(file: tokenFile) } catch { throw CLIError(error) }
        } else {
            let started = try ServerProcess(stateDir: stateDir, tls: tls)
            server = started
            try await started.waitUntilListening()
            (address, token, ca) = (started.address, started.token, started.caFile)
        }
        let admin: CoordinatorClient
        do { admin = try CoordinatorClient(address: address, token: token, timeout: .seconds(60), caFile: ca) } catch { throw CLIError(error) }
        let report: BenchReport
        do {
            report = try await measure(address: address, token: token, caFile: ca, admin: admin, server: server)
            try? await admin.shutdown()
        } catch {
            try? await admin.shutdown()
            throw error as? CLIError ?? CLIError(error)
        }
        let setup = Setup(address: address, pid: server?.pid, stateDir: server?.stateDir.path, workers: workers,
                          jobs: jobs, duration: duration, heartbeatsPerLease: heartbeatsPerLease,
                          heartbeatEvery: heartbeatEvery, sharedClient: sharedClient,
                          tls: address.lowercased().hasPrefix("https://"), workerTokens: workerTokens)
        printOut(json ? try report.json(setup) : report.text(setup))
        if report.errors > 0 {
            throw CLIError("\(report.errors) request\(report.errors == 1 ? "" : "s") failed (first: \(report.firstError ?? "?"))")
        }
    }

    /// Submits the jobs, connects the workers' clients, runs the load until the deadline.
    func measure(address: String, token: String?, caFile: String?, admin: CoordinatorClient,
                 server: ServerProcess?) async throws -> BenchReport {
        let created = try await submitJobs(admin)
        var clients: [CoordinatorClient] = []
        do {
            for _ in 0..<(sharedClient ? 1 : workers) {
                let own = workerTokens ? try await admin.createWorkerToken(name: nil).token : token
                clients.append(try CoordinatorClient(address: address, token: own,
                                                     timeout: .milliseconds(Int64(timeout * 1000)), caFile: caFile))
            }
            // Connected before the clock starts, as real workers are.
            for client in clients { _ = try await client.health() }
        } catch {
            for client in clients { try? await client.shutdown() }
            throw error
        }

        let clock = ContinuousClock()
        let cpu0 = server?.cpuSeconds(), own0 = ownCPUSeconds()
        let start = clock.now, deadline = start + .nanoseconds(Int64(duration * 1e9))
        let runID = String(UInt32.random(in: .min ... .max), radix: 16)
        let logs = await withTaskGroup(of: WorkerLog.self) { group in
            for index in 0..<workers {
                let worker = SimulatedWorker(client: clients[sharedClient ? 0 : index], name: "bench-\(runID)-w\(index)",
                                             heartbeats: heartbeatsPerLease, interval: heartbeatEvery, seed: UInt64(index))
                group.addTask { await worker.run(until: deadline, clock: clock) }
            }
            return await group.reduce(into: [WorkerLog]()) { $0.append($1) }
        }
        let elapsed = seconds((logs.compactMap(\.lastEnd).max() ?? clock.now) - start)
        var cpu: Double?
        if let before = cpu0, let after = server?.cpuSeconds() { cpu = after - before }
        let ownCPU = ownCPUSeconds() - own0
        for client in clients { try? await client.shutdown() }
        if server == nil {  // leave a shared coordinator as we found it
            for id in created { _ = try? await admin.cancel(id: id) }
        }
        return BenchReport(logs: logs, elapsed: elapsed, coordinatorCPU: cpu, loadCPU: ownCPU)
    }

    /// Uploads a tiny style image and submits `jobs` jobs using it; returns their ids.
    func submitJobs(_ client: CoordinatorClient) async throws -> [Int64] {
        guard let style = SyntheticStyles.image(named: "mosaic", size: 32) else { throw CLIError("cannot draw the style image") }
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("bench-style-\(UUID().uuidString).png")
        try style.pngData().write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let sha = try await client.uploadArtifact(file: file).sha256
        let prefix = "bench-\(String(UInt32.random(in: .min ... .max), radix: 16))"
        var ids: [Int64] = []
        for chunk in stride(from: 0, to: jobs, by: 500) {
            let configs = (chunk..<min(chunk + 500, jobs)).map { i in
                JobConfig(name: "\(prefix)-\(i)", styleSHA256: sha, imageSize: 32, styleSize: 32, batchSize: 1,
                          steps: 1000, checkpointEvery: 1000, maxAttempts: 3)
            }
            ids += try await client.submit(configs, force: true).created
        }
        return ids
    }
}

// MARK: - Simulated worker

/// What one worker measured: latencies in milliseconds per request kind.
struct WorkerLog: Sendable {
    var samples: [RequestKind: [Double]] = [:]
    var errors: [RequestKind: Int] = [:]
    var firstError: String?
    /// Leases answered 204 (nothing queued).
    var empty = 0
    var lastEnd: ContinuousClock.Instant?
}

enum RequestKind: String, CaseIterable, Sendable { case lease, heartbeat, release }

/// A worker's request pattern without the training: lease, heartbeats with 1–3 loss points,
/// release, repeat until the deadline; every request timed with a monotonic clock.
struct SimulatedWorker: Sendable {
    let client: CoordinatorClient
    let name: String
    let heartbeats: Int
    let interval: Double
    let seed: UInt64

    func run(until deadline: ContinuousClock.Instant, clock: ContinuousClock) async -> WorkerLog {
        var log = WorkerLog()
        var rng = SplitMix64(seed: seed)
        var held: (id: Int64, token: String)?
        var beats = 0, step = 0

        func timed<T>(_ kind: RequestKind, _ body: () async throws -> T) async -> T? {
            let t0 = clock.now
            do {
                let value = try await body()
                let t1 = clock.now
                log.samples[kind, default: []].append(seconds(t1 - t0) * 1000)
                log.lastEnd = t1
                return value
            } catch {
                log.errors[kind, default: 0] += 1
                if log.firstError == nil { log.firstError = "\(kind.rawValue): \(error)" }
                log.lastEnd = clock.now
                return nil
            }
        }

        while clock.now < deadline {
            guard let job = held else {
                switch await timed(.lease, { try await client.lease(worker: name, host: "127.0.0.1", threads: 1) }) {
                case .some(.some(let lease)):
                    held = (lease.jobID, lease.token)
                    beats = 0
                    step = lease.checkpoint?.step ?? 0
                case .some(.none):
                    log.empty += 1
                    try? await Task.sleep(for: .milliseconds(20))
                case .none:
                    try? await Task.sleep(for: .milliseconds(50))
                }
                continue
            }
            if beats >= heartbeats {
                _ = await timed(.release, { try await client.release(jobID: job.id, token: job.token, reason: "bench") })
                held = nil
                continue
            }
            let points = (1...Int(1 + rng.next() % 3)).map { k -> LossPoint in
                let c = 1e5 / Double(step + k + 10), s = 2e5 / Double(step + k + 10)
                return LossPoint(step: step + k, images: step + k, content: c, style: s, total: c + s)
            }
            let request = HeartbeatRequest(token: job.token, step: step + points.count, imagesDone: step + points.count,
                                           imagesPerS: 12.5, stepsTotal: 1000, imagesTotal: 1000, lossPoints: points)
            switch await timed(.heartbeat, { try await client.heartbeat(jobID: job.id, request) }) {
            case .some(.continue): beats += 1; step += points.count
            case .some(.cancel), .none: held = nil
            }
            if interval > 0 { try? await Task.sleep(for: .nanoseconds(Int64(interval * 1e9))) }
        }
        // Hand the job back (not measured), so a shared coordinator keeps nothing running.
        if let job = held { _ = try? await client.release(jobID: job.id, token: job.token, reason: "bench over") }
        return log
    }
}

// MARK: - Report

struct Setup {
    var address: String, pid: Int32?, stateDir: String?
    var workers: Int, jobs: Int, duration: Double, heartbeatsPerLease: Int, heartbeatEvery: Double, sharedClient: Bool
    var tls: Bool, workerTokens: Bool
}

/// Latency statistics of one request kind, in milliseconds (nearest-rank percentiles).
struct LatencyStats {
    var count = 0, errors = 0, mean = 0.0, p50 = 0.0, p90 = 0.0, p99 = 0.0, max = 0.0

    init(_ values: [Double], errors: Int) {
        self.errors = errors
        guard !values.isEmpty else { return }
        let sorted = values.sorted()
        func rank(_ p: Double) -> Double { sorted[Swift.max(0, Int((p * Double(sorted.count)).rounded(.up)) - 1)] }
        count = sorted.count
        mean = sorted.reduce(0, +) / Double(sorted.count)
        (p50, p90, p99, max) = (rank(0.5), rank(0.9), rank(0.99), sorted[sorted.count - 1])
    }

    var dictionary: [String: Any] {
        ["count": count, "errors": errors, "mean_ms": mean, "p50_ms": p50, "p90_ms": p90, "p99_ms": p99, "max_ms": max]
    }
}

struct BenchReport {
    var kinds: [(String, LatencyStats)] = []
    var all: LatencyStats
    var elapsed: Double, coordinatorCPU: Double?, loadCPU: Double
    var errors: Int, empty: Int, firstError: String?
    var requests: Int { all.count }
    var perSecond: Double { elapsed > 0 ? Double(all.count) / elapsed : 0 }

    init(logs: [WorkerLog], elapsed: Double, coordinatorCPU: Double?, loadCPU: Double) {
        for kind in RequestKind.allCases {
            kinds.append((kind.rawValue, LatencyStats(logs.flatMap { $0.samples[kind] ?? [] },
                                                      errors: logs.reduce(0) { $0 + ($1.errors[kind] ?? 0) })))
        }
        errors = kinds.reduce(0) { $0 + $1.1.errors }
        all = LatencyStats(logs.flatMap { $0.samples.values.joined() }, errors: errors)
        empty = logs.reduce(0) { $0 + $1.empty }
        firstError = logs.compactMap(\.firstError).first
        (self.elapsed, self.coordinatorCPU, self.loadCPU) = (elapsed, coordinatorCPU, loadCPU)
    }

    func text(_ s: Setup) -> String {
        var lines = ["coordinator \(s.address)" + (s.pid.map { " (started here, pid \($0), state in \(s.stateDir ?? "?"))" } ?? ""),
                     "\(s.workers) workers (\(s.sharedClient ? "one shared client" : "one client each"), "
                        + "\(s.tls ? "TLS" : "plain HTTP"), \(s.workerTokens ? "a worker token each" : "the admin token")), \(s.jobs) jobs, "
                        + "\(s.heartbeatsPerLease) heartbeats per lease, heartbeat every \(s.heartbeatEvery) s, \(s.duration) s",
                     String(format: "requests: %d in %.2f s = %.0f req/s (errors %d, empty leases %d)",
                            requests, elapsed, perSecond, errors, empty),
                     "kind           count  errors   mean ms    p50 ms    p90 ms    p99 ms    max ms"]
        for (name, k) in kinds + [("all", all)] {
            lines.append(name.padding(toLength: 10, withPad: " ", startingAt: 0)
                + String(format: "%10d %7d %9.2f %9.2f %9.2f %9.2f %9.2f", k.count, k.errors, k.mean, k.p50, k.p90, k.p99, k.max))
        }
        let load = String(format: "load generator CPU %.1f s (%.0f%% of one core)", loadCPU, 100 * loadCPU / elapsed)
        if let cpu = coordinatorCPU {
            lines.append(String(format: "coordinator CPU %.1f s (%.0f%% of one core, %.0f µs per request); ",
                                cpu, 100 * cpu / elapsed, 1e6 * cpu / Double(max(requests, 1))) + load)
        } else {
            lines.append(load)
        }
        return lines.joined(separator: "\n")
    }

    func json(_ s: Setup) throws -> String {
        var object: [String: Any] = [
            "coordinator": s.address, "started_here": s.pid != nil, "workers": s.workers, "jobs": s.jobs,
            "duration_s": s.duration, "heartbeats_per_lease": s.heartbeatsPerLease, "heartbeat_every_s": s.heartbeatEvery,
            "shared_client": s.sharedClient, "tls": s.tls, "worker_tokens": s.workerTokens, "elapsed_s": elapsed, "requests": requests, "requests_per_s": perSecond,
            "errors": errors, "empty_leases": empty, "load_cpu_s": loadCPU, "all": all.dictionary,
        ]
        for (name, k) in kinds { object[name] = k.dictionary }
        if let cpu = coordinatorCPU { object["coordinator_cpu_s"] = cpu }
        if let error = firstError { object["first_error"] = error }
        return String(decoding: try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys]), as: UTF8.self)
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}

/// User + system CPU seconds of this process.
func ownCPUSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}

// MARK: - Coordinator child process

/// `orchestrator serve` on a free loopback port in a child process (this executable), with a
/// random token, a long lease timeout and its output in `STATE/serve.log` (a file, never a pipe).
final class ServerProcess: @unchecked Sendable {
    let process = Process()
    let stateDir: URL
    let ownsStateDir: Bool
    let token = (0..<4).map { _ in String(format: "%08x", UInt32.random(in: .min ... .max)) }.joined()
    let logURL: URL
    private(set) var address = ""
    var pid: Int32 { process.processIdentifier }

    /// The private CA the clients trust when the coordinator serves TLS.
    private(set) var caFile: String?

    init(stateDir: String?, tls: Bool = false) throws {
        ownsStateDir = stateDir == nil
        self.stateDir = stateDir.map { URL(fileURLWithPath: $0) }
            ?? FileManager.default.temporaryDirectory.appendingPathComponent("bench-coordinator-\(UUID().uuidString)")
        logURL = self.stateDir.appendingPathComponent("serve.log")
        do {
            try FileManager.default.createDirectory(at: self.stateDir, withIntermediateDirectories: true)
            guard FileManager.default.createFile(atPath: logURL.path, contents: nil) else {
                throw CLIError("cannot create \(logURL.path)")
            }
            process.executableURL = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
            process.arguments = ["serve", "--host", "127.0.0.1", "--port", "0", "--state-dir", self.stateDir.path,
                                 "--lease-timeout", "3600"]
            if tls {
                let files = try TLSInit.write(to: self.stateDir.appendingPathComponent("tls"), hosts: ["127.0.0.1", "localhost"], days: 1)
                caFile = files[0].path
                process.arguments! += ["--tls-cert", files[2].path, "--tls-key", files[3].path]
            }
            var environment = ProcessInfo.processInfo.environment
            environment["ORCHESTRATOR_TOKEN"] = token
            process.environment = environment
            process.standardInput = FileHandle.nullDevice
            let log = try FileHandle(forWritingTo: logURL)
            process.standardOutput = log
            process.standardError = log
            try process.run()
        } catch {
            if ownsStateDir { try? FileManager.default.removeItem(at: self.stateDir) }
            throw error as? CLIError ?? CLIError("cannot start the coordinator: \(error)")
        }
    }

    /// Waits (at most 30 s) for `serve` to print the address it listens on.
    func waitUntilListening() async throws {
        let marker = caFile == nil ? "listening on http://" : "listening on https://"
        for _ in 0..<1500 {
            let log = (try? String(contentsOf: logURL, encoding: .utf8)) ?? ""
            if let range = log.range(of: marker) {
                address = (caFile == nil ? "" : "https://") + String(log[range.upperBound...].prefix { !$0.isWhitespace })
                return
            }
            guard process.isRunning else {
                throw CLIError("the coordinator exited (status \(process.terminationStatus)): \(log.suffix(300))")
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        throw CLIError("the coordinator did not start listening within 30 s (log: \(logURL.path))")
    }

    /// User + system CPU seconds of the child, from `/proc/PID/stat` (fields 14 and 15).
    func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")  // fields[0] is field 3
        guard fields.count > 12, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// SIGTERM (graceful shutdown), SIGKILL after 10 s; removes a temporary state directory.
    func stop() {
        if process.isRunning {
            kill(pid, SIGTERM)
            for _ in 0..<500 where process.isRunning { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
        }
        if ownsStateDir { try? FileManager.default.removeItem(at: stateDir) }
    }
}
