import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore

// MARK: - What a worker token may do

/// The routes a worker token may call, and what it must hold for each. Everything else is
/// 403: deny by default, so a new route is closed to workers until listed here.
enum WorkerScope {
    /// What a route needs from a worker token.
    enum Need: Sendable {
        /// Nothing more (taking a lease).
        case nothing
        /// The job in `{id}` must be leased by this token (its current or last lease).
        case heldJob
        /// The artifact in `{sha256}` must be the style image, a checkpoint, or the dataset
        /// manifest or a shard of a running job this token holds, or what the coordinator
        /// serves every worker (VGG16 weights, the served datasets' manifests and shards).
        case neededArtifact
    }

    /// `METHOD endpoint` (Hummingbird's endpoint path, parameters as `{name}`) → need.
    static let routes: [String: Need] = [
        "POST /v1/lease": .nothing,
        "POST /v1/jobs/{id}/heartbeat": .heldJob,
        "PUT /v1/jobs/{id}/checkpoints/{step}": .heldJob,
        "PUT /v1/jobs/{id}/model": .heldJob,
        "PUT /v1/jobs/{id}/preview": .heldJob,
        "POST /v1/jobs/{id}/complete": .heldJob,
        "POST /v1/jobs/{id}/fail": .heldJob,
        "POST /v1/jobs/{id}/release": .heldJob,
        "GET /v1/artifacts/{sha256}": .neededArtifact,
    ]

    /// Throws 403 with the reason unless `credential` may make this request.
    static func authorize(_ request: Request, context: CoordinatorContext, credential: CredentialRecord,
                          store: JobStore, served: Set<String> = []) async throws {
        let route = "\(request.method) \(context.endpointPath ?? request.uri.path)"
        let who = "worker token \(credential.id) (\(credential.name))"
        guard let need = routes[route] else {
            throw APIError(.forbidden, "\(who) may only lease jobs and report on its own leases, not \(request.method) \(request.uri.path.prefix(80))")
        }
        switch need {
        case .nothing:
            return
        case .heldJob:
            guard let text = context.parameters.get("id"), let id = Int64(text) else { return }  // the route answers 400
            guard let holder = try await store.leaseCredential(jobID: id) else { return }  // the route answers 404
            guard holder == credential.id else {
                throw APIError(.forbidden, "\(who) does not hold the lease of job \(id)")
            }
        case .neededArtifact:
            let sha = context.parameters.get("sha256") ?? ""
            if served.contains(sha) { return }
            guard try await store.artifactNeeded(sha256: sha.lowercased(), byCredential: credential.id) else {
                throw APIError(.forbidden, "\(who) may download only the style image, checkpoints and dataset of a job it holds, and what the coordinator serves every worker")
            }
        }
    }
}
