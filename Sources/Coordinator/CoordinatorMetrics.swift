import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore
import Metrics
import class Prometheus.PrometheusCollectorRegistry
import struct Prometheus.PrometheusMetricsFactory

// MARK: - CoordinatorMetrics

/// The coordinator's Prometheus metrics, through swift-metrics objects made by a factory over
/// this instance's own `PrometheusCollectorRegistry` (never the process-wide
/// `MetricsSystem`, so that several coordinators — the tests build many — keep separate counts).
///
/// - `nst_jobs{state}` and `nst_worker_images_per_second{worker}` are gauges refreshed from the
///   store at each scrape (the speed is the one the worker's last heartbeat reported; 0 for a
///   known worker without a running job).
/// - `nst_leases_granted_total` and `nst_lease_expiries_total` follow the store's `leased` and
///   `expired` events (a lease expires inside several verbs and the reaper; the events see
///   them all), so they count since the database was created and survive a restart.
/// - `nst_heartbeats_total`, `nst_uploaded_bytes_total{kind}` and
///   `nst_http_requests_total{method,route,status}` count in this process.
final class CoordinatorMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let factory: PrometheusMetricsFactory
    private let jobs: [JobState: Gauge]
    private let heartbeats: Counter
    private let leasesGranted: Counter
    private let leaseExpiries: Counter
    /// Event counts already added to the counters above.
    private let synced = Locked([EventKind: Int]())

    private let uploaded: [UploadKind: Counter]
    private let served: [ServedKind: Counter]

    init() {
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        jobs = Dictionary(uniqueKeysWithValues: JobState.allCases.map {
            ($0, Gauge(label: "nst_jobs", dimensions: [("state", $0.rawValue)], factory: factory))
        })
        heartbeats = Counter(label: "nst_heartbeats_total", factory: factory)
        leasesGranted = Counter(label: "nst_leases_granted_total", factory: factory)
        leaseExpiries = Counter(label: "nst_lease_expiries_total", factory: factory)
        uploaded = Dictionary(uniqueKeysWithValues: UploadKind.allCases.map {
            ($0, Counter(label: "nst_uploaded_bytes_total", dimensions: [("kind", $0.rawValue)], factory: factory))
        })
        served = Dictionary(uniqueKeysWithValues: ServedKind.allCases.map {
            ($0, Counter(label: "nst_served_bytes_total", dimensions: [("kind", $0.rawValue)], factory: factory))
        })
    }

    // MARK: - Recording

    /// A heartbeat was accepted (the speed it reported is in the job row, read at scrape time).
    func heartbeat() {
        heartbeats.increment()
    }

    /// `bytes` were stored by an upload of `kind`.
    func uploaded(_ bytes: Int64, kind: UploadKind) {
        uploaded[kind]?.increment(by: Int(bytes))
    }

    /// `bytes` of a stored file of `kind` are being sent (a whole file or a requested range).
    func served(_ bytes: Int64, kind: ServedKind) {
        served[kind]?.increment(by: Int(bytes))
    }

    /// One HTTP request answered.
    func request(method: String, route: String, status: Int) {
        Counter(label: "nst_http_requests_total",
                dimensions: [("method", method), ("route", route), ("status", String(status))],
                factory: factory).increment()
    }

    private func workerSpeed(_ worker: String) -> Gauge {
        Gauge(label: "nst_worker_images_per_second", dimensions: [("worker", worker)], factory: factory)
    }

    // MARK: - Scrape

    /// Brings the gauges and the event-derived counters up to date with the store.
    func refresh(from store: JobStore) async throws {
        for (state, n) in try await store.counts() { jobs[state]?.record(n) }
        var speed: [String: Double] = [:]
        for worker in try await store.workers() { speed[worker.name] = 0 }
        for summary in try await store.jobs() where summary.job.state == .running {
            if let owner = summary.job.leaseOwner { speed[owner, default: 0] += summary.job.imagesPerS ?? 0 }
        }
        for (worker, value) in speed { workerSpeed(worker).record(value) }

        let counts = try await store.eventCounts()
        let deltas: [(Counter, Int)] = synced.withLockedValue { last in
            [(EventKind.leased, leasesGranted), (.expired, leaseExpiries)].compactMap { kind, counter in
                let now = counts[kind] ?? 0, before = last[kind] ?? 0
                guard now > before else { return nil }
                last[kind] = now
                return (counter, now - before)
            }
        }
        for (counter, delta) in deltas { counter.increment(by: delta) }
    }

    /// The Prometheus text exposition (format 0.0.4), with a `# HELP` line before each family.
    func exposition() -> String {
        var out = ""
        for line in registry.emitToString().split(separator: "\n", omittingEmptySubsequences: true) {
            if line.hasPrefix("# TYPE ") {
                let name = line.dropFirst(7).prefix { $0 != " " }
                if let help = Self.help[String(name)] { out += "# HELP \(name) \(help)\n" }
            }
            out += line + "\n"
        }
        return out
    }

    static let help: [String: String] = [
        "nst_jobs": "Jobs by state.",
        "nst_worker_images_per_second": "Training speed last reported by each worker (0 when idle).",
        "nst_leases_granted_total": "Leases handed to workers.",
        "nst_lease_expiries_total": "Leases that expired without a heartbeat.",
        "nst_heartbeats_total": "Heartbeats accepted.",
        "nst_uploaded_bytes_total": "Bytes stored by uploads, by kind.",
        "nst_served_bytes_total": "Bytes of stored files sent to clients (whole files and ranges), by kind.",
        "nst_http_requests_total": "HTTP requests answered, by method, route and status.",
    ]
}

// MARK: - Lock

/// A value behind a lock.
final class Locked<Value>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value

    init(_ value: Value) { self.value = value }

    func withLockedValue<T>(_ body: (inout Value) throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body(&value)
    }
}

// MARK: - Middleware

/// Counts every answered request by method, matched route pattern (`/v1/jobs/{id}`, never the
/// raw path, so the number of series stays small) and status. Added first, so it sees the
/// statuses the error middleware produces.
struct RequestMetricsMiddleware<Context: RequestContext>: RouterMiddleware {
    let metrics: CoordinatorMetrics

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            let response = try await next(request, context)
            metrics.request(method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
                            status: response.status.code)
            return response
        } catch let error as any HTTPResponseError {
            metrics.request(method: request.method.rawValue, route: context.endpointPath ?? "unmatched",
                            status: error.status.code)
            throw error
        }
    }
}

/// What a download sent, for `nst_served_bytes_total{kind}`. `dataset` is kept for the shards
/// the coordinator will serve (issue 13) so that dashboards can rely on the series.
enum ServedKind: String, CaseIterable, Sendable {
    case dataset, weights, style, checkpoint, model, artifact
}
