import Foundation

// MARK: - Upload kinds and their limits

/// What an upload stores: each kind has its own size limit (`UploadLimits`) and its own
/// `nst_uploaded_bytes_total{kind}` counter.
public enum UploadKind: String, Sendable, CaseIterable {
    /// A checkpoint: `PUT /v1/jobs/{id}/checkpoints/{step}`.
    case checkpoint
    /// A final model: `PUT /v1/jobs/{id}/model`.
    case model
    /// A preview PNG: `PUT /v1/jobs/{id}/preview`.
    case preview
    /// A style image (or any other content-addressed file): `PUT /v1/artifacts/{sha256}`.
    case artifact

    /// How an error message names it.
    var noun: String {
        switch self {
        case .checkpoint: return "checkpoints"
        case .model: return "models"
        case .preview: return "previews"
        case .artifact: return "style images and other artifacts"
        }
    }
}

/// The largest upload of each kind the coordinator accepts (413 above). A checkpoint holds a
/// TransformerNet's 1.7 M weights and their two Adam moments (about 20 MB), a model the weights
/// alone (about 7 MB); the defaults leave ample room and still bound what one request can store.
public struct UploadLimits: Sendable, Equatable {
    /// Style images and other artifacts (64 MiB).
    public var artifact: Int64 = 64 << 20
    /// Checkpoints (256 MiB).
    public var checkpoint: Int64 = 256 << 20
    /// Final models (256 MiB).
    public var model: Int64 = 256 << 20
    /// Preview PNGs (8 MiB: a small picture for the dashboard).
    public var preview: Int64 = 8 << 20

    public init() {}

    /// The limit for `kind`.
    public subscript(kind: UploadKind) -> Int64 {
        get {
            switch kind {
            case .artifact: return artifact
            case .checkpoint: return checkpoint
            case .model: return model
            case .preview: return preview
            }
        }
        set {
            switch kind {
            case .artifact: artifact = newValue
            case .checkpoint: checkpoint = newValue
            case .model: model = newValue
            case .preview: preview = newValue
            }
        }
    }
}

// MARK: - StoragePolicy

/// How the coordinator bounds and cleans its state directory: upload limits, the store quota,
/// the stalled-upload timeout, checkpoint retention and the garbage collector.
///
/// The collector's rule (docs/api.md, "Disk use and retention"): retention keeps the latest
/// `keepCheckpoints` checkpoints of a queued or running job, the latest one of a failed or
/// cancelled job (so that `retry` resumes from it), and none of a succeeded job (its model is
/// kept). A file under `artifacts/` is then deleted only when no row references it (a
/// checkpoint, a job's model, a job's latest preview, a job's style image) and either its
/// modification time is older than `gcGraceAge`, or it is the file of a checkpoint row that
/// retention dropped and no newer copy has been uploaded since that row was recorded. Every
/// upload writes a new file, and every check that precedes a new reference to an existing
/// file (`HEAD /v1/artifacts/…`, submit, complete) refreshes its modification time, so a file
/// about to be referenced is always younger than the grace age. Files in `tmp/` older than the
/// grace age (abandoned uploads) are deleted too.
public struct StoragePolicy: Sendable {
    /// Largest upload of each kind (413 above); `CoordinatorConfig.maxUploadBytes` caps them all.
    public var uploadLimits = UploadLimits()
    /// Total bytes the artifact store may hold (`serve --max-store-bytes`); an upload that
    /// would go past it is refused with 507. nil: no quota.
    public var maxStoreBytes: Int64?
    /// An upload that sends nothing for this long is cut (408) and its temporary file removed
    /// (`serve --upload-timeout`, 60 s).
    public var uploadTimeout: Duration = .seconds(60)
    /// Checkpoints kept per queued or running job (`serve --keep-checkpoints`, 2; at least 1).
    public var keepCheckpoints = 2
    /// How often the coordinator collects garbage (`serve --gc-interval`, 10 min); nil never.
    public var gcInterval: Duration? = .seconds(600)
    /// Unreferenced files younger than this are kept (1 hour): uploads about to be referenced.
    public var gcGraceAge: TimeInterval = 3600

    /// Test seam: called before each write and fsync of an upload with the bytes written so
    /// far; a non-nil errno makes that call fail as the file system would (ENOSPC, EDQUOT…).
    var writeFault: (@Sendable (_ offset: Int64) -> Int32?)?

    public init() {}
}
