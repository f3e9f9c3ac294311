import ArgumentParser
import Coordinator
import CoordinatorAPI
import Foundation

// MARK: - Retention

/// `--keep-checkpoints K`, shared by `serve` (its periodic collection) and `gc`.
struct RetentionOptions: ParsableArguments {
    @Option(name: .customLong("keep-checkpoints"),
            help: "Checkpoints kept per queued or running job (failed and cancelled jobs keep their latest, succeeded jobs only their model).")
    var keepCheckpoints = 2

    func validate() throws {
        guard keepCheckpoints >= 1 else {
            throw ValidationError("--keep-checkpoints must be at least 1 (a job resumes from its latest checkpoint)")
        }
    }
}

// MARK: - serve's storage flags

/// The flags of `serve` that bound and clean its state directory (`StoragePolicy`).
struct StorageOptions: ParsableArguments {
    @OptionGroup var retention: RetentionOptions

    @Option(name: .customLong("gc-interval"), help: "Seconds between garbage collections (0: never).")
    var gcInterval: Double = 600

    @Option(name: .customLong("max-store-bytes"),
            help: "Quota of the artifact store, in bytes or with a binary suffix (500M, 20G); uploads past it get 507 (default: none).")
    var maxStoreBytes: ByteCount?

    @Option(name: .customLong("upload-timeout"), help: "Seconds an upload may send nothing before it is cut (408).")
    var uploadTimeout: Double = 60

    /// Longest accepted `--gc-interval`: 30 days.
    static let maxInterval: Double = 30 * 86_400

    func validate() throws {
        guard gcInterval.isFinite, gcInterval >= 0, gcInterval <= Self.maxInterval else {
            throw ValidationError("--gc-interval must be from 0 to \(Int(Self.maxInterval)) seconds")
        }
        let grace = StoragePolicy().gcGraceAge
        guard uploadTimeout.isFinite, uploadTimeout > 0, uploadTimeout < grace else {
            throw ValidationError("--upload-timeout must be positive and below the garbage collector's grace age of \(Int(grace)) seconds")
        }
    }

    /// Sets `config.storage` from the flags (after `validate()`).
    func apply(to config: inout CoordinatorConfig) {
        config.storage.keepCheckpoints = retention.keepCheckpoints
        config.storage.gcInterval = gcInterval > 0 ? .milliseconds(Int64((gcInterval * 1000).rounded())) : nil
        config.storage.maxStoreBytes = maxStoreBytes?.bytes
        config.storage.uploadTimeout = .milliseconds(Int64((uploadTimeout * 1000).rounded()))
    }
}

// MARK: - Byte counts

/// `ByteCount` (CoordinatorAPI) as an option value.
extension ByteCount: ExpressibleByArgument {
    public init?(argument: String) { self.init(argument) }
}
