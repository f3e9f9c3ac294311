import CoordinatorTestSupport
import Foundation
import NSTModel
import XCTest

// MARK: - The fuzz test (issue 11)

/// Thousands of random and mutated requests against a live `orchestrator serve` on loopback:
/// every route, JSON with wrong types, huge and negative numbers, NaN, deep nesting, random
/// bytes, odd path parameters and headers, malformed HTTP, no token, a wrong token and the
/// right one, with and without a real lease. Every well-formed request must be answered with
/// 2xx/4xx (303 for the dashboard's `?token=` link, 304 for a preview that did not change);
/// a malformed one may go unanswered, but never with a 5xx; the coordinator must never exit
/// or hang; `orchestrator status` must keep working on whatever the fuzz stored; and at the
/// end `GET /v1/jobs`, `orchestrator status` and `GET /` must work. One semantic check on
/// top: a report under a real lease whose step is beyond the job's configured `steps` (a
/// checkpoint, preview, heartbeat or final progress no worker can have reached) must not be
/// accepted.
///
/// Deterministic: one `SplitMix64` seed (printed; `NST_FUZZ_SEED` overrides it) draws every
/// request. The run stops after `NST_FUZZ_REQUESTS` requests (4000) or `NST_FUZZ_SECONDS`
/// seconds (70), whichever comes first. A seed corpus of known-nasty requests is interleaved
/// early in the random stream, each followed by probes (`GET /v1/jobs`, `orchestrator
/// status`, `GET /`). When the coordinator crashes or hangs (a hung one gets SIGABRT first,
/// for the runtime's backtrace of every thread), or `orchestrator status` fails on its state,
/// the finding is recorded — the request, the answer, the crash site in `Sources/` — and a
/// fresh coordinator takes over, so one run reports every distinct failure (at most
/// `maxRestarts` restarts). 5xx answers are grouped by their message.
///
/// The coordinator runs under `prlimit --as` (4 GiB), so a runaway allocation kills it
/// instead of the machine.
final class FuzzTests: XCTestCase {
    private var fuzzer: Fuzzer?

    override func tearDown() {
        fuzzer?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        fuzzer = nil
        super.tearDown()
    }

    func testCoordinatorSurvivesFuzzedRequests() throws {
        let env = ProcessInfo.processInfo.environment
        let seed = env["NST_FUZZ_SEED"].flatMap { UInt64($0.hasPrefix("0x") ? String($0.dropFirst(2)) : $0,
                                                         radix: $0.hasPrefix("0x") ? 16 : 10) } ?? 0x5EED_0011
        let maxRequests = env["NST_FUZZ_REQUESTS"].flatMap(Int.init) ?? 4000
        let seconds = env["NST_FUZZ_SECONDS"].flatMap(Double.init) ?? 70
        print("fuzz: seed \(seed) (0x\(String(seed, radix: 16))), at most \(maxRequests) requests in \(Int(seconds)) s "
              + "(NST_FUZZ_SEED, NST_FUZZ_REQUESTS, NST_FUZZ_SECONDS)")
        let fuzzer = try Fuzzer(seed: seed)
        self.fuzzer = fuzzer
        let started = Date()
        try fuzzer.run(maxRequests: maxRequests, seconds: seconds)
        try fuzzer.finalChecks()
        print(printable(fuzzer.summary(elapsed: Date().timeIntervalSince(started))))
        for finding in fuzzer.findings {
            XCTFail(finding.report)
        }
    }

    /// The fuzzer's route table names every route the coordinator registers (read from
    /// `Sources/Coordinator`), so a new route cannot be left out silently.
    func testFuzzRouteTableCoversEveryRoute() throws {
        let registered = try registeredRoutes(in: coordinatorSourcesDir)
        XCTAssertGreaterThan(registered.count, 20, "route scan found too little: \(registered.sorted())")
        let missing = registered.subtracting(Fuzzer.routes)
        XCTAssertTrue(missing.isEmpty, "routes the fuzzer does not know: \(missing.sorted())")
        let stale = Set(Fuzzer.routes).subtracting(registered)
        XCTAssertTrue(stale.isEmpty, "fuzzer routes the coordinator does not have: \(stale.sorted())")
    }
}

// MARK: - The fuzzer

final class Fuzzer {
    /// Every route of the coordinator (`testFuzzRouteTableCoversEveryRoute` keeps this honest).
    static let routes = [
        "GET /healthz", "GET /", "GET /metrics",
        "PUT /v1/artifacts/:sha256", "GET /v1/artifacts/:sha256", "HEAD /v1/artifacts/:sha256",
        "POST /v1/jobs", "GET /v1/jobs", "POST /v1/jobs/cancel-all", "GET /v1/jobs/:id",
        "GET /v1/jobs/:id/losses", "GET /v1/jobs/:id/model", "POST /v1/jobs/:id/cancel", "POST /v1/jobs/:id/retry",
        "PUT /v1/jobs/:id/preview", "GET /v1/jobs/:id/preview",
        "POST /v1/lease", "POST /v1/jobs/:id/heartbeat", "PUT /v1/jobs/:id/checkpoints/:step",
        "PUT /v1/jobs/:id/model", "POST /v1/jobs/:id/complete", "POST /v1/jobs/:id/fail", "POST /v1/jobs/:id/release",
        "GET /login", "POST /login", "POST /logout", "POST /v1/tokens", "GET /v1/tokens", "POST /v1/tokens/:id/revoke",
        "GET /try", "POST /try", "POST /v1/stylize", "GET /v1/datasets", "POST /v1/jobs/:id/promote",
    ]

    static let maxRestarts = 10
    static let requestTimeout: TimeInterval = 8
    static let memoryLimit = 4 << 30

    var gen: Gen
    private(set) var node: FuzzNode
    private var retired: [FuzzNode] = []
    var blobs: [Blob] = []
    var png: Blob!
    var styleSHA = ""
    var restarts = 0

    // What the fuzzer has learned about the current coordinator.
    var jobIDs: [Int64] = []
    var leases: [(job: Int64, token: String)] = []
    var finishedModels: [(job: Int64, sha: String)] = []
    var uploadedModel: Blob?
    /// Worker tokens made by `POST /v1/tokens`, and the latest dashboard session id.
    var workerTokens: [String] = []
    var sessions: [String] = []
    var lastEnsure = -100
    /// Each leased job's planned steps (its config's `steps`).
    var plans: [Int64: Int] = [:]
    var nameCounter = 0

    // Results.
    private(set) var requests = 0
    private(set) var tally: [String: Int] = [:]
    private(set) var findings: [Finding] = []
    private(set) var notes: [String] = []
    private(set) var routeCounts: [String: Int] = [:]
    /// Seconds spent per route, in restarts and in `orchestrator status`.
    private(set) var timeSpent: [String: Double] = [:]
    private(set) var slowest: [(Double, String)] = []

    init(seed: UInt64) throws {
        gen = Gen(seed: seed)
        node = try FuzzNode(label: "coordinator")
        try prepareBlobs()
        try setUpNode()
    }

    func shutdown(printLogs: Bool) {
        for n in retired + [node] { n.shutdown(printLogs: printLogs) }
    }

    // MARK: Setup

    /// Bodies for uploads with their digests (the test target has no SHA-256: `sha256sum`).
    private func prepareBlobs() throws {
        var rng = SplitMix64(seed: 0xB10B)
        let contents: [[UInt8]] = [
            [], Array("x".utf8), (0..<4096).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
            (0..<200_000).map { _ in UInt8(truncatingIfNeeded: rng.next()) },
            Array("{\"not\": \"a checkpoint\"}".utf8),
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8),  // a PNG's head only
        ]
        let pngData = try SyntheticImages.contentImage(index: 2, width: 16, height: 16, seed: 3).pngData()
        let dir = node.cluster.root.appendingPathComponent("blobs")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        for (i, bytes) in (contents + [Array(pngData)]).enumerated() {
            let url = dir.appendingPathComponent("blob\(i)")
            try Data(bytes).write(to: url)
            blobs.append(Blob(bytes: bytes, sha: try sha256(of: url, logDir: node.cluster.logDir)))
        }
        png = blobs.last!
    }

    /// A valid job through the CLI (which uploads the style image), then a real lease.
    private func setUpNode() throws {
        let cluster = node.cluster
        let config = try cluster.writeConfig(styles: [(name: "fuzz-base", imageSeed: 11, extra: [:])], steps: 4)
        let submit = try cluster.cli(["submit", config.path])
        guard submit.status == 0 else { throw HarnessError("submit failed: \(submit.stderr)") }
        styleSHA = try sha256(of: cluster.root.appendingPathComponent("styles/style-11.png"), logDir: cluster.logDir)
        jobIDs = [1]
        leases = []
        finishedModels = []
        uploadedModel = nil
        lastEnsure = -100
        ensureLease(force: true)
    }

    /// Replaces a crashed or hung coordinator with a fresh one (new state directory).
    private func restart(_ why: String) throws {
        let began = Date()
        defer { timeSpent["(restarts)", default: 0] += Date().timeIntervalSince(began) }
        restarts += 1
        print("fuzz: restarting the coordinator (\(why)); restart \(restarts) of at most \(Self.maxRestarts)")
        node.process.killAndReap()
        retired.append(node)
        node = try FuzzNode(label: "coordinator")
        try setUpNode()
    }

    var token: String { node.cluster.token }

    // MARK: Running

    func run(maxRequests: Int, seconds: TimeInterval) throws {
        let deadline = Date().addingTimeInterval(seconds)
        let corpus = seedCorpus()
        var corpusIndex = 0
        var lastStatusCheck = 0
        while requests < maxRequests, Date() < deadline, restarts <= Self.maxRestarts {
            // The seed corpus: one item every 40 requests from request 20 on.
            if corpusIndex < corpus.count, requests >= 20 + 40 * corpusIndex {
                let item = corpus[corpusIndex]
                corpusIndex += 1
                try runCorpusItem(item)
                continue
            }
            if requests - lastStatusCheck >= 400 {
                lastStatusCheck = requests
                try checkStatusCommand(after: "\(requests) requests")
                continue
            }
            let request = nextRandomRequest()
            _ = try send(request)
        }
        if corpusIndex < corpus.count {
            notes.append("the run ended before the seed corpus was done (\(corpusIndex) of \(corpus.count) items)")
        }
    }

    /// The end: `GET /v1/jobs`, `orchestrator status` (text and JSON) and `GET /` must work.
    func finalChecks() throws {
        guard restarts <= Self.maxRestarts else { return }
        if !node.process.isRunning { try restart("dead before the final checks") }
        let jobs = try send(plain("GET", "/v1/jobs", route: "GET /v1/jobs", note: "final check"))
        if jobs.status != 200 {
            record("final GET /v1/jobs is not 200", route: "GET /v1/jobs", request: nil, answer: jobs)
        }
        try checkStatusCommand(after: "the final requests", restartIfBroken: false)
        let page = try send(plain("GET", "/", route: "GET /", note: "final check"))
        if page.status != 200 || !String(decoding: page.body, as: UTF8.self).contains("</html>") {
            record("final GET / is not a 200 page", route: "GET /", request: nil, answer: page)
        }
    }

    // MARK: Sending and judging

    /// Sends one request, tallies its status and judges the answer: a 5xx (or another
    /// unexpected status), no answer to a well-formed request, a hang, or the coordinator's
    /// exit are findings; after a crash or hang a fresh coordinator takes over.
    @discardableResult
    func send(_ request: FuzzRequest) throws -> RawHTTP.Answer {
        let port = node.cluster.port
        let began = Date()
        defer {
            let took = Date().timeIntervalSince(began)
            timeSpent[request.route, default: 0] += took
            if took > 0.5 { slowest.append((took, String(request.describe().prefix(300)))) }
        }
        let answer = RawHTTP.exchange(port: port, bytes: request.wire(host: "127.0.0.1:\(port)"),
                                      halfClose: request.halfClose, headOnly: request.method == "HEAD",
                                      timeout: Self.requestTimeout)
        requests += 1
        routeCounts[request.route, default: 0] += 1
        if let status = answer.status {
            tally[String(status), default: 0] += 1
            if !acceptable(status, request) {
                // A 5xx is grouped by its message (one cause shows on many routes), digits blanked.
                let message = String(decoding: answer.body.prefix(160), as: UTF8.self)
                    .replacingOccurrences(of: #"[0-9]+"#, with: "N", options: .regularExpression)
                record(status >= 500 ? "answered \(status) \(message)" : "answered \(status)",
                       route: status >= 500 ? "" : request.route, request: request, answer: answer, alsoOn: request.route)
            }
            if let (step, plan) = stepBeyondPlan(request, status: status) {
                record("accepted a step beyond the job's planned steps", route: request.route, request: request,
                       answer: RawHTTP.Answer(status: status, head: "step \(step) of \(plan) accepted: \(answer.head)", body: answer.body))
            }
        } else {
            tally[request.wellFormed ? "none" : "closed(malformed)", default: 0] += 1
        }
        // Did it crash the coordinator (or is it stuck)?
        if answer.status == nil || !node.process.isRunning {
            if !node.process.isRunning || !healthy() {
                let exited = node.process.isRunning ? node.process.waitForExit(timeout: 30) : node.process.process.terminationStatus
                let tail = crashSummary(node.process.stderr)
                if let exited {
                    record("coordinator exited (status \(exited))", route: request.route, request: request, answer: answer, log: tail)
                    try restart("it exited after \(request.route)")
                } else {
                    backtraceAndKill(node.process)
                    record("coordinator stopped answering", route: request.route, request: request, answer: answer,
                           log: hangSummary(node.process.stderr))
                    try restart("it stopped answering after \(request.route)")
                }
                return answer
            }
            if answer.status == nil, request.wellFormed {
                let what = answer.failure ?? "no answer"
                if what.contains("timed out") {
                    // Alive but this request is stuck (an endless loop burns CPU and memory): replace it.
                    backtraceAndKill(node.process)
                    let tail = hangSummary(node.process.stderr)
                    record("no answer within \(Int(Self.requestTimeout)) s (hang)", route: request.route, request: request,
                           answer: answer, log: tail)
                    try restart("a request hung on \(request.route)")
                } else {
                    record("connection closed without an answer (\(what))", route: request.route, request: request, answer: answer)
                }
            }
        }
        learn(from: request, answer)
        return answer
    }

    /// SIGABRT makes the Swift runtime print every thread's backtrace (the process survives
    /// it); once printed (at most 20 s), SIGKILL.
    func backtraceAndKill(_ process: ChildProcess) {
        process.kill(SIGABRT)
        _ = waitUntil(timeout: 20) { !process.isRunning || process.stderr.contains("Backtrace took") }
        process.killAndReap()
    }

    func acceptable(_ status: Int, _ request: FuzzRequest) -> Bool {
        if (200..<300).contains(status) || (400..<500).contains(status) { return true }
        if status == 303 && ["GET /", "GET /login", "POST /login", "POST /logout", "GET /try", "POST /try"].contains(request.route) {
            return true
        }
        if status == 304 && request.route == "GET /v1/jobs/:id/preview" { return true }
        return false
    }

    /// A report under the real lease that carries a step beyond the job's planned `steps` and
    /// was accepted (2xx): a checkpoint, preview, heartbeat or final progress no worker can
    /// have reached. Nil if the request is not such a report.
    func stepBeyondPlan(_ request: FuzzRequest, status: Int) -> (Int, Int)? {
        guard (200..<300).contains(status), request.leaseToken != nil else { return nil }
        let parts = request.target.split(separator: "/", omittingEmptySubsequences: false).dropFirst().map(String.init)
        guard parts.count >= 4, parts[0] == "v1", parts[1] == "jobs", let id = Int64(parts[2]), let plan = plans[id] else {
            return nil
        }
        var step: Int?
        switch request.route {
        case "PUT /v1/jobs/:id/checkpoints/:step":
            step = parts.count > 4 ? Int(parts[4]) : nil
        case "PUT /v1/jobs/:id/preview":
            step = request.headers.first { $0.0 == "X-Step" }.flatMap { Int($0.1) }
        case "POST /v1/jobs/:id/heartbeat", "POST /v1/jobs/:id/complete":
            // Only a body whose meaning is plain: an object with integer `step` and `images_done`.
            guard let object = (try? JSONSerialization.jsonObject(with: Data(request.body))) as? [String: Any],
                  let n = object["step"] as? NSNumber, object["images_done"] is NSNumber,
                  topLevelKeys(request.body).filter({ $0 == "step" || $0 == "images_done" }).count == 2
            else { return nil }
            step = n.doubleValue == n.doubleValue.rounded() ? Int(truncatingIfNeeded: n.int64Value) : nil
        default:
            return nil
        }
        guard let step, step > plan else { return nil }
        return (step, plan)
    }

    /// `GET /healthz` answers 200 within 5 s.
    func healthy() -> Bool {
        let answer = RawHTTP.exchange(port: node.cluster.port,
                                      bytes: Array("GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".utf8),
                                      halfClose: false, headOnly: false, timeout: 5)
        return answer.status == 200
    }

    /// Records a finding; findings with the same kind, route and crash site are counted once.
    func record(_ kind: String, route: String, request: FuzzRequest?, answer: RawHTTP.Answer?, log: String? = nil,
                alsoOn: String? = nil) {
        var signature = route.isEmpty ? kind : "\(kind) — \(route)"
        if let site = log.flatMap(crashSite) { signature += " — at \(site)" }
        if let i = findings.firstIndex(where: { $0.signature == signature }) {
            findings[i].count += 1
            if let alsoOn, !findings[i].routes.contains(alsoOn) { findings[i].routes.append(alsoOn) }
            if findings[i].more.count < 2, let request { findings[i].more.append(String(request.describe().prefix(600))) }
            return
        }
        findings.append(Finding(signature: signature, request: request?.describe() ?? "(see above)",
                                answer: answer?.describe() ?? "", log: log, atRequest: requests,
                                routes: alsoOn.map { [$0] } ?? []))
    }

    /// `Sources/…/File.swift:line` of a summary's first project frame.
    func crashSite(_ summary: String) -> String? {
        guard let range = summary.range(of: #"Sources/[^ ]+\.swift:\d+"#, options: .regularExpression) else { return nil }
        return String(summary[range])
    }

    /// `orchestrator status` and `status --json` against the current coordinator; true if
    /// either failed. A state that breaks them would break every later check, so a fresh
    /// coordinator takes over then (unless `restartIfBroken` is false: the caller does it).
    @discardableResult
    func checkStatusCommand(after: String, restartIfBroken: Bool = true) throws -> Bool {
        guard node.process.isRunning else { return false }
        let began = Date()
        defer { timeSpent["(orchestrator status)", default: 0] += Date().timeIntervalSince(began) }
        var broken = false
        for args in [["status"], ["status", "--json"]] {
            let r = try node.cluster.cli(args, timeout: 30)
            let name = "orchestrator \(args.joined(separator: " "))"
            if r.status != 0 {
                broken = true
                let summary = crashSummary(r.stderr)
                var signature = "\(name) exited \(r.status)"
                if let site = crashSite(summary) { signature += " — at \(site)" }
                if let i = findings.firstIndex(where: { $0.signature == signature }) { findings[i].count += 1; continue }
                findings.append(Finding(signature: signature, request: "\(name) after \(after)",
                                        answer: "stdout: \(r.stdout.suffix(600))", log: summary, atRequest: requests))
            } else if args == ["status"], r.stdout.unicodeScalars.contains(where: { $0 == "\u{1B}" || $0 == "\u{07}" }) {
                let note = "orchestrator status printed raw terminal control characters (ESC/BEL) from job data"
                if !notes.contains(where: { $0.hasPrefix(note) }) { notes.append(note + " (first after \(after))") }
            }
        }
        if !node.process.isRunning {
            record("coordinator exited while `orchestrator status` ran", route: "GET /v1/jobs", request: nil, answer: nil,
                   log: crashSummary(node.process.stderr))
            try restart("it exited during `orchestrator status`")
        } else if broken, restartIfBroken {
            try restart("`orchestrator status` fails on this state")
        }
        return broken
    }

    // MARK: Learning from answers

    func learn(from request: FuzzRequest, _ answer: RawHTTP.Answer) {
        guard let status = answer.status else { return }
        let object = (try? JSONSerialization.jsonObject(with: Data(answer.body), options: [.fragmentsAllowed])) as? [String: Any]
        switch request.route {
        case "POST /v1/lease" where status == 200:
            if let id = (object?["job_id"] as? NSNumber)?.int64Value, let token = object?["token"] as? String {
                if let steps = ((object?["config"] as? [String: Any])?["steps"] as? NSNumber)?.intValue { plans[id] = steps }
                leases.append((id, token))
                if leases.count > 4 { leases.removeFirst() }
            }
        case "POST /v1/jobs" where status == 200:
            for id in (object?["created"] as? [NSNumber]) ?? [] where !jobIDs.contains(id.int64Value) {
                jobIDs.append(id.int64Value)
            }
        case "POST /v1/jobs/:id/complete", "POST /v1/jobs/:id/fail", "POST /v1/jobs/:id/release",
             "POST /v1/jobs/:id/heartbeat":
            guard let token = request.leaseToken else { return }
            let ended = (request.route != "POST /v1/jobs/:id/heartbeat" && status == 200) || status == 409
                || (status == 200 && object?["action"] as? String == "cancel")
            if ended { leases.removeAll { $0.token == token } }
            if request.route == "POST /v1/jobs/:id/complete", status == 200,
               let id = (object?["id"] as? NSNumber)?.int64Value, let sha = object?["model_sha256"] as? String {
                finishedModels.append((id, sha))
            }
        case "PUT /v1/jobs/:id/checkpoints/:step", "PUT /v1/jobs/:id/model", "PUT /v1/jobs/:id/preview":
            if status == 409, let token = request.leaseToken { leases.removeAll { $0.token == token } }
            if request.route == "PUT /v1/jobs/:id/model", status == 201 { uploadedModel = request.blob }
        case "POST /v1/jobs/:id/cancel" where status == 200:
            if let id = (object?["id"] as? NSNumber)?.int64Value { leases.removeAll { $0.job == id } }
        case "POST /v1/jobs/cancel-all" where status == 200:
            leases.removeAll()
        case "POST /v1/tokens" where status == 201:
            if let made = object?["token"] as? String, workerTokens.count < 3 { workerTokens.append(made) }
        case "POST /login" where status == 303:
            if let cookie = answer.head.split(separator: "\r\n").first(where: { $0.lowercased().hasPrefix("set-cookie: nst_session=") }) {
                let value = cookie.dropFirst("set-cookie: nst_session=".count).prefix { $0 != ";" }
                if !value.isEmpty { sessions = [String(value)] }
            }
        default:
            break
        }
    }

    /// Makes sure a real lease is held (submitting a valid job and leasing it), at most every
    /// 25 requests unless forced.
    @discardableResult
    func ensureLease(force: Bool = false) -> (job: Int64, token: String)? {
        if let lease = leases.last { return lease }
        guard force || requests - lastEnsure >= 25 else { return nil }
        lastEnsure = requests
        _ = try? send(submitRequest(body: validSubmit(), note: "setup: a valid job to lease"))
        _ = try? send(leaseRequest(body: validLease(), note: "setup: lease it"))
        return leases.last
    }

    /// Cancels every live job, submits a valid one and leases it: a lease on a job no earlier
    /// report has touched (a heartbeat's progress applies only if its step is not behind).
    func freshLease() -> (job: Int64, token: String)? {
        _ = try? send(plain("POST", "/v1/jobs/cancel-all", route: "POST /v1/jobs/cancel-all", note: "corpus setup: an empty queue"))
        leases.removeAll()
        _ = try? send(submitRequest(body: validSubmit(), note: "corpus setup: a fresh job"))
        _ = try? send(leaseRequest(body: validLease(), note: "corpus setup: lease it"))
        return leases.last
    }

    // MARK: Summary

    func summary(elapsed: TimeInterval) -> String {
        let order = tally.keys.sorted { (Int($0) ?? 1000, $0) < (Int($1) ?? 1000, $1) }
        var out = "fuzz: \(requests) requests in \(String(format: "%.1f", elapsed)) s: "
            + order.map { "\($0)×\(tally[$0]!)" }.joined(separator: " ")
        out += "\nfuzz: per route: " + routeCounts.keys.sorted().map { "\($0) ×\(routeCounts[$0]!)" }.joined(separator: ", ")
        let slow = timeSpent.sorted { $0.value > $1.value }.prefix(8)
        out += "\nfuzz: time by route: " + slow.map { "\($0.key) \(String(format: "%.1f", $0.value)) s" }.joined(separator: ", ")
        for (took, what) in slowest.sorted(by: { $0.0 > $1.0 }).prefix(12) { out += "\nfuzz: slow: \(String(format: "%.2f", took)) s \(what)" }
        out += "\nfuzz: coordinator restarts: \(restarts); distinct findings: \(findings.count)"
        for finding in findings {
            out += "\nfuzz: FINDING \(finding.signature) (×\(finding.count), first at request \(finding.atRequest))"
            if finding.routes.count > 1 { out += " on \(finding.routes.joined(separator: ", "))" }
        }
        for note in notes { out += "\nfuzz: note: \(note)" }
        return out
    }
}

/// The useful part of a crash log (the coordinator's or the CLI's): the runtime's `***` lines,
/// any `Fatal error` line, and the crashed thread's first frames in the project's own sources
/// (symbol and file:line); the log's tail when there is no backtrace.
func crashSummary(_ log: String) -> String {
    let lines = log.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var out = lines.filter { ($0.hasPrefix("*** ") && !$0.contains("Backtracing")) || $0.contains("Fatal error") }
    if let crashed = lines.firstIndex(where: { $0.hasSuffix("crashed:") }) {
        out += projectFrames(lines[(crashed + 1)...], limit: 8)
    }
    return out.isEmpty ? String(log.suffix(1200)) : out.joined(separator: "\n")
}

/// Where a hung coordinator was (it is sent SIGABRT, so the runtime prints every thread):
/// each thread with frames in the project's own sources, its first few of them.
func hangSummary(_ log: String) -> String {
    let lines = log.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
    var out: [String] = []
    for (i, line) in lines.enumerated() where line.hasPrefix("Thread ") {
        let frames = projectFrames(lines[(i + 1)...], limit: 6)
        if !frames.isEmpty { out += [line] + frames }
    }
    return out.isEmpty ? "no backtrace; log tail:\n" + String(log.suffix(800)) : out.joined(separator: "\n")
}

/// The frames of one thread's backtrace (up to the next thread) in `Sources/` but not in
/// `.build/`, as `symbol at Sources/…:line:column`.
func projectFrames(_ lines: ArraySlice<String>, limit: Int) -> [String] {
    var out: [String] = []
    for line in lines {
        if line.hasPrefix("Thread ") || line.hasPrefix("Registers") || out.count == limit { break }
        guard let at = line.range(of: "/Sources/"), !line.contains("/.build/") else { continue }
        let symbol = line.replacingOccurrences(of: #"^\s*\d+\s+(\[[^\]]*\]\s*)*0x[0-9a-f]+\s+"#, with: "",
                                               options: .regularExpression)
            .components(separatedBy: " in orchestrator at ").first ?? line
        out.append("    \(symbol) at Sources/\(line[at.upperBound...])")
    }
    return out
}

struct Finding {
    var signature: String
    var request: String
    var answer: String
    var log: String?
    var atRequest: Int
    /// Every route it showed on, when grouped by cause.
    var routes: [String] = []
    /// Later requests that found it again (two at most).
    var more: [String] = []
    var count = 1

    var report: String {
        var s = "fuzz finding: \(signature) (×\(count), first at request \(atRequest))"
        if routes.count > 1 { s += "\n  on: \(routes.joined(separator: ", "))" }
        s += "\n  request: \(request)"
        if !answer.isEmpty { s += "\n  answer: \(answer)" }
        if let log, !log.isEmpty { s += "\n  log:\n\(log)" }
        for other in more { s += "\n  also: \(other)" }
        return printable(s)
    }
}

struct Blob {
    var bytes: [UInt8]
    var sha: String
}

// MARK: - One coordinator

/// A `Cluster` whose coordinator runs under an address-space limit.
final class FuzzNode {
    let cluster: Cluster
    let process: ChildProcess

    init(label: String) throws {
        cluster = try Cluster(leaseTimeout: 10)
        var serve = [cluster.orchestrator.path, "serve", "--host", cluster.host, "--port", String(cluster.port),
                     "--state-dir", cluster.stateDir.path, "--lease-timeout", String(cluster.leaseTimeout),
                     "--dataset", "fuzz=\(cluster.datasetDir.path)"]  // jobs pin it, leases name it
        var executable = cluster.orchestrator
        if FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") {
            executable = URL(fileURLWithPath: "/usr/bin/prlimit")
            serve = ["--as=\(Fuzzer.memoryLimit)", "--"] + serve
        } else {
            serve.removeFirst()
            print("fuzz: prlimit not found; the coordinator runs without a memory limit")
        }
        process = try ChildProcess(label: label, executable: executable, arguments: serve,
                                   environment: cluster.environment, logDir: cluster.logDir)
        let up = waitUntil(timeout: 30) { !process.isRunning || cluster.healthz() }
        guard up, process.isRunning else {
            throw HarnessError("fuzz coordinator did not start: \(process.stderr.suffix(2000))")
        }
    }

    func shutdown(printLogs: Bool) {
        process.killAndReap()
        if printLogs {
            print(printable("----- \(cluster.address) \(process.label) (stderr, summarised) -----\n\(crashSummary(process.stderr))"))
        }
        cluster.shutdown(printLogs: false)
    }
}

// MARK: - Requests

struct FuzzRequest {
    enum Framing {
        /// `Content-Length` of the body (omitted for an empty GET/HEAD/DELETE body).
        case contentLength
        /// No length at all.
        case none
        /// `Transfer-Encoding: chunked`, the body in a few chunks.
        case chunked
        /// This `Content-Length` value, whatever the body (a mismatch is not well-formed).
        case declared(String)
    }

    var route: String
    var note: String
    var method: String
    var target: String
    var headers: [(String, String)] = []
    var body: [UInt8] = []
    var framing: Framing = .contentLength
    /// The whole request as bytes (malformed HTTP); the rest is then only its description.
    var raw: [UInt8]?
    /// Send EOF after the request (a cut body).
    var halfClose = false
    /// The real lease token the request carries, if any (to forget leases that ended).
    var leaseToken: String?
    /// The upload's content, if it is one from the pool.
    var blob: Blob?

    static let standardMethods: Set<String> = ["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "TRACE"]

    /// A request whose framing and syntax are valid HTTP/1.1: it must be answered.
    var wellFormed: Bool {
        if raw != nil || halfClose { return false }
        if case .declared(let value) = framing, value != String(body.count) { return false }
        guard Self.standardMethods.contains(method),
              !target.isEmpty, target.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else { return false }
        for (name, value) in headers {
            guard !name.isEmpty, name.utf8.allSatisfy({ $0 > 0x20 && $0 < 0x7F && !"()<>@,;:\\\"/[]?={}".utf8.contains($0) }),
                  value.utf8.allSatisfy({ $0 >= 0x20 && $0 != 0x7F || $0 == 0x09 }) else { return false }
        }
        return true
    }

    func wire(host: String) -> [UInt8] {
        if let raw { return raw }
        var head = "\(method) \(target) HTTP/1.1\r\nHost: \(host)\r\nConnection: close\r\n"
        for (name, value) in headers { head += "\(name): \(value)\r\n" }
        var payload = body
        switch framing {
        case .contentLength:
            if !body.isEmpty || !["GET", "HEAD", "DELETE", "OPTIONS", "TRACE"].contains(method) {
                head += "Content-Length: \(body.count)\r\n"
            }
        case .none:
            break
        case .declared(let value):
            head += "Content-Length: \(value)\r\n"
        case .chunked:
            head += "Transfer-Encoding: chunked\r\n"
            payload = []
            var rest = body[...]
            while !rest.isEmpty {
                let n = min(rest.count, max(1, rest.count / 2 + 1))
                payload += Array("\(String(n, radix: 16))\r\n".utf8) + rest.prefix(n) + Array("\r\n".utf8)
                rest = rest.dropFirst(n)
            }
            payload += Array("0\r\n\r\n".utf8)
        }
        return Array((head + "\r\n").utf8) + payload
    }

    /// Method, target, headers and (the start of) the body, escaped, for a report.
    func describe() -> String {
        if let raw { return "raw bytes (\(raw.count)): \(escapeForReport(raw, limit: 300)) [\(note)]" }
        var s = "\(method) \(target)"
        if !headers.isEmpty { s += " headers {" + headers.map { "\($0.0): \(escapeForReport(Array($0.1.utf8), limit: 120))" }.joined(separator: "; ") + "}" }
        switch framing {
        case .contentLength: break
        case .none: s += " (no Content-Length)"
        case .chunked: s += " (chunked)"
        case .declared(let v): s += " (Content-Length: \(v))"
        }
        if halfClose { s += " (then EOF)" }
        if !body.isEmpty { s += " body (\(body.count) bytes): \(escapeForReport(body, limit: 700))" }
        return s + " [\(note)]"
    }
}

/// The keys of a JSON object's top level, in order, duplicates included (a light scan of
/// valid JSON: strings and nesting only).
func topLevelKeys(_ bytes: [UInt8]) -> [String] {
    var keys: [String] = []
    var depth = 0, i = 0
    var expectKey = false
    while i < bytes.count {
        let b = bytes[i]
        if b == UInt8(ascii: "\"") {
            var j = i + 1
            while j < bytes.count, bytes[j] != UInt8(ascii: "\"") { j += bytes[j] == UInt8(ascii: "\\") ? 2 : 1 }
            if depth == 1, expectKey { keys.append(String(decoding: bytes[(i + 1)..<min(j, bytes.count)], as: UTF8.self)) }
            expectKey = false
            i = j + 1
            continue
        }
        switch b {
        case UInt8(ascii: "{"): depth += 1; expectKey = depth == 1
        case UInt8(ascii: "["): depth += 1
        case UInt8(ascii: "}"), UInt8(ascii: "]"): depth -= 1
        case UInt8(ascii: ","): expectKey = depth == 1
        default: break
        }
        i += 1
    }
    return keys
}

/// `text` with control characters (but newlines and tabs) as `\xNN`: logs and CLI output
/// may carry a fuzzed reason's escape sequences, which must not reach the test's output.
func printable(_ text: String) -> String {
    var out = ""
    for u in text.unicodeScalars {
        if (u.value < 0x20 && u != "\n" && u != "\t") || u.value == 0x7F || (0x80..<0xA0).contains(u.value) {
            out += String(format: "\\x%02X", u.value)
        } else {
            out.unicodeScalars.append(u)
        }
    }
    return out
}

/// Printable ASCII as is, everything else as `\xNN` (long runs of one byte shortened).
func escapeForReport(_ bytes: [UInt8], limit: Int) -> String {
    var out = ""
    var i = 0
    while i < bytes.count, out.count < limit {
        var run = 1
        while i + run < bytes.count, bytes[i + run] == bytes[i] { run += 1 }
        let b = bytes[i]
        let one = (b >= 0x20 && b < 0x7F) ? String(UnicodeScalar(b)) : String(format: "\\x%02X", b)
        if run > 8 { out += "\(one)×\(run)"; i += run; continue }
        out += one
        i += 1
    }
    if i < bytes.count { out += "…(+\(bytes.count - i) bytes)" }
    return out
}

// MARK: - Raw HTTP over a POSIX socket

enum RawHTTP {
    struct Answer {
        var status: Int?
        var head: String = ""
        var body: [UInt8] = []
        /// Why there is no answer (closed, reset, timed out, refused).
        var failure: String?

        func describe() -> String {
            guard let status else { return failure ?? "no answer" }
            let first = head.split(separator: "\r\n").first.map(String.init) ?? "\(status)"
            return "\(first) \(escapeForReport(body, limit: 400))"
        }
    }

    /// One request on a new connection (`Connection: close`), its answer read until the body
    /// is complete, the server closes, or `timeout`.
    static func exchange(port: Int, bytes: [UInt8], halfClose: Bool, headOnly: Bool, timeout: TimeInterval) -> Answer {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return Answer(failure: "socket() failed: errno \(errno)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 1, tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        var sendTV = timeval(tv_sec: Int(timeout), tv_usec: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &sendTV, socklen_t(MemoryLayout<timeval>.size))
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { return Answer(failure: "connect failed: \(String(cString: strerror(errno)))") }
        // Send, watching for an early answer (a 401 or 413 before the body is read): then stop
        // sending and read it, rather than block on a server that no longer reads.
        var sendError: String?
        let sendDeadline = Date().addingTimeInterval(timeout)
        bytes.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                var pfd = pollfd(fd: fd, events: Int16(POLLOUT | POLLIN), revents: 0)
                let waitMs = Int32(max(0, sendDeadline.timeIntervalSinceNow) * 1000)
                let ready = poll(&pfd, 1, waitMs)
                if ready < 0 { if errno == EINTR { continue }; sendError = "poll: errno \(errno)"; return }
                if ready == 0 { sendError = "send timed out after \(sent) of \(raw.count) bytes"; return }
                if pfd.revents & Int16(POLLIN) != 0 { return }
                let n = Foundation.send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL | MSG_DONTWAIT))
                if n < 0 {
                    if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
                    sendError = "send: \(String(cString: strerror(errno))) after \(sent) of \(raw.count) bytes"
                    return
                }
                sent += n
            }
        }
        if halfClose { _ = shutdown(fd, Int32(SHUT_WR)) }
        let deadline = Date().addingTimeInterval(timeout)
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        var ending: String?
        while true {
            if let answer = parse(data, headOnly: headOnly, complete: false) { return answer }
            if Date() > deadline { ending = "timed out after \(Int(timeout)) s"; break }
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n > 0 { data += buffer[0..<n]; continue }
            if n == 0 { ending = "closed by the server"; break }
            if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { continue }
            ending = "recv: \(String(cString: strerror(errno)))"
            break
        }
        if let answer = parse(data, headOnly: headOnly, complete: true) { return answer }
        let why = [ending, sendError].compactMap { $0 }.joined(separator: "; ")
        return Answer(failure: data.isEmpty ? why : "\(why); partial answer: \(escapeForReport(data, limit: 200))")
    }

    /// The answer in `data` once complete (or, with `complete`, whatever status line arrived).
    private static func parse(_ data: [UInt8], headOnly: Bool, complete: Bool) -> Answer? {
        var start = 0
        while true {
            guard let end = find([13, 10, 13, 10], in: data, from: start) else {
                if complete, let status = statusCode(data, from: start) {
                    return Answer(status: status, head: String(decoding: data[start...], as: UTF8.self))
                }
                return nil
            }
            let head = String(decoding: data[start..<end], as: UTF8.self)
            guard let status = statusCode(data, from: start) else {
                return complete ? Answer(failure: "not HTTP: \(escapeForReport(Array(data[start...]), limit: 200))") : nil
            }
            if (100..<200).contains(status) { start = end + 4; continue }  // 100 Continue
            let bodyStart = end + 4
            let body = Array(data[bodyStart...])
            if headOnly || status == 204 || status == 304 || complete {
                return Answer(status: status, head: head, body: headOnly ? [] : body)
            }
            let lines = head.lowercased().split(separator: "\r\n")
            if let cl = lines.first(where: { $0.hasPrefix("content-length:") }),
               let n = Int(cl.dropFirst("content-length:".count).trimmingCharacters(in: .whitespaces)) {
                return body.count >= n ? Answer(status: status, head: head, body: Array(body.prefix(n))) : nil
            }
            if lines.contains(where: { $0.hasPrefix("transfer-encoding:") && $0.contains("chunked") }) {
                return find(Array("0\r\n\r\n".utf8), in: body, from: 0) != nil
                    ? Answer(status: status, head: head, body: dechunk(body)) : nil
            }
            return nil  // read until the server closes
        }
    }

    private static func statusCode(_ data: [UInt8], from start: Int) -> Int? {
        let prefix = Array("HTTP/1.".utf8)
        guard data.count >= start + 12, Array(data[start..<start + 7]) == prefix else { return nil }
        return Int(String(decoding: data[(start + 9)..<(start + 12)], as: UTF8.self))
    }

    private static func find(_ needle: [UInt8], in data: [UInt8], from: Int) -> Int? {
        guard data.count >= needle.count, from <= data.count - needle.count else { return nil }
        var i = from
        while i <= data.count - needle.count {
            if data[i] == needle[0], Array(data[i..<i + needle.count]) == needle { return i }
            i += 1
        }
        return nil
    }

    private static func dechunk(_ body: [UInt8]) -> [UInt8] {
        var out: [UInt8] = []
        var i = 0
        while let lineEnd = find([13, 10], in: body, from: i),
              let n = Int(String(decoding: body[i..<lineEnd], as: UTF8.self).split(separator: ";").first ?? "", radix: 16),
              n > 0, lineEnd + 2 + n <= body.count {
            out += body[(lineEnd + 2)..<(lineEnd + 2 + n)]
            i = lineEnd + 2 + n + 2
        }
        return out
    }
}

// MARK: - JSON values to mutate

/// A JSON document as the fuzzer builds it: literals are raw text, so a "number" may be
/// `1e400`, `-0` or `NaN` (invalid JSON on purpose).
indirect enum J {
    case lit(String)
    case str(String)
    case arr([J])
    case obj([(String, J)])

    static func int(_ v: Int) -> J { .lit(String(v)) }
    static func num(_ v: Double) -> J { .lit("\(v)") }

    var text: String {
        var out = ""
        render(&out)
        return out
    }

    /// Rendering stops adding once the text passes this (a mutated document can repeat a 1 MB
    /// string 300 times; no request body is ever that large, and `jsonBody` drops what is above
    /// 2 MiB anyway).
    static let renderLimit = 16 << 20

    func render(_ out: inout String) {
        if out.utf8.count > J.renderLimit { return }
        switch self {
        case .lit(let t): out += t
        case .str(let s): out += J.quote(s)
        case .arr(let items):
            out += "["
            for (i, v) in items.enumerated() { if i > 0 { out += "," }; v.render(&out) }
            out += "]"
        case .obj(let pairs):
            out += "{"
            for (i, (k, v)) in pairs.enumerated() {
                if i > 0 { out += "," }
                out += J.quote(k) + ":"
                v.render(&out)
            }
            out += "}"
        }
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped.
    static func quote(_ s: String) -> String {
        // Most strings need no escape: copied whole.
        if !s.utf8.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C || $0 == 0x7F }) { return "\"" + s + "\"" }
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 || u.value == 0x7F { out += String(format: "\\u%04x", u.value) } else { out.unicodeScalars.append(u) }
            }
        }
        return out + "\""
    }

    /// Paths (child indices) of every value, the root included.
    func paths(_ prefix: [Int] = [], into out: inout [[Int]]) {
        out.append(prefix)
        switch self {
        case .arr(let items): for (i, v) in items.enumerated() { v.paths(prefix + [i], into: &out) }
        case .obj(let pairs): for (i, (_, v)) in pairs.enumerated() { v.paths(prefix + [i], into: &out) }
        default: break
        }
    }

    /// `.jobs[0].steps` for a path.
    func describe(_ path: [Int]) -> String {
        guard let first = path.first else { return "(root)" }
        switch self {
        case .arr(let items): return "[\(first)]" + (first < items.count ? items[first].describe(Array(path.dropFirst())).replacingOccurrences(of: "(root)", with: "") : "")
        case .obj(let pairs): return ".\(first < pairs.count ? pairs[first].0 : "?")" + (first < pairs.count ? pairs[first].1.describe(Array(path.dropFirst())).replacingOccurrences(of: "(root)", with: "") : "")
        default: return ""
        }
    }

    /// The value at `path`, changed by `change` (nil removes it from its parent).
    func updating(_ path: [Int], _ change: (J) -> J?) -> J? {
        guard let first = path.first else { return change(self) }
        let rest = Array(path.dropFirst())
        switch self {
        case .arr(var items):
            guard first < items.count else { return self }
            if let v = items[first].updating(rest, change) { items[first] = v } else { items.remove(at: first) }
            return .arr(items)
        case .obj(var pairs):
            guard first < pairs.count else { return self }
            if let v = pairs[first].1.updating(rest, change) { pairs[first].1 = v } else { pairs.remove(at: first) }
            return .obj(pairs)
        default:
            return self
        }
    }

    func value(at path: [Int]) -> J? {
        guard let first = path.first else { return self }
        switch self {
        case .arr(let items): return first < items.count ? items[first].value(at: Array(path.dropFirst())) : nil
        case .obj(let pairs): return first < pairs.count ? pairs[first].1.value(at: Array(path.dropFirst())) : nil
        default: return nil
        }
    }
}

// MARK: - The random source

struct Gen {
    var rng: SplitMix64

    init(seed: UInt64) { rng = SplitMix64(seed: seed) }

    mutating func next() -> UInt64 { rng.next() }
    mutating func below(_ n: Int) -> Int { n <= 1 ? 0 : Int(rng.next() % UInt64(n)) }
    mutating func chance(_ p: Double) -> Bool { Double(rng.next() >> 11) / 9_007_199_254_740_992.0 < p }
    mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
    mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }

    /// A weighted choice.
    mutating func weighted<T>(_ items: [(Int, T)]) -> T {
        var r = below(items.reduce(0) { $0 + $1.0 })
        for (w, v) in items { if r < w { return v }; r -= w }
        return items[items.count - 1].1
    }
}

// MARK: - Odd values

enum Odd {
    static let numbers = [
        "0", "-0", "-1", "1", "2", "3", "9223372036854775807", "-9223372036854775808", "9223372036854775808",
        "99999999999999999999", "4611686018427387904", "18446744073709551615", "18446744073709551616",
        "2147483648", "1e308", "-1e308", "1.7976931348623157e308", "1e-300", "5e-324", "-5e-324", "1.5",
        "-0.0", "0.1", "1e400", "-1e400", "1E2", "100",
    ]
    static let invalidTokens = ["NaN", "nan", "Infinity", "-Infinity", "inf", "undefined", "0x10", "01", "+1", ".5",
                                "1.", "--1", "1e", "tru", "nul", "'x'", "\"\\uD800\"", "\"\\u00\"", "\"\\x41\""]
    static let strings = [
        "", "nan", "inf", "-inf", "NaN", "Infinity", "1e308", "9223372036854775807", "-1", "1",
        "\u{1B}[2J\u{1B}[H\u{1B}[31mRED\u{1B}[0m", "\u{1B}]0;pwned\u{07}", "a\u{0}b", "\r\n\t\u{07}\u{08}\u{7F}",
        "../../../etc/passwd", "%00", "<script>alert(1)</script>", "\"'&<>", "é\u{202E}gnp.exe", "\u{FEFF}",
        "🙂", "x\u{0}", String(repeating: "x", count: 129), "fuzz-name", "Worker", "w1",
        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789ABCDEF",
    ]
    static let ids = ["0", "-1", "9223372036854775807", "9223372036854775808", "99999999999999999999", "1.0", "1e3",
                      "0x1", "%00", "..", "%2e%2e", "..%2F..%2Fetc%2Fpasswd", "abc", "%20", "+1", "-0",
                      "00000000000000000001", String(repeating: "1", count: 300), "%E2%80%AE", "%FF", "1%0A", "%1B%5B2J"]
    static let steps = ["0", "1", "2", "4", "-1", "9223372036854775807", "99999999999999999999", "1.5", "%00", "abc",
                        "-9223372036854775808", "00", "1e3", "%2e%2e"]
    static let headerNumbers = ["0", "1", "-1", "9223372036854775807", "9223372036854775808", "99999999999999999999",
                                "1e3", "", " 5", "0x10", "NaN", "1.5", "+7", "٣"]
}

// MARK: - Generating requests

extension Fuzzer {
    // MARK: Bodies

    func uniqueName() -> String {
        nameCounter += 1
        return "fz\(nameCounter)"
    }

    func validConfig(name: String? = nil) -> J {
        var fields: [(String, J)] = [("name", .str(name ?? uniqueName())), ("style_sha256", .str(styleSHA)), ("image_size", .int(32)),
              ("style_size", .int(32)), ("batch_size", .int(2)), ("steps", .int(4)), ("checkpoint_every", .int(2)),
              ("lr", .num(0.001)), ("seed", .int(42)), ("priority", .int(0)), ("max_attempts", .int(3))]
        // The coordinator serves dataset "fuzz" (the default); now and then a config names it, or another
        if gen.chance(0.15) { fields.append(("dataset", .str(gen.pick(["fuzz", "fuzz", "fuzz", "nope", "\u{1B}[2J"])))) }
        return .obj(fields)
    }

    func validSubmit() -> J { .obj([("jobs", .arr([validConfig()])), ("force", .lit("false"))]) }
    func validLease() -> J { .obj([("worker", .str("fuzzw")), ("host", .str("fuzz-host")), ("threads", .int(1))]) }

    func lossPoint(_ step: Int) -> J {
        .obj([("step", .int(step)), ("images", .int(2 * step)), ("content", .num(1.5)), ("style", .num(2.25)),
              ("total", .num(3.75))])
    }

    func validHeartbeat(token: String) -> J {
        let step = 1 + gen.below(4)
        return .obj([("token", .str(token)), ("step", .int(step)), ("images_done", .int(2 * step)),
                     ("images_per_s", .num(2.5)), ("steps_total", .int(4)), ("images_total", .int(8)),
                     ("loss_points", .arr([lossPoint(step)])), ("loss_network", .str("random-vgg seed 0"))])
    }

    func validComplete(token: String, model: String) -> J {
        .obj([("token", .str(token)), ("model_sha256", .str(model)), ("step", .int(4)), ("images_done", .int(8)),
              ("loss_points", .arr([lossPoint(4)]))])
    }

    func validFail(token: String) -> J {
        .obj([("token", .str(token)), ("reason", .str("fuzz failure")), ("retryable", .lit(gen.chance(0.5) ? "true" : "false"))])
    }

    func validRelease(token: String) -> J { .obj([("token", .str(token)), ("reason", .str("fuzz release"))]) }

    func oddValue() -> J {
        switch gen.below(20) {
        case 0..<8: return .lit(gen.pick(Odd.numbers))
        case 8..<13: return .str(gen.pick(Odd.strings))
        case 13: return .lit(gen.pick(["null", "true", "false"]))
        case 14: return gen.chance(0.5) ? .arr([]) : .obj([])
        case 15: return .obj([(gen.pick(Odd.strings), .lit(gen.pick(Odd.numbers))), ("__proto__", .obj([]))])
        case 16: return .str(String(repeating: gen.pick(["A", "\u{1B}", "é", "\\"]), count: gen.pick([1000, 1000, 100_000, 1_000_000])))
        case 17: return .lit(gen.pick(Odd.invalidTokens))
        case 18:
            var v = J.lit(gen.pick(Odd.numbers))
            for _ in 0..<(1 + gen.below(64)) { v = .arr([v]) }
            return v
        default: return gen.chance(0.5) ? .str(token) : .str(leases.last?.token ?? "0123456789abcdef0123456789abcdef")
        }
    }

    /// One to three random mutations of `doc`, with a description of each.
    func mutate(_ doc: J) -> (J, String) {
        var doc = doc
        var notes: [String] = []
        for _ in 0..<(1 + gen.below(3)) {
            var paths: [[Int]] = []
            doc.paths(into: &paths)
            let path = gen.pick(paths)
            let name = doc.describe(path)
            let parent = doc.value(at: Array(path.dropLast()))
            var isKey = false
            if case .obj = parent, !path.isEmpty { isKey = true }
            switch gen.below(12) {
            case 0..<6:
                let v = oddValue()
                doc = doc.updating(path) { _ in v } ?? doc
                notes.append("\(name) = \(String(v.text.prefix(80)))")
            case 6 where !path.isEmpty:
                doc = doc.updating(path) { _ in nil } ?? doc
                notes.append("\(name) removed")
            case 7:
                let key = gen.pick(["extra", "token", "step", "steps", "jobs", "", "\u{1B}", "images_per_s", "name", "worker"])
                let v = oddValue()
                doc = doc.updating(path) { j in
                    if case .obj(let pairs) = j { return .obj(pairs + [(key, v)]) }
                    if case .arr(let items) = j { return .arr(items + [v]) }
                    return j
                } ?? doc
                notes.append("\(name) += \(J.quote(key)): \(String(v.text.prefix(60)))")
            case 8:
                doc = doc.updating(path) { .arr([$0]) } ?? doc
                notes.append("\(name) wrapped in []")
            case 9:
                doc = doc.updating(path) { j in
                    switch j {
                    case .lit(let t): return .str(t)
                    case .str(let s): return .lit(s.isEmpty ? "0" : s)
                    case .arr(let items): return .obj(items.enumerated().map { ("\($0.offset)", $0.element) })
                    case .obj(let pairs): return .arr(pairs.map(\.1))
                    }
                } ?? doc
                notes.append("\(name) type changed")
            case 10:
                let n = gen.pick([2, 50, 300])
                doc = doc.updating(path) { j in
                    if case .arr(let items) = j, let first = items.first { return .arr(Array(repeating: first, count: n)) }
                    return .arr(Array(repeating: j, count: n))
                } ?? doc
                notes.append("\(name) repeated ×\(n)")
            default:
                if isKey, case .obj(let pairs) = parent, let last = path.last, last < pairs.count {
                    let dup = (pairs[last].0, oddValue())
                    doc = doc.updating(Array(path.dropLast())) { j in
                        if case .obj(let p) = j { return .obj(p + [dup]) }
                        return j
                    } ?? doc
                    notes.append("\(name) duplicated as \(String(dup.1.text.prefix(60)))")
                } else {
                    let v = oddValue()
                    doc = doc.updating(path) { _ in v } ?? doc
                    notes.append("\(name) = \(String(v.text.prefix(80)))")
                }
            }
        }
        return (doc, notes.joined(separator: ", "))
    }

    /// A JSON route's body: mostly `valid` mutated, sometimes valid as is, random bytes, deep
    /// nesting, another root type, empty, or broken text.
    func jsonBody(_ valid: J) -> ([UInt8], String) {
        // Bodies stay below 2 MiB (the 8 MiB limit has its own corpus item): a few tries, then valid.
        for _ in 0..<4 {
            let (body, note) = anyJSONBody(valid)
            if body.count <= 2 << 20 { return (body, note) }
        }
        return (Array(valid.text.utf8), "valid")
    }

    func anyJSONBody(_ valid: J) -> ([UInt8], String) {
        switch gen.weighted([(70, 0), (10, 1), (5, 2), (4, 3), (4, 4), (2, 5), (5, 6)]) {
        case 0:
            let (doc, note) = mutate(valid)
            return (Array(doc.text.utf8), "mutated: \(note)")
        case 1:
            return (Array(valid.text.utf8), "valid")
        case 2:
            return (gen.bytes(gen.pick([1, 17, 300, 5000, 70_000])), "random bytes")
        case 3:
            let depth = gen.pick([513, 10_000, 100_000])
            let open = gen.chance(0.5) ? "[" : "{\"a\":"
            let close = open == "[" ? "]" : "}"
            let inner = String(repeating: open, count: depth) + "1" + String(repeating: close, count: depth)
            return (Array(("{\"jobs\":" + inner + ",\"token\":" + inner + "}").utf8), "nested \(depth) deep (\(open))")
        case 4:
            return (Array(gen.pick(["[]", "null", "1", "\"x\"", "true", "[{}]", "{}", " ", "\u{FEFF}{}", "{}{}", "{\"a\":1}garbage"]).utf8),
                    "another root")
        case 5:
            return ([], "empty body")
        default:
            var text = Array(valid.text.utf8)
            let at = gen.below(text.count)
            switch gen.below(4) {
            case 0: text = Array(text.prefix(at)); return (text, "truncated at \(at)")
            case 1: text.insert(UInt8(truncatingIfNeeded: gen.next()), at: at); return (text, "a random byte inserted at \(at)")
            case 2: text[at] = gen.pick([0, 0x1B, 0x22, 0x5C, 0x7B, 0xFF]); return (text, "byte \(at) replaced")
            default: return (text + Array(",,,}".utf8), "trailing garbage")
            }
        }
    }

    // MARK: Auth, ids

    /// Authorization for one request: mostly the right token.
    func auth(_ method: String) -> ([(String, String)], String) {
        switch gen.weighted([(74, 0), (7, 1), (7, 2), (2, 3), (2, 4), (3, 5), (2, 6), (2, 7), (1, 8)]) {
        case 0: return ([("Authorization", "Bearer \(token)")], "right token")
        case 1: return ([], "no token")
        case 2: return ([("Authorization", "Bearer wrong-\(gen.next())")], "wrong token")
        case 3: return ([("Authorization", gen.pick(["Basic \(token)", "Bearer", "Bearer ", "bearer  \(token)  ", token, "Token \(token)"]))], "odd scheme")
        case 4: return ([("Authorization", "Bearer " + String(repeating: "t", count: gen.pick([1000, 60_000])))], "huge token")
        case 5:
            if let session = sessions.last, gen.chance(0.6) { return ([("Cookie", "nst_session=\(session)")], "session cookie (\(method))") }
            if let worker = workerTokens.last { return ([("Authorization", "Bearer \(worker)")], "worker token (\(method))") }
            return ([("Cookie", "nst_token=\(token)")], "old token cookie (\(method))")
        case 6:
            return ([("Cookie", gen.pick(["nst_session=wrong", "nst_session=%ZZ", "nst_session=", "a=b; nst_session=\(token)",
                                          "nst_session", "nst_session=" + String(repeating: "a", count: 4000), "nst_token=\(token)"]))],
                    "odd cookie")
        case 7: return ([("Authorization", "Bearer \(token)"), ("Authorization", "Bearer wrong")], "two Authorization headers")
        default: return ([("Authorization", "Bearer \(token)\u{1B}[0m")], "token with ESC")
        }
    }

    /// A job id for a path: the real lease's job, a known job, or something odd.
    func jobID(preferLease: Bool) -> String {
        if preferLease, let lease = leases.last, gen.chance(0.6) { return String(lease.job) }
        if gen.chance(0.55), !jobIDs.isEmpty { return String(gen.pick(jobIDs)) }
        if gen.chance(0.2) { return String(1 + gen.below(200)) }
        return gen.pick(Odd.ids)
    }

    /// A lease token for a body or header: the real one when there is one, else garbage.
    func leaseToken() -> (String, real: Bool) {
        if let lease = leases.last, gen.chance(0.7) { return (lease.token, true) }
        return (gen.pick(["", "0123456789abcdef0123456789abcdef", token, "x", String(repeating: "f", count: 32), "\u{1B}[2J",
                          String(repeating: "z", count: 10_000)]), false)
    }

    // MARK: Requests by route

    func plain(_ method: String, _ target: String, route: String, note: String, auth: Bool = true) -> FuzzRequest {
        FuzzRequest(route: route, note: note, method: method, target: target,
                    headers: auth ? [("Authorization", "Bearer \(token)")] : [])
    }

    func jsonRequest(_ method: String, _ target: String, route: String, body: [UInt8], note: String,
                     auth: ([(String, String)], String)? = nil, fuzzFraming: Bool = false) -> FuzzRequest {
        let (headers, authNote) = auth ?? ([("Authorization", "Bearer \(token)")], "right token")
        var r = FuzzRequest(route: route, note: "\(note); \(authNote)", method: method, target: target,
                            headers: headers + [("Content-Type", "application/json")], body: body)
        if fuzzFraming, gen.chance(0.06) { oddFraming(&r) }
        return r
    }

    /// Sometimes: no Content-Type, chunked, a wrong Content-Length, Expect: 100-continue.
    func oddFraming(_ r: inout FuzzRequest) {
        switch gen.below(6) {
        case 0: r.framing = .chunked; r.note += "; chunked"
        case 1: r.framing = .declared(String(max(0, r.body.count - 1 - gen.below(10)))); r.note += "; Content-Length too small"
        case 2: r.framing = .declared(String(r.body.count + 1 + gen.below(1000))); r.halfClose = true; r.note += "; Content-Length too large, then EOF"
        case 3: r.headers.append(("Expect", "100-continue")); r.note += "; Expect: 100-continue"
        case 4: r.headers.removeAll { $0.0 == "Content-Type" }; r.headers.append(("Content-Type", "text/plain; charset=\u{7F}x")); r.note += "; odd Content-Type"
        default: r.framing = .none; r.note += "; no Content-Length"
        }
    }

    func submitRequest(body: J, note: String) -> FuzzRequest {
        jsonRequest("POST", "/v1/jobs", route: "POST /v1/jobs", body: Array(body.text.utf8), note: note)
    }

    func leaseRequest(body: J, note: String) -> FuzzRequest {
        jsonRequest("POST", "/v1/lease", route: "POST /v1/lease", body: Array(body.text.utf8), note: note)
    }

    /// A report under a lease (heartbeat, complete, fail, release) with a fuzzed body.
    func reportRequest(_ verb: String) -> FuzzRequest {
        let lease = gen.chance(0.85) ? ensureLease() : nil
        let (tok, real) = lease.map { ($0.token, true) } ?? leaseToken()
        let id = lease.map { gen.chance(0.85) ? String($0.job) : jobID(preferLease: false) } ?? jobID(preferLease: true)
        let valid: J
        switch verb {
        case "heartbeat": valid = validHeartbeat(token: tok)
        case "complete":
            let model = uploadedModel?.sha ?? gen.pick(blobs).sha
            valid = validComplete(token: tok, model: model)
        case "fail": valid = validFail(token: tok)
        default: valid = validRelease(token: tok)
        }
        let (body, note) = jsonBody(valid)
        var r = jsonRequest("POST", "/v1/jobs/\(id)/\(verb)", route: "POST /v1/jobs/:id/\(verb)", body: body,
                            note: "\(real ? "real lease" : "no lease"); \(note)", auth: auth("POST"), fuzzFraming: true)
        r.leaseToken = real ? tok : nil
        return r
    }

    /// A checkpoint, model or preview upload under a lease, with odd headers.
    func uploadRequest(_ kind: String) -> FuzzRequest {
        let lease = gen.chance(0.85) ? ensureLease() : nil
        let (tok, real) = lease.map { ($0.token, true) } ?? leaseToken()
        let id = lease.map { gen.chance(0.85) ? String($0.job) : jobID(preferLease: false) } ?? jobID(preferLease: true)
        var blob = kind == "preview" && gen.chance(0.6) ? png! : gen.pick(blobs)
        var notes: [String] = [real ? "real lease" : "no lease"]
        var headers: [(String, String)] = []
        // The digest: mostly the body's.
        switch gen.weighted([(75, 0), (8, 1), (12, 2), (5, 3)]) {
        case 0: headers.append(("X-Content-SHA256", blob.sha))
        case 1: headers.append(("X-Content-SHA256", gen.pick(blobs).sha)); notes.append("maybe another body's digest")
        case 2:
            headers.append(("X-Content-SHA256", gen.pick([blob.sha.uppercased(), String(blob.sha.dropLast()), blob.sha + "0", "../../x",
                                                          "%00", "", String(repeating: "g", count: 64), " " + blob.sha])))
            notes.append("odd digest")
        default: notes.append("no digest")
        }
        switch gen.weighted([(80, 0), (8, 1), (7, 2), (5, 3)]) {
        case 0: headers.append(("X-Lease-Token", tok))
        case 1: headers.append(("X-Lease-Token", gen.pick(["", "garbage", token, String(repeating: "0", count: 32), "\u{00E9}"]))); notes.append("garbage lease token")
        case 2: headers.append(("X-Lease-Token", tok)); headers.append(("X-Lease-Token", "other")); notes.append("two lease tokens")
        default: notes.append("no lease token")
        }
        var target = "/v1/jobs/\(id)/model"
        var route = "PUT /v1/jobs/:id/model"
        switch kind {
        case "checkpoint":
            let step = gen.chance(0.6) ? String(1 + gen.below(4)) : gen.pick(Odd.steps)
            target = "/v1/jobs/\(id)/checkpoints/\(step)"
            route = "PUT /v1/jobs/:id/checkpoints/:step"
            if gen.chance(0.85) {
                let seen = gen.chance(0.6) ? String(2 + gen.below(8)) : gen.pick(Odd.headerNumbers)
                headers.append(("X-Images-Seen", seen))
            } else { notes.append("no X-Images-Seen") }
        case "preview":
            target = "/v1/jobs/\(id)/preview"
            route = "PUT /v1/jobs/:id/preview"
            if gen.chance(0.9) {
                headers.append(("X-Step", gen.chance(0.6) ? String(1 + gen.below(4)) : gen.pick(Odd.headerNumbers)))
            } else { notes.append("no X-Step") }
        default: break
        }
        if gen.chance(0.05) { blob = Blob(bytes: gen.bytes(gen.pick([1, 100, 10_000])), sha: blob.sha); notes.append("random body") }
        let (authHeaders, authNote) = auth("PUT")
        var r = FuzzRequest(route: route, note: (notes + [authNote]).joined(separator: "; "), method: "PUT", target: target,
                            headers: authHeaders + headers + [("Content-Type", "application/octet-stream")], body: blob.bytes)
        if gen.chance(0.12) { oddFraming(&r) }
        r.leaseToken = real ? tok : nil
        r.blob = blob
        return r
    }

    func artifactRequest(_ method: String) -> FuzzRequest {
        let blob = gen.pick(blobs)
        let sha: String
        var note: String
        switch gen.weighted([(55, 0), (15, 1), (30, 2)]) {
        case 0: sha = blob.sha; note = "the body's digest"
        case 1: sha = gen.pick(blobs).sha; note = "a pool digest"
        default:
            sha = gen.pick([blob.sha.uppercased(), String(blob.sha.prefix(63)), blob.sha + "a", "..", "..%2F..%2Fjobs.sqlite",
                            "%00", String(repeating: "0", count: 64), "abc", "%2e%2e%2fjobs.sqlite", String(repeating: "a", count: 5000)])
            note = "odd digest"
        }
        let (authHeaders, authNote) = auth(method)
        var r = FuzzRequest(route: "\(method) /v1/artifacts/:sha256", note: "\(note); \(authNote)", method: method,
                            target: "/v1/artifacts/\(sha)", headers: authHeaders)
        if method == "PUT" {
            r.body = gen.chance(0.9) ? blob.bytes : gen.bytes(gen.below(5000))
            if gen.chance(0.15) { oddFraming(&r) }
        }
        return r
    }

    func getJobRoute(_ suffix: String) -> FuzzRequest {
        let id = jobID(preferLease: false)
        var target = "/v1/jobs/\(id)\(suffix)"
        var headers: [(String, String)] = []
        var note = ""
        if suffix == "/losses", gen.chance(0.5) {
            target += "?format=" + gen.pick(["csv", "json", "", "xml", "%00", "csv&format=json", "CSV", String(repeating: "c", count: 3000)])
        }
        if suffix == "/preview" {
            if gen.chance(0.4) { headers.append(("If-None-Match", gen.pick(["\"\(png.sha)\"", "*", png.sha, "", "\"x\", W/\"y\""]))) }
            if gen.chance(0.3) { target += "?step=" + gen.pick(Odd.steps) }
        }
        let (authHeaders, authNote) = auth("GET")
        note = authNote
        let route = suffix.isEmpty ? "GET /v1/jobs/:id" : "GET /v1/jobs/:id\(suffix)"
        return FuzzRequest(route: route, note: note, method: "GET", target: target, headers: authHeaders + headers)
    }

    func adminRequest(_ verb: String) -> FuzzRequest {
        let id = jobID(preferLease: true)
        let (authHeaders, authNote) = auth("POST")
        var r = FuzzRequest(route: "POST /v1/jobs/:id/\(verb)", note: authNote, method: "POST", target: "/v1/jobs/\(id)/\(verb)",
                            headers: authHeaders)
        if gen.chance(0.3) { r.body = jsonBody(.obj([("reason", .str("x"))])).0; r.note += "; with a body" }
        return r
    }

    /// `GET /login`, `POST /login` (form bodies right and wrong, odd types and sizes), `POST /logout`.
    func loginRequest() -> FuzzRequest {
        switch gen.weighted([(15, 0), (35, 1), (25, 2), (10, 3), (15, 4)]) {
        case 0: return FuzzRequest(route: "GET /login", note: "the form", method: "GET", target: gen.pick(["/login", "/login?next=%00"]), headers: [])
        case 1:
            let value = gen.pick([token, "wrong", "", "%ZZ", "%00", String(repeating: "t", count: 5000), workerTokens.last ?? "nstw_x",
                                  token + "&token=wrong", "+" + token])
            let form = gen.chance(0.8) ? "token=" + value : gen.pick(["", "=", "&&", "token", "x=1&token=" + value, value])
            return FuzzRequest(route: "POST /login", note: "login form", method: "POST", target: "/login",
                               headers: [("Content-Type", gen.pick(["application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8"]))],
                               body: Array(form.utf8))
        case 2:
            let type = gen.pick(["application/json", "text/plain", "multipart/form-data; boundary=x", "", "application/x-www-form-urlencoded\u{1B}"])
            let body = gen.pick([Array("{\"token\":\"\(token)\"}".utf8), Array(repeating: UInt8(ascii: "a"), count: 9000), gen.bytes(200)])
            return FuzzRequest(route: "POST /login", note: "odd login body", method: "POST", target: "/login",
                               headers: type.isEmpty ? [] : [("Content-Type", type)], body: body)
        case 3:
            return FuzzRequest(route: "POST /login", note: "huge login form", method: "POST", target: "/login",
                               headers: [("Content-Type", "application/x-www-form-urlencoded")],
                               body: Array(("token=" + String(repeating: "x", count: 100_000)).utf8))
        default:
            let cookie = sessions.last.map { "nst_session=\($0)" } ?? "nst_session=none"
            return FuzzRequest(route: "POST /logout", note: "logout", method: "POST", target: "/logout",
                               headers: gen.chance(0.7) ? [("Cookie", cookie)] : [])
        }
    }

    /// `POST /v1/tokens` (valid and hostile bodies), `GET /v1/tokens`, `POST /v1/tokens/:id/revoke`.
    func tokensRequest() -> FuzzRequest {
        switch gen.weighted([(45, 0), (25, 1), (30, 2)]) {
        case 0:
            let valid = J.obj([("role", .str("worker")), ("name", .str("fuzz-\(gen.below(1000))"))])
            let (body, note) = jsonBody(valid)
            return jsonRequest("POST", "/v1/tokens", route: "POST /v1/tokens", body: body, note: note, auth: auth("POST"), fuzzFraming: true)
        case 1:
            let (h, n) = auth("GET")
            return FuzzRequest(route: "GET /v1/tokens", note: n, method: "GET", target: "/v1/tokens", headers: h)
        default:
            let id = gen.chance(0.5) ? String(1 + gen.below(5)) : gen.pick(Odd.ids)
            let (h, n) = auth("POST")
            return FuzzRequest(route: "POST /v1/tokens/:id/revoke", note: n, method: "POST", target: "/v1/tokens/\(id)/revoke", headers: h)
        }
    }

    /// `POST /v1/stylize` and the try-it page: real and broken photos, raw and multipart bodies,
    /// odd content types and boundaries, known and unknown style names (the styles' models are
    /// whatever the fuzzer uploaded: mostly not models at all).
    func stylizeRequest() -> FuzzRequest {
        let photo = gen.chance(0.6) ? png.bytes : gen.pick([[], gen.bytes(64), Array("GIF89a".utf8) + gen.bytes(32),
                                                           Array(png.bytes.prefix(40)), Array(repeating: 0x89, count: 3000)])
        let boundary = gen.pick(["b0undary", "x", String(repeating: "b", count: 80), "\"quoted\"", ""])
        var multipart = Array("--\(boundary)\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"p.png\"\r\n\r\n".utf8)
        multipart += photo + Array("\r\n--\(boundary)--\r\n".utf8)
        if gen.chance(0.2) { multipart = Array(multipart.prefix(gen.below(multipart.count + 1))) }
        switch gen.weighted([(35, 0), (35, 1), (15, 2), (15, 3)]) {
        case 0:
            let query = gen.pick(["", "?model=all", "?model=\(jobIDs.isEmpty ? "x" : "fz1")", "?model=nope", "?model=%00", "?model="])
            let (h, n) = auth("POST")
            return FuzzRequest(route: "POST /v1/stylize", note: "raw photo; \(n)", method: "POST", target: "/v1/stylize" + query,
                               headers: h + [("Content-Type", gen.pick(["image/png", "image/jpeg", "application/octet-stream"]))],
                               body: photo)
        case 1:
            let (h, n) = auth("POST")
            return FuzzRequest(route: "POST /v1/stylize", note: "multipart photo; \(n)", method: "POST", target: "/v1/stylize",
                               headers: h + [("Content-Type", "multipart/form-data; boundary=\(boundary)")], body: multipart)
        case 2:
            let (h, n) = auth("GET")
            return FuzzRequest(route: "GET /try", note: n, method: "GET", target: "/try", headers: h)
        default:
            let (h, n) = auth("POST")
            let site = gen.pick([[("Sec-Fetch-Site", "same-origin")], [("Sec-Fetch-Site", "cross-site")], [("Origin", "http://evil")], []])
            return FuzzRequest(route: "POST /try", note: "try-it form; \(n)", method: "POST", target: "/try",
                               headers: h + site + [("Content-Type", "multipart/form-data; boundary=\(boundary)")], body: multipart)
        }
    }

    func dashboardRequest() -> FuzzRequest {
        switch gen.weighted([(40, 0), (15, 1), (15, 2), (10, 3), (10, 4), (10, 5)]) {
        case 0: return plain("GET", "/", route: "GET /", note: "bearer token")
        case 1:
            return FuzzRequest(route: "GET /", note: "token cookie", method: "GET", target: "/",
                               headers: [("Cookie", "nst_token=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? token))])
        case 2:
            let q = gen.pick([token, "wrong", "", "%00", "%ZZ", String(repeating: "t", count: 5000), token + "&token=wrong", "%1B%5B2J"])
            return FuzzRequest(route: "GET /", note: "?token= link", method: "GET", target: "/?token=\(q)", headers: [])
        case 3: return FuzzRequest(route: "GET /", note: "no token", method: "GET", target: "/", headers: [])
        case 4:
            let (h, n) = auth("GET")
            return FuzzRequest(route: "GET /", note: n, method: "GET", target: gen.pick(["/", "/?", "/?a=b&c", "/#x", "/?token"]), headers: h)
        default:
            return FuzzRequest(route: "GET /", note: "HEAD on the dashboard", method: "HEAD", target: "/",
                               headers: [("Authorization", "Bearer \(token)")])
        }
    }

    /// A standard method on a route that does not take it, or an unknown path.
    func offRouteRequest() -> FuzzRequest {
        let method = gen.pick(["GET", "POST", "PUT", "HEAD", "DELETE", "PATCH", "OPTIONS", "TRACE"])
        let target = gen.pick(["/v1/jobs/1/heartbeat", "/v1/lease", "/v1/jobs/cancel-all", "/healthz", "/metrics", "/v1",
                               "/v1/", "/v1/jobs/", "/v1/jobs//model", "/v1/jobs/1/checkpoints", "/v1/jobs/1/checkpoints/",
                               "/v1/artifacts", "/v1/artifacts/", "/nope", "/v2/jobs", "//v1/jobs", "/v1/jobs/1/../../lease",
                               "/v1/jobs/%2F", "/v1/jobs/1/model/extra", "http://127.0.0.1/v1/jobs", "*", "/?x=" + String(repeating: "y", count: 6000),
                               "/" + String(repeating: "a/", count: 2000)])
        let (h, n) = auth(method)
        var r = FuzzRequest(route: "off-route", note: n, method: method, target: target, headers: h)
        if gen.chance(0.3) { r.body = gen.bytes(gen.below(200)) }
        return r
    }

    /// Not HTTP, or broken HTTP: an answer is welcome but not required; a 5xx or a crash is a finding.
    func malformedRequest() -> FuzzRequest {
        let auth = "Authorization: Bearer \(token)\r\n"
        let texts = [
            "GET / HTTP/9.9\r\n\r\n",
            "GET\r\n\r\n",
            "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Bad: \u{1B}[2J\r\n\r\n",
            "GET /v1/jobs HTTP/1.1\r\nHost x\r\n\r\n",
            "GET /v1/jobs HTTP/1.1\r\nBad Name: x\r\n\r\n",
            "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n folded: y\r\n\r\n",
            "GET /v1/jobs/\u{0}/model HTTP/1.1\r\nHost: x\r\n\r\n",
            "POST /v1/lease HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            "POST /v1/lease HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 5\r\nContent-Length: 6\r\n\r\n{}{}{}",
            "POST /v1/lease HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: -1\r\n\r\n{}",
            "POST /v1/lease HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 99999999999999999999\r\n\r\n{}",
            "POST /v1/lease HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
            "POST /v1/lease HTTP/1.1\r\nHost: x\r\n\(auth)Transfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFF\r\n{}\r\n0\r\n\r\n",
            "PUT /v1/artifacts/\(blobs[1].sha) HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 1073741825\r\n\r\nx",
            "GET /v1/jobs HTTP/1.1\nHost: x\n\(auth.replacingOccurrences(of: "\r\n", with: "\n"))\n",
            "\r\n\r\n\r\n",
            "GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Huge: \(String(repeating: "h", count: 200_000))\r\n\r\n",
            "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n" + String(repeating: "X-Many: y\r\n", count: 3000) + "\r\n",
            "GET /v1/jobs HTTP/1.1\r\nHost: x\r\n\(auth)\r\nGET /v1/jobs HTTP/1.1\r\nHost: x\r\n\(auth)\r\n",
            "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: x\r\n\r\n",
            "FOO /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
            "get /v1/jobs HTTP/1.1\r\nHost: x\r\n\r\n",
        ]
        switch gen.below(4) {
        case 0:
            let bytes = gen.bytes(gen.pick([1, 10, 100, 2000]))
            return FuzzRequest(route: "malformed HTTP", note: "random bytes", method: "-", target: "-", raw: bytes, halfClose: true)
        case 1:
            var bytes = Array("POST /v1/jobs/1/heartbeat HTTP/1.1\r\nHost: x\r\n\(auth)Content-Length: 40\r\n\r\n".utf8) + gen.bytes(40)
            let at = gen.below(bytes.count)
            bytes[at] = UInt8(truncatingIfNeeded: gen.next())
            return FuzzRequest(route: "malformed HTTP", note: "one byte changed at \(at)", method: "-", target: "-", raw: bytes, halfClose: true)
        default:
            let text = gen.pick(texts)
            return FuzzRequest(route: "malformed HTTP", note: "broken HTTP", method: "-", target: "-", raw: Array(text.utf8), halfClose: true)
        }
    }

    func nextRandomRequest() -> FuzzRequest {
        let kind = gen.weighted([
            (14, "heartbeat"), (8, "checkpoint"), (4, "model"), (5, "preview"), (6, "complete"), (5, "fail"),
            (4, "release"), (7, "lease"), (9, "submit"), (4, "artifact-put"), (2, "artifact-get"), (2, "artifact-head"),
            (3, "jobs"), (3, "detail"), (3, "losses"), (2, "model-get"), (2, "preview-get"), (2, "cancel"), (2, "retry"),
            (1, "cancel-all-maybe"), (3, "dashboard"), (2, "metrics"), (1, "healthz"), (3, "off-route"), (5, "malformed"),
            (3, "login"), (2, "tokens"), (3, "stylize"), (1, "datasets"), (2, "promote"),
        ])
        switch kind {
        case "heartbeat", "complete", "fail", "release": return reportRequest(kind)
        case "checkpoint", "model", "preview": return uploadRequest(kind)
        case "lease":
            let (body, note) = jsonBody(validLease())
            return jsonRequest("POST", "/v1/lease", route: "POST /v1/lease", body: body, note: note, auth: auth("POST"), fuzzFraming: true)
        case "submit":
            var valid = validSubmit()
            if gen.chance(0.3) {
                valid = .obj([("jobs", .arr((0..<(2 + gen.below(3))).map { _ in validConfig() })), ("force", .lit("true"))])
            }
            let (body, note) = jsonBody(valid)
            return jsonRequest("POST", "/v1/jobs", route: "POST /v1/jobs", body: body, note: note, auth: auth("POST"), fuzzFraming: true)
        case "artifact-put": return artifactRequest("PUT")
        case "artifact-get": return artifactRequest("GET")
        case "artifact-head": return artifactRequest("HEAD")
        case "jobs":
            let (h, n) = auth("GET")
            return FuzzRequest(route: "GET /v1/jobs", note: n, method: "GET", target: gen.pick(["/v1/jobs", "/v1/jobs?x=%00", "/v1/jobs?"]), headers: h)
        case "detail": return getJobRoute("")
        case "losses": return getJobRoute("/losses")
        case "model-get":
            if let done = finishedModels.last, gen.chance(0.5) {
                return plain("GET", "/v1/jobs/\(done.job)/model", route: "GET /v1/jobs/:id/model", note: "a succeeded job")
            }
            return getJobRoute("/model")
        case "preview-get": return getJobRoute("/preview")
        case "cancel": return adminRequest("cancel")
        case "retry": return adminRequest("retry")
        case "cancel-all-maybe":
            if gen.chance(0.3) {
                let (h, n) = auth("POST")
                return FuzzRequest(route: "POST /v1/jobs/cancel-all", note: n, method: "POST", target: "/v1/jobs/cancel-all", headers: h)
            }
            return adminRequest("retry")
        case "dashboard": return dashboardRequest()
        case "login": return loginRequest()
        case "tokens": return tokensRequest()
        case "stylize": return stylizeRequest()
        case "promote":
            // A succeeded job when one is known (it may have a final checkpoint), budgets and
            // names right and hostile (the JSON mutator adds the rest).
            let id = finishedModels.last.map { String($0.job) }.flatMap { gen.chance(0.6) ? $0 : nil } ?? jobID(preferLease: false)
            let budget = gen.pick(["1", "9", "100000", "9223372036854775807", "-1", "0", "1e300", "\"ten\""])
            let valid = J.obj([(gen.chance(0.8) ? "steps" : "epochs", .lit(budget)), ("name", .str("promoted-\(gen.below(1000))"))])
            let (body, note) = jsonBody(valid)
            return jsonRequest("POST", "/v1/jobs/\(id)/promote", route: "POST /v1/jobs/:id/promote", body: body, note: note,
                               auth: auth("POST"), fuzzFraming: true)
        case "datasets":
            let (h, n) = auth("GET")
            return FuzzRequest(route: "GET /v1/datasets", note: n, method: "GET", target: "/v1/datasets", headers: h)
        case "metrics":
            let (h, n) = auth("GET")
            return FuzzRequest(route: "GET /metrics", note: n, method: "GET", target: "/metrics", headers: h)
        case "healthz":
            return FuzzRequest(route: "GET /healthz", note: "", method: gen.chance(0.8) ? "GET" : "HEAD",
                               target: gen.pick(["/healthz", "/healthz?x=1"]), headers: gen.chance(0.5) ? [] : auth("GET").0)
        case "off-route": return offRouteRequest()
        default: return malformedRequest()
        }
    }
}

// MARK: - The seed corpus

extension Fuzzer {
    struct CorpusItem {
        var name: String
        /// Builds the requests at the time the item runs (it may need a fresh lease).
        var build: (Fuzzer) -> [FuzzRequest]
        /// Probe afterwards: `GET /v1/jobs`, `orchestrator status`, `GET /`.
        var probe = true
    }

    func heartbeat(_ lease: (job: Int64, token: String), _ fields: [(String, J)], note: String) -> FuzzRequest {
        var r = jsonRequest("POST", "/v1/jobs/\(lease.job)/heartbeat", route: "POST /v1/jobs/:id/heartbeat",
                            body: Array(J.obj([("token", .str(lease.token))] + fields).text.utf8), note: "corpus: \(note); real lease")
        r.leaseToken = lease.token
        return r
    }

    func checkpoint(_ lease: (job: Int64, token: String), step: String, seen: String, note: String) -> FuzzRequest {
        let blob = blobs[2]
        var r = FuzzRequest(route: "PUT /v1/jobs/:id/checkpoints/:step", note: "corpus: \(note); real lease", method: "PUT",
                            target: "/v1/jobs/\(lease.job)/checkpoints/\(step)",
                            headers: [("Authorization", "Bearer \(token)"), ("X-Lease-Token", lease.token),
                                      ("X-Content-SHA256", blob.sha), ("X-Images-Seen", seen)], body: blob.bytes)
        r.leaseToken = lease.token
        return r
    }

    /// Known-nasty requests, each run once early in the stream (with a fresh real lease where
    /// it needs one), then probed.
    func seedCorpus() -> [CorpusItem] {
        func leased(_ f: @escaping (Fuzzer, (job: Int64, token: String)) -> [FuzzRequest]) -> (Fuzzer) -> [FuzzRequest] {
            { fz in
                guard let lease = fz.freshLease() else { return [] }
                return f(fz, lease)
            }
        }
        let progress: [(String, J)] = [("step", .int(1)), ("images_done", .int(2)), ("steps_total", .int(4)), ("images_total", .int(8))]
        return [
            CorpusItem(name: "submit: steps 2^62 with batch_size 2") { fz in
                var config = fz.validConfig()
                if case .obj(var pairs) = config {
                    pairs = pairs.map { $0.0 == "steps" ? ("steps", .lit("4611686018427387904")) : $0 }
                    config = .obj(pairs)
                }
                return [fz.submitRequest(body: .obj([("jobs", .arr([config]))]), note: "corpus: steps 4611686018427387904")]
            },
            CorpusItem(name: "submit: extreme but valid numbers") { fz in
                let config = J.obj([("name", .str(fz.uniqueName())), ("style_sha256", .str(fz.styleSHA)),
                                    ("image_size", .lit("9223372036854775807")), ("style_size", .int(1)),
                                    ("batch_size", .lit("9223372036854775807")), ("steps", .int(1)),
                                    ("checkpoint_every", .lit("9223372036854775807")), ("lr", .lit("1e308")),
                                    ("content_weight", .lit("5e-324")), ("style_weight", .lit("-0")),
                                    ("seed", .lit("18446744073709551615")), ("priority", .lit("-9223372036854775808")),
                                    ("max_attempts", .lit("9223372036854775807")), ("max_images", .lit("9223372036854775807"))])
                return [fz.submitRequest(body: .obj([("jobs", .arr([config]))]), note: "corpus: extreme but valid numbers")]
            },
            CorpusItem(name: "heartbeat: images_per_s 1e-300 (ETA 1e302 s)", build: leased { fz, lease in
                [fz.heartbeat(lease, progress + [("images_per_s", .lit("1e-300"))], note: "images_per_s 1e-300")]
            }),
            CorpusItem(name: "heartbeat: a loss point at step Int.max", build: leased { fz, lease in
                [fz.heartbeat(lease, progress + [("loss_points", .arr([.obj([("step", .lit("9223372036854775807")), ("images", .int(2)),
                                                                             ("content", .num(1)), ("style", .num(2)), ("total", .num(3))])]))],
                              note: "loss point step 9223372036854775807")]
            }),
            CorpusItem(name: "heartbeat: losses of 1e308", build: leased { fz, lease in
                [fz.heartbeat(lease, progress + [("loss_points", .arr([.obj([("step", .int(1)), ("images", .int(2)),
                                                                             ("content", .lit("1e308")), ("style", .lit("1e308")), ("total", .lit("1e308"))])]))],
                              note: "losses 1e308")]
            }),
            CorpusItem(name: "heartbeat: totals -1e308 and 1e308", build: leased { fz, lease in
                [fz.heartbeat(lease, progress + [("loss_points", .arr([
                    .obj([("step", .int(1)), ("images", .int(2)), ("content", .num(1)), ("style", .num(1)), ("total", .lit("-1e308"))]),
                    .obj([("step", .int(2)), ("images", .int(4)), ("content", .num(1)), ("style", .num(1)), ("total", .lit("1e308"))]),
                ]))], note: "totals -1e308, 1e308")]
            }),
            CorpusItem(name: "heartbeat: NaN and inf as strings, negative counts", build: leased { fz, lease in
                [fz.heartbeat(lease, progress + [("images_per_s", .str("nan"))], note: "images_per_s \"nan\""),
                 fz.heartbeat(lease, progress + [("images_per_s", .str("inf"))], note: "images_per_s \"inf\""),
                 fz.heartbeat(lease, [("step", .int(-1)), ("images_done", .int(-1))], note: "negative step"),
                 fz.heartbeat(lease, progress + [("loss_points", .arr([.obj([("step", .int(1)), ("images", .int(2)),
                                                                             ("content", .str("nan")), ("style", .str("-inf")), ("total", .str("inf"))])]))],
                              note: "losses nan/-inf/inf"),
                 fz.heartbeat(lease, [("step", .lit("NaN")), ("images_done", .lit("-0"))], note: "step NaN (invalid JSON)")]
            }, probe: false),
            CorpusItem(name: "checkpoint: step Int.max, X-Images-Seen Int.max; then release and lease again", build: leased { fz, lease in
                var release = fz.jsonRequest("POST", "/v1/jobs/\(lease.job)/release", route: "POST /v1/jobs/:id/release",
                                             body: Array(fz.validRelease(token: lease.token).text.utf8), note: "corpus: release after the Int.max checkpoint")
                release.leaseToken = lease.token
                return [fz.checkpoint(lease, step: "9223372036854775807", seen: "9223372036854775807", note: "checkpoint step Int.max"),
                        release, fz.leaseRequest(body: fz.validLease(), note: "corpus: lease it again (resumes from the Int.max checkpoint?)")]
            }),
            CorpusItem(name: "checkpoint: absurd X-Images-Seen, odd steps", build: leased { fz, lease in
                ["-1", "99999999999999999999", "1e3", "", "0x10", "9223372036854775808"].map {
                    fz.checkpoint(lease, step: "2", seen: $0, note: "X-Images-Seen \"\($0)\"")
                } + ["99999999999999999999", "-1", "%00", "..%2F..", "1.5"].map {
                    fz.checkpoint(lease, step: $0, seen: "4", note: "step \"\($0)\"")
                }
            }, probe: false),
            CorpusItem(name: "fail: a reason with terminal escape sequences", build: leased { fz, lease in
                var r = fz.jsonRequest("POST", "/v1/jobs/\(lease.job)/fail", route: "POST /v1/jobs/:id/fail",
                                       body: Array(J.obj([("token", .str(lease.token)),
                                                          ("reason", .str("\u{1B}]0;pwned\u{07}\u{1B}[2J\u{1B}[H\u{1B}[31mFAKE OUTPUT\u{1B}[0m\r\n\u{0}")),
                                                          ("retryable", .lit("false"))]).text.utf8),
                                       note: "corpus: ESC sequences in the reason")
                r.leaseToken = lease.token
                return [r]
            }),
            CorpusItem(name: "lease: control characters in host, absurd threads") { fz in
                [fz.leaseRequest(body: .obj([("worker", .str("fuzzw2")), ("host", .str("\u{1B}[2J\u{1B}]0;x\u{07}" + String(repeating: "h", count: 100_000))),
                                             ("threads", .lit("9223372036854775807"))]), note: "corpus: ESC in host, threads Int.max"),
                 fz.leaseRequest(body: .obj([("worker", .str("\u{1B}[31mw")), ("host", .str("h")), ("threads", .int(-1))]),
                                 note: "corpus: ESC in worker, threads -1")]
            },
            CorpusItem(name: "deep nesting on every JSON route", build: { fz in
                let deep = "{\"jobs\":" + String(repeating: "[", count: 10_000) + String(repeating: "]", count: 10_000) + "}"
                let deepObj = String(repeating: "{\"a\":", count: 10_000) + "1" + String(repeating: "}", count: 10_000)
                let id = fz.leases.last?.job ?? 1
                return ["/v1/jobs", "/v1/lease", "/v1/jobs/\(id)/heartbeat", "/v1/jobs/\(id)/complete", "/v1/jobs/\(id)/fail",
                        "/v1/jobs/\(id)/release"].flatMap { target -> [FuzzRequest] in
                    let route = target.hasPrefix("/v1/jobs/") ? "POST /v1/jobs/:id/" + target.split(separator: "/").last! : "POST " + target
                    return [fz.jsonRequest("POST", target, route: route, body: Array(deep.utf8), note: "corpus: 10,000 nested arrays"),
                            fz.jsonRequest("POST", target, route: route, body: Array(deepObj.utf8), note: "corpus: 10,000 nested objects")]
                }
            }, probe: false),
            CorpusItem(name: "JSON bodies above the 8 MiB limit", build: { fz in
                let huge = Array(J.obj([("worker", .str("w")), ("host", .str(String(repeating: "h", count: 9 << 20))), ("threads", .int(1))]).text.utf8)
                var chunked = fz.jsonRequest("POST", "/v1/lease", route: "POST /v1/lease", body: huge, note: "corpus: 9 MiB body, chunked")
                chunked.framing = .chunked
                return [fz.jsonRequest("POST", "/v1/lease", route: "POST /v1/lease", body: huge, note: "corpus: 9 MiB body"), chunked]
            }, probe: false),
            CorpusItem(name: "odd ids on every :id route", build: { fz in
                let ids = ["0", "-1", "9223372036854775807", "99999999999999999999", "..", "%00", "%2e%2e%2f"]
                var out: [FuzzRequest] = []
                for id in ids {
                    for (method, suffix) in [("GET", ""), ("GET", "/losses"), ("GET", "/model"), ("GET", "/preview"), ("POST", "/cancel"),
                                             ("POST", "/retry"), ("POST", "/heartbeat"), ("PUT", "/checkpoints/1"), ("PUT", "/model"),
                                             ("PUT", "/preview"), ("POST", "/complete"), ("POST", "/fail"), ("POST", "/release")] {
                        let route = "\(method) /v1/jobs/:id" + (suffix == "/checkpoints/1" ? "/checkpoints/:step" : suffix)
                        var r = fz.plain(method, "/v1/jobs/\(id)\(suffix)", route: route, note: "corpus: id \(id)")
                        if method != "GET" { r.body = Array("{}".utf8) }
                        out.append(r)
                    }
                }
                return out
            }, probe: false),
            CorpusItem(name: "Content-Length mismatches on uploads", build: leased { fz, lease in
                let blob = fz.blobs[2]
                let headers: [(String, String)] = [("Authorization", "Bearer \(fz.token)"), ("X-Lease-Token", lease.token),
                                                   ("X-Content-SHA256", blob.sha), ("X-Images-Seen", "4"), ("X-Step", "1")]
                var out: [FuzzRequest] = []
                for (target, route) in [("/v1/artifacts/\(blob.sha)", "PUT /v1/artifacts/:sha256"),
                                        ("/v1/jobs/\(lease.job)/checkpoints/2", "PUT /v1/jobs/:id/checkpoints/:step"),
                                        ("/v1/jobs/\(lease.job)/model", "PUT /v1/jobs/:id/model")] {
                    var short = FuzzRequest(route: route, note: "corpus: Content-Length smaller than the body", method: "PUT",
                                            target: target, headers: headers, body: blob.bytes, framing: .declared(String(blob.bytes.count - 100)))
                    short.leaseToken = lease.token
                    var long = short
                    long.note = "corpus: Content-Length larger than the body, then EOF"
                    long.framing = .declared(String(blob.bytes.count + 100))
                    long.halfClose = true
                    var none = short
                    none.note = "corpus: no Content-Length (chunked)"
                    none.framing = .chunked
                    out += [short, long, none]
                }
                return out
            }, probe: false),
            CorpusItem(name: "bodies cut short on the login form, the try-it form and POST /v1/stylize", build: { fz in
                var out: [FuzzRequest] = []
                let form = Array("token=\(fz.token)".utf8)
                for (target, route, body, type) in [("/login", "POST /login", form, "application/x-www-form-urlencoded"),
                                                    ("/v1/stylize", "POST /v1/stylize", fz.png.bytes, "image/png"),
                                                    ("/try", "POST /try", fz.png.bytes, "multipart/form-data; boundary=b")] {
                    var long = FuzzRequest(route: route, note: "corpus: Content-Length larger than the body, then EOF", method: "POST",
                                           target: target, headers: [("Authorization", "Bearer \(fz.token)"), ("Content-Type", type)],
                                           body: body, framing: .declared(String(body.count + 100)))
                    long.halfClose = true
                    out.append(long)
                }
                return out
            }, probe: false),
            CorpusItem(name: "complete with Int.max progress; preview at step Int.max", build: leased { fz, lease in
                let model = fz.blobs[3]
                var put = FuzzRequest(route: "PUT /v1/jobs/:id/model", note: "corpus: the model", method: "PUT",
                                      target: "/v1/jobs/\(lease.job)/model",
                                      headers: [("Authorization", "Bearer \(fz.token)"), ("X-Lease-Token", lease.token),
                                                ("X-Content-SHA256", model.sha)], body: model.bytes)
                put.leaseToken = lease.token
                var preview = FuzzRequest(route: "PUT /v1/jobs/:id/preview", note: "corpus: preview X-Step Int.max", method: "PUT",
                                          target: "/v1/jobs/\(lease.job)/preview",
                                          headers: [("Authorization", "Bearer \(fz.token)"), ("X-Lease-Token", lease.token),
                                                    ("X-Content-SHA256", fz.png.sha), ("X-Step", "9223372036854775807")], body: fz.png.bytes)
                preview.leaseToken = lease.token
                var complete = fz.jsonRequest("POST", "/v1/jobs/\(lease.job)/complete", route: "POST /v1/jobs/:id/complete",
                                              body: Array(J.obj([("token", .str(lease.token)), ("model_sha256", .str(model.sha)),
                                                                 ("step", .lit("9223372036854775807")), ("images_done", .lit("9223372036854775807"))]).text.utf8),
                                              note: "corpus: complete at step Int.max")
                complete.leaseToken = lease.token
                return [put, preview, complete]
            }),
            CorpusItem(name: "no token, wrong token on every route", build: { fz in
                var out: [FuzzRequest] = []
                for route in Fuzzer.routes {
                    let parts = route.split(separator: " ")
                    let target = String(parts[1]).replacingOccurrences(of: ":id", with: "1").replacingOccurrences(of: ":step", with: "1")
                        .replacingOccurrences(of: ":sha256", with: fz.blobs[1].sha)
                    for header in [[], [("Authorization", "Bearer wrong")]] as [[(String, String)]] {
                        var r = FuzzRequest(route: route, note: header.isEmpty ? "corpus: no token" : "corpus: wrong token",
                                            method: String(parts[0]), target: target, headers: header)
                        if r.method == "POST" || r.method == "PUT" { r.body = Array("{}".utf8) }
                        out.append(r)
                    }
                }
                return out
            }, probe: false),
        ]
    }

    func runCorpusItem(_ item: CorpusItem) throws {
        let requests = item.build(self)
        if requests.isEmpty { notes.append("corpus item \"\(item.name)\" skipped: no lease"); return }
        var statuses: [String] = []
        var last: RawHTTP.Answer?
        for request in requests {
            let restartsBefore = restarts
            let answer = try send(request)
            statuses.append(answer.status.map(String.init) ?? "none")
            last = answer
            if restarts != restartsBefore { break }  // the coordinator was replaced: the rest is moot
        }
        var line = "corpus \"\(item.name)\": " + statuses.joined(separator: " ")
        if let last, let status = last.status, (200..<300).contains(status), !last.body.isEmpty {
            line += " — last answer: " + escapeForReport(last.body, limit: 400)
        }
        print(printable("fuzz: \(line)"))
        notes.append(line)
        guard item.probe else { return }
        let restartsBefore = restarts
        try send(plain("GET", "/v1/jobs", route: "GET /v1/jobs", note: "probe after \(item.name)"))
        guard restarts == restartsBefore else { return }
        let broken = try checkStatusCommand(after: "corpus item \"\(item.name)\"", restartIfBroken: false)
        guard restarts == restartsBefore else { return }
        try send(plain("GET", "/", route: "GET /", note: "probe after \(item.name)"))
        if broken, restarts == restartsBefore { try restart("`orchestrator status` fails on this state") }
    }
}
