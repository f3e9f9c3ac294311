import APIClient
import ArgumentParser
import Coordinator
import CoordinatorAPI
import Foundation
import JobStore
import NSTModel

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the coordinator: the job table, the artifact store and the HTTP API workers pull jobs from.")

    @Option(help: "Address to listen on; anything but loopback needs a token.") var host = "127.0.0.1"
    @Option(help: "TCP port (0 picks a free one).") var port = 7000
    @Option(name: .customLong("state-dir"), help: "Where jobs.sqlite and the artifact store live.")
    var stateDir = "./orchestrator-state"
    @Option(name: .customLong("lease-timeout"), help: "Seconds a lease lasts without a heartbeat.")
    var leaseTimeout: Double = 60
    @Option(name: .customLong("token-file"), help: "File holding the bearer token (default: $ORCHESTRATOR_TOKEN).")
    var tokenFile: String?

    @Flag(name: .customLong("metrics-public"), help: "Serve /metrics without the token (for a Prometheus without bearer auth).")
    var metricsPublic = false
    @Option(name: .customLong("idle-timeout"), help: "Seconds before a connection without a request is closed.")
    var idleTimeout: Double = 75
    @Option(name: .customLong("session-hours"), help: "Hours a dashboard login lasts.")
    var sessionHours: Double = 12
    @Option(name: .customLong("try-concurrency"), help: "Photos the try-it page and POST /v1/stylize stylize at once (more wait, a few; the rest get 503).")
    var tryConcurrency = 1
    @Option(name: .customLong("vgg-weights"), help: "VGG16 weights to serve to workers that have none (default: $NST_VGG16_WEIGHTS, else torchvision's file in the torch hub cache, if there).")
    var vggWeights: String?
    @Option(name: .customLong("try-max-side"), help: "The try-it page shrinks photos to this longer side first.")
    var tryMaxSide = 1024
    @Option(name: .customLong("dataset"), parsing: .singleValue,
            help: ArgumentHelp("Serve the images of DIR as dataset NAME (repeatable; the first is the default for jobs that name none).",
                               valueName: "NAME=DIR"))
    var datasets: [String] = []
    @Option(name: .customLong("dataset-shard-bytes"),
            help: "Target size of a dataset's shards in bytes (another size makes another manifest version).")
    var datasetShardBytes: Int64 = 64 << 20

    @Option(name: .customLong("tls-cert"), help: "Serve HTTPS with this PEM certificate chain (see `orchestrator tls init`).")
    var tlsCert: String?
    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert.")
    var tlsKey: String?
    @Flag(name: .customLong("insecure-http"), help: "Allow plain HTTP on an address other than loopback (tokens then cross the network in cleartext).")
    var insecureHTTP = false

    /// --keep-checkpoints, --gc-interval, --max-store-bytes, --upload-timeout.
    @OptionGroup var storage: StorageOptions

    func validate() throws {
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535") }
        guard leaseTimeout.isFinite, leaseTimeout > 0 else { throw ValidationError("--lease-timeout must be positive") }
        guard idleTimeout.isFinite, idleTimeout > 0, idleTimeout <= 86_400 else {
            throw ValidationError("--idle-timeout must be from 0 to 86400 seconds")
        }
        guard sessionHours.isFinite, sessionHours > 0, sessionHours <= 24 * 366 else {
            throw ValidationError("--session-hours must be more than 0 and at most a year")
        }
        guard (1...64).contains(tryConcurrency) else { throw ValidationError("--try-concurrency must be from 1 to 64") }
        guard (16...8192).contains(tryMaxSide) else { throw ValidationError("--try-max-side must be from 16 to 8192") }
        guard !host.isEmpty else { throw ValidationError("--host must not be empty") }
        if (tlsCert == nil) != (tlsKey == nil) { throw ValidationError("--tls-cert and --tls-key go together") }
        _ = try DatasetSpec.parseAll(datasets)
        guard (1...DatasetLimits.shardBytes).contains(datasetShardBytes) else {
            throw ValidationError("--dataset-shard-bytes must be from 1 to \(DatasetLimits.shardBytes)")
        }
    }

    func run() async throws {
        let token: String?
        do { token = try CoordinatorDefaults.token(file: tokenFile) } catch { throw CLIError(error) }
        if token == nil, !CoordinatorConfig.isLoopback(host: host) {
            throw CLIError("refusing to listen on \(host) without a token: set ORCHESTRATOR_TOKEN or pass --token-file (or listen on 127.0.0.1)")
        }
        if tlsCert == nil, !insecureHTTP, !CoordinatorConfig.isLoopback(host: host) {
            throw CLIError("refusing to serve plain HTTP on \(host): the token would cross the network in cleartext; "
                           + "pass --tls-cert and --tls-key (`orchestrator tls init` makes them), or --insecure-http")
        }
        var config = CoordinatorConfig(host: host, port: port, stateDir: URL(fileURLWithPath: stateDir),
                                       token: token, leaseSeconds: leaseTimeout, metricsPublic: metricsPublic)
        config.idleTimeout = idleTimeout
        config.sessionLifetime = sessionHours * 3600
        config.stylize = ServeStylizer.function()
        // The loss network for workers without their own: given, or found where train finds it.
        if case .file(let path)? = try? VGGSource.resolve(path: vggWeights, random: false) {
            guard FileManager.default.isReadableFile(atPath: path) else { throw CLIError("cannot read the VGG16 weights \(path)") }
            config.vggWeightsFile = URL(fileURLWithPath: path)
        }
        config.stylizeLimits.concurrency = tryConcurrency
        config.stylizeLimits.maxSide = tryMaxSide
        if let tlsCert, let tlsKey { config.tls = .init(certificateChain: tlsCert, privateKey: tlsKey) }
        storage.apply(to: &config)
        // Built (or, for an unchanged folder, found through the scan cache) before listening.
        config.datasets = try ServeDatasets.build(try DatasetSpec.parseAll(datasets), config: config,
                                                  shardBytes: datasetShardBytes)
        let store: JobStore
        do { store = try JobStore(path: config.databasePath, leaseDuration: leaseTimeout) } catch { throw CLIError(error) }
        let dir = stateDir, scheme = tlsCert == nil ? "http" : "https"
        let auth = token == nil ? "no token (loopback only)" : "token required"
        do {
            try await runCoordinator(config, store: store) { address in
                printOut("coordinator listening on \(scheme)://\(address) (state in \(dir), \(auth))")
            }
        } catch {
            try? store.close()
            throw CLIError("coordinator stopped: \(error)")
        }
        try? store.close()
    }
}
