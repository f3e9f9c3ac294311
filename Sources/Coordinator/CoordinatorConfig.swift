import CoordinatorAPI
import Foundation
import JobStore

// MARK: - CoordinatorConfig

/// How a coordinator runs: where it listens, where it keeps its state, and its limits.
///
/// The state directory holds `jobs.sqlite` (the JobStore), `artifacts/` (the content-addressed
/// store: `artifacts/ab/abcdef…`, named by SHA-256) and `tmp/` (uploads in progress, emptied
/// at start).
public struct CoordinatorConfig: Sendable {
    /// The address to bind (`127.0.0.1` by default).
    public var host: String
    /// The TCP port (7000 by default; 0 picks a free one).
    public var port: Int
    /// The state directory.
    public var stateDir: URL
    /// The admin token: every right, and the key that makes worker tokens. With a token every
    /// endpoint but `/healthz` and the login form needs a credential; nil accepts any request.
    public var token: String?
    /// How long a dashboard login lasts (`serve --session-hours`).
    public var sessionLifetime: TimeInterval = 12 * 3600
    /// Stylizes photos for the try-it page and `POST /v1/stylize` (`orchestrator serve` gives
    /// one built on NSTModel); nil answers those 503.
    public var stylize: StylizeFunction?
    /// Upload size, photo size and concurrency of that stylizing.
    public var stylizeLimits = StylizeLimits()
    /// VGG16 weights to serve to workers that have none (`serve --vgg-weights`): copied into the
    /// artifact store at start, pinned, and named in every lease.
    public var vggWeightsFile: URL?
    /// The served VGG16 weights once in the store (`runCoordinator` sets it from
    /// `vggWeightsFile`); leases name it, and worker tokens may download it.
    public var lossNetwork: WeightsInfo?
    /// The datasets to serve (`serve --dataset NAME=DIR`, built into the artifact store before
    /// the coordinator starts), the default first. `runCoordinator` registers them in the store
    /// (`registerServedDatasets`); submit pins jobs to their current manifests, leases name the
    /// manifest a job pins, and worker tokens may download their manifests and shards.
    public var datasets: [ServedDataset] = []
    /// Lease length granted to workers.
    public var leaseSeconds: TimeInterval
    /// Largest upload of any kind accepted (413 above); each kind also has its own, smaller
    /// limit in `storage.uploadLimits`.
    public var maxUploadBytes: Int64
    /// Upload limits per kind, the store quota, the upload timeout, checkpoint retention and
    /// the garbage collector (`StoragePolicy`).
    public var storage = StoragePolicy()
    /// Largest JSON request body accepted (413 above).
    public var maxJSONBytes: Int
    /// How often the background reaper expires overdue leases.
    public var reapInterval: Duration
    /// Serve `GET /metrics` without the token (`orchestrator serve --metrics-public`), for a
    /// Prometheus that cannot send `Authorization: Bearer`. Off by default: the metrics name
    /// workers and jobs.
    public var metricsPublic: Bool
    /// A connection with no request for this long is closed (`serve --idle-timeout`), so that
    /// idle or abandoned clients cannot hold connections open for ever.
    public var idleTimeout: TimeInterval = 75
    /// Serve HTTPS with this certificate chain and private key (PEM files; `serve --tls-cert`,
    /// `--tls-key`); plain HTTP when nil.
    public var tls: TLSFiles?

    /// A PEM certificate chain and its private key.
    public struct TLSFiles: Sendable, Equatable {
        public var certificateChain: String
        public var privateKey: String
        public init(certificateChain: String, privateKey: String) {
            self.certificateChain = certificateChain
            self.privateKey = privateKey
        }
    }

    public init(host: String = "127.0.0.1", port: Int = 7000, stateDir: URL, token: String? = nil,
                leaseSeconds: TimeInterval = 60, maxUploadBytes: Int64 = 1 << 30,
                maxJSONBytes: Int = 8 << 20, reapInterval: Duration = .seconds(1),
                metricsPublic: Bool = false) {
        self.host = host
        self.port = port
        self.stateDir = stateDir
        self.token = token
        self.leaseSeconds = leaseSeconds
        self.maxUploadBytes = maxUploadBytes
        self.maxJSONBytes = maxJSONBytes
        self.reapInterval = reapInterval
        self.metricsPublic = metricsPublic
    }

    /// `STATE/jobs.sqlite`, the file to open the JobStore on.
    public var databasePath: String { stateDir.appendingPathComponent("jobs.sqlite").path }
    /// `STATE/artifacts`.
    public var artifactsDir: URL { stateDir.appendingPathComponent("artifacts", isDirectory: true) }
    /// `STATE/tmp`.
    public var tmpDir: URL { stateDir.appendingPathComponent("tmp", isDirectory: true) }
    /// `STATE/dataset-cache`: the scan caches of the served datasets' folders.
    public var datasetCacheDir: URL { stateDir.appendingPathComponent("dataset-cache", isDirectory: true) }

    /// What every worker token may download: the served VGG16 weights and the manifests and
    /// shards of the served datasets.
    public var servedArtifacts: Set<String> {
        Set((lossNetwork.map { [$0.sha256] } ?? []) + datasets.flatMap(\.artifacts))
    }
}
