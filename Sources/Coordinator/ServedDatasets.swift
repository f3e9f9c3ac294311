import CoordinatorAPI
import Foundation
import JobStore

// MARK: - Registering the served datasets

/// Why the served datasets could not be registered.
public enum ServedDatasetError: Error, CustomStringConvertible, Equatable {
    /// A manifest or shard is not in the artifact store (or has another size than the manifest says).
    case missingArtifact(dataset: String, sha256: String, what: String)

    public var description: String {
        switch self {
        case .missingArtifact(let dataset, let sha256, let what):
            return "dataset \(dataset): its \(what) \(sha256.prefix(12))… is not in the artifact store "
                + "(removed while the coordinator started?); start it again to rebuild the dataset"
        }
    }
}

/// Makes `config.datasets` the datasets the coordinator serves (`JobStore.registerDatasets`:
/// the first is the default; datasets served before and not now stop being current), after
/// checking that each manifest and shard is in the artifact store with its size. Called by
/// `runCoordinator` before it listens, also with no datasets (then none is served).
///
/// Every file is claimed first (its modification time set to now), so that a garbage
/// collection running beside (`orchestrator gc`) cannot delete a file an unchanged folder
/// reused before the registration references it; they are checked again afterwards.
@discardableResult
public func registerServedDatasets(_ config: CoordinatorConfig, store: JobStore) async throws -> [DatasetRegistration] {
    let artifacts = ArtifactStore(config: config)
    func check(_ claimed: Bool) throws {
        for dataset in config.datasets {
            let files = [(dataset.ref.sha256, dataset.ref.size, "manifest")]
                + dataset.shards.enumerated().map { ($1.sha256, $1.size, "shard \($0)") }
            for (sha, size, what) in files {
                let found = claimed ? try artifacts.claim(sha) : try artifacts.size(of: sha)
                guard found == size else {
                    throw ServedDatasetError.missingArtifact(dataset: dataset.ref.name, sha256: sha, what: what)
                }
            }
        }
    }
    try check(true)
    let registered = try await store.registerDatasets(config.datasets)
    try check(false)
    return registered
}
