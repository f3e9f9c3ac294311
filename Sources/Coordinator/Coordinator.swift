import CoordinatorAPI
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import JobStore
import Logging
import NIOCore
import NIOSSL
import ServiceLifecycle

// MARK: - Builder

/// Builds the coordinator: the HTTP API of docs/api.md over `store`, with the artifact store
/// in `config.stateDir`, credentials (`Auth.swift`) when `config.token` is set, a background lease
/// reaper and, every `config.storage.gcInterval`, a garbage collector. One builder serves the
/// executable (`runService()`) and the tests (`app.test(.router)`).
///
/// Prepares the state directory first (creates `artifacts/` and `tmp/`, empties `tmp/`).
/// - Parameters:
///   - onServerRunning: called once listening, with the server channel (its `localAddress`
///     tells the port when `config.port` is 0).
public func buildCoordinator(
    _ config: CoordinatorConfig, store: JobStore, logger: Logger? = nil,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) throws -> some ApplicationProtocol {
    let logger = logger ?? Logger(label: "coordinator")
    let artifacts = ArtifactStore(config: config)
    try artifacts.prepare()
    let core = CoordinatorCore(store: store, artifacts: artifacts, config: config, logger: logger,
                               metrics: CoordinatorMetrics())

    let auth = config.token.map {
        Authenticator(admin: TokenCheck(token: $0), store: store, cache: core.credentials,
                      sessions: SessionStore(lifetime: config.sessionLifetime, clock: store.clock))
    }

    let router = Router(context: CoordinatorContext.self)
    // Middlewares apply to the routes added after them: request counts and errors everywhere,
    // credentials after /healthz and the dashboard's pages (which check them themselves, to
    // redirect a browser to the login form) — and after /metrics when `metricsPublic`.
    router.add(middleware: RequestMetricsMiddleware(metrics: core.metrics))
    router.add(middleware: ErrorMiddleware(logger: logger))
    router.get("/healthz") { _, _ in try json(Health(ok: true, version: 1)) }
    DashboardController(core: core, auth: auth).addRoutes(to: router)
    TryItController(core: core, auth: auth).addRoutes(to: router)
    if config.metricsPublic { router.get("/metrics", use: core.metricsResponse) }
    if let auth {
        router.add(middleware: AuthMiddleware(auth: auth, store: store, served: config.servedArtifacts))
    }
    if !config.metricsPublic { router.get("/metrics", use: core.metricsResponse) }
    ArtifactsController(core: core).addRoutes(to: router.group("v1/artifacts"))
    JobsController(core: core).addRoutes(to: router.group("v1/jobs"))
    PreviewsController(core: core).addRoutes(to: router.group("v1/jobs"))
    LeasesController(core: core).addRoutes(to: router.group("v1"))
    TokensController(core: core).addRoutes(to: router.group("v1/tokens"))
    DatasetsController(core: core).addRoutes(to: router.group("v1/datasets"))
    StylizeController(core: core).addRoutes(to: router.group("v1/stylize"))

    let idle = config.idleTimeout.isFinite && config.idleTimeout > 0 ? config.idleTimeout : 75
    let http1 = HTTPServerBuilder.http1(configuration: .init(idleTimeout: .nanoseconds(Int64(min(idle, 86_400) * 1e9))))
    let server = try config.tls.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: try serverTLS($0)) } ?? http1
    var app = Application(
        router: router,
        server: server,
        configuration: .init(address: .hostname(config.host, port: config.port), serverName: "nst-coordinator"),
        onServerRunning: onServerRunning,
        logger: logger
    )
    app.addServices(LeaseReaper(store: store, interval: config.reapInterval, logger: logger))
    if let every = config.storage.gcInterval {
        app.addServices(GarbageCollectorService(collector: GarbageCollector(store: store, artifacts: artifacts, policy: config.storage),
                                                interval: every, logger: logger))
    }
    return app
}

/// Builds the coordinator and runs it until SIGINT or SIGTERM, then shuts down gracefully
/// (in-flight requests finish). `onListening` gets the bound address (`host:port`) once the
/// server accepts connections.
public func runCoordinator(_ config: CoordinatorConfig, store: JobStore, logger: Logger? = nil,
                           onListening: @escaping @Sendable (String) -> Void = { _ in }) async throws {
    // The time this coordinator was down is not the workers' fault: every running lease gets a
    // full period from now before it can expire (a worker that died meanwhile is noticed then).
    let extended = try await store.grantGrace()
    let log = logger ?? Logger(label: "coordinator")
    if extended > 0 {
        log.info("\(extended) running lease(s) given a full lease period of grace after the restart")
    }
    var config = config
    if let file = config.vggWeightsFile {
        let artifacts = ArtifactStore(config: config)
        try artifacts.prepare()
        let weights = try artifacts.adopt(file: file)
        try await store.pinArtifact(weights.sha256, as: "VGG16 weights")
        config.lossNetwork = weights
        log.info("serving the VGG16 weights \(file.lastPathComponent) (\(weights.sha256.prefix(12)), \(weights.size) bytes) to workers without their own")
    }
    // Always, also with none: a dataset served before and not now stops being current.
    for (i, r) in try await registerServedDatasets(config, store: store).enumerated() {
        let v = r.version
        var text = "serving dataset \(v.name) (manifest \(v.sha256.prefix(12)), \(v.files) files, \(v.shards) shards)"
        if i == 0 { text += ", the default" }
        if let old = r.replaced {
            text += "; a new version: the previous one (\(old.prefix(12))) stays while jobs that can still train pin it"
        }
        log.info("\(text)")
    }
    let fallback = "\(config.host):\(config.port)"
    let app = try buildCoordinator(config, store: store, logger: logger) { channel in
        onListening(channel.localAddress.map(describeAddress) ?? fallback)
    }
    try await app.runService()
}

/// `host:port`, or `[v6]:port`.
func describeAddress(_ address: SocketAddress) -> String {
    let ip = address.ipAddress ?? "?"
    let port = address.port ?? 0
    return ip.contains(":") ? "[\(ip)]:\(port)" : "\(ip):\(port)"
}

extension CoordinatorConfig {
    /// True for `localhost`, `127.x.y.z` and `::1`: addresses other machines cannot reach,
    /// where serving without a token is allowed.
    public static func isLoopback(host: String) -> Bool {
        let h = host.trimmingCharacters(in: CharacterSet(charactersIn: "[]")).lowercased()
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        return parts.count == 4 && parts.allSatisfy { UInt8($0) != nil } && parts[0] == "127"
    }
}

/// What every controller needs.
struct CoordinatorCore: Sendable {
    let store: JobStore
    let artifacts: ArtifactStore
    let config: CoordinatorConfig
    let logger: Logger
    let metrics: CoordinatorMetrics
    /// The manifests and shards of the served datasets (`config.datasets`).
    let datasetArtifacts: Set<String>
    /// Worker credentials already looked up, by token digest (revoking one forgets it).
    let credentials = CredentialCache()

    init(store: JobStore, artifacts: ArtifactStore, config: CoordinatorConfig, logger: Logger, metrics: CoordinatorMetrics) {
        self.store = store
        self.artifacts = artifacts
        self.config = config
        self.logger = logger
        self.metrics = metrics
        datasetArtifacts = Set(config.datasets.flatMap(\.artifacts))
    }

    /// The API view of `job`, with its loss curve.
    func status(of job: Job) async throws -> JobStatus {
        let points = try await store.lossPoints(jobID: job.id)
        return JobStatus(job: job, latest: points.last, totals: points.map(\.total))
    }

    /// The job, or a 404.
    func requireJob(_ id: Int64) async throws -> Job {
        guard let job = try await store.job(id: id) else { throw APIError(StoreError.notFound(jobID: id)) }
        return job
    }

    /// The lease token and digest of an upload for `jobID`, after a first fencing check (so a
    /// stale worker's upload is refused before a byte is stored): 404 unknown job, 409 when
    /// the token does not hold the running job, 400 on missing headers.
    func fencedUploadHeaders(_ request: Request, jobID: Int64) async throws -> (token: String, sha256: String) {
        guard let token = request.headers[.leaseToken], !token.isEmpty else {
            throw APIError.badRequest("X-Lease-Token header is required")
        }
        guard let shaText = request.headers[.contentSHA256] else {
            throw APIError.badRequest("X-Content-SHA256 header is required")
        }
        let sha = try ArtifactStore.checked(shaText)
        let job = try await requireJob(jobID)
        guard job.state == .running, constantTimeEqual(job.leaseToken, token) else {
            throw APIError(StoreError.staleLease(jobID: jobID, reason: job.state == .running
                ? "the lease token is not the job's current one" : "the job is \(job.state.rawValue)"))
        }
        return (token, sha)
    }

    /// `GET /metrics`: the Prometheus text exposition, refreshed from the store first.
    @Sendable func metricsResponse(_ request: Request, context: CoordinatorContext) async throws -> Response {
        try await metrics.refresh(from: store)
        let text = metrics.exposition()
        return Response(status: .ok,
                        headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8",
                                  .contentLength: "\(text.utf8.count)"],
                        body: .init(byteBuffer: ByteBuffer(string: text)))
    }
}

// MARK: - Background services

/// Runs `body` every `interval` until the task is cancelled or the application shuts down
/// gracefully (the loop of the lease reaper and of the garbage collector).
func repeatEvery(_ interval: Duration, _ body: @escaping @Sendable () async -> Void) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            try? await Task.sleep(for: interval)
            if Task.isCancelled { break }
            await body()
        }
    }
}

/// Expires overdue leases every `interval`, so that the table stays current while no worker
/// talks to the coordinator (leasing and reports also expire on the way).
struct LeaseReaper: Service {
    let store: JobStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let (store, logger) = (store, logger)
        await repeatEvery(interval) {
            do {
                for lease in try await store.expireLeases() {
                    logger.warning("job \(lease.jobID) (\(lease.name)): \(lease.reason) → \(lease.newState.rawValue)")
                }
            } catch {
                logger.error("lease reaper: \(error)")
            }
        }
    }
}

// MARK: - TLS

/// What the coordinator's TLS files say when they cannot be used.
public struct TLSSetupError: Error, CustomStringConvertible {
    public let description: String
}

/// The server side of TLS 1.2+ from PEM files, with a clear error naming the file.
func serverTLS(_ files: CoordinatorConfig.TLSFiles) throws -> TLSConfiguration {
    let chain: [NIOSSLCertificate]
    do { chain = try NIOSSLCertificate.fromPEMFile(files.certificateChain) } catch {
        throw TLSSetupError(description: "cannot read the TLS certificate \(files.certificateChain): \(error)")
    }
    if chain.isEmpty { throw TLSSetupError(description: "no certificate in \(files.certificateChain)") }
    let key: NIOSSLPrivateKey
    do { key = try NIOSSLPrivateKey(file: files.privateKey, format: .pem) } catch {
        throw TLSSetupError(description: "cannot read the TLS private key \(files.privateKey): \(error)")
    }
    var tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) },
                                                       privateKey: .privateKey(key))
    tls.minimumTLSVersion = .tlsv12
    return tls
}
