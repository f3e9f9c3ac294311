import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore
import NIOCore

// MARK: - Leases and reports (workers)

/// The worker's side: lease, heartbeat, checkpoint and model uploads, complete, fail, release.
/// Every report carries the lease token; the store fences it (409 when stale).
struct LeasesController: Sendable {
    let core: CoordinatorCore

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.post("lease", use: lease)
        group.post("jobs/:id/heartbeat", use: heartbeat)
        group.put("jobs/:id/checkpoints/:step", use: uploadCheckpoint)
        group.put("jobs/:id/model", use: uploadModel)
        group.post("jobs/:id/complete", use: complete)
        group.post("jobs/:id/fail", use: fail)
        group.post("jobs/:id/release", use: release)
    }

    @Sendable func lease(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let body = try await request.decodeJSON(LeaseRequest.self, limit: core.config.maxJSONBytes)
        guard let lease = try await core.store.leaseNextJob(worker: body.worker, host: body.host, threads: body.threads,
                                                           leaseDuration: core.config.leaseSeconds,
                                                           credentialID: context.caller.workerCredentialID) else {
            return Response(status: .noContent)
        }
        let job = lease.job
        var dataset: DatasetRef?
        if let sha = job.config.datasetSHA256 {
            // The version the job pinned at submit, served or older (kept while the job can train).
            guard let version = try await core.store.datasetVersion(sha256: sha) else {
                let reason = "the coordinator no longer has version \(sha.prefix(12)) of dataset \(job.config.dataset ?? "?") that the job pins"
                _ = try await core.store.failJob(jobID: job.id, token: lease.token, reason: reason, retryable: false)
                core.logger.error("job \(job.id) (\(job.name)) failed at lease: \(reason)")
                return Response(status: .noContent)
            }
            dataset = version.ref
        }
        if case .job(let source)? = job.config.initSource, lease.checkpoint == nil, lease.initCandidates.isEmpty {
            // Submit checked it; its model has gone since (only a deleted job loses it).
            let reason = "init: job \(source) has no model to start from any more"
            _ = try await core.store.failJob(jobID: job.id, token: lease.token, reason: reason, retryable: false)
            core.logger.error("job \(job.id) (\(job.name)) failed at lease: \(reason)")
            return Response(status: .noContent)
        }
        core.logger.info("job \(job.id) (\(job.name)) leased to \(body.worker), attempt \(job.attempt) of \(job.maxAttempts), from step \(job.resumedFromStep)")
        return try json(LeaseResponse(jobID: job.id, config: job.config, token: lease.token,
                                      leaseSeconds: job.leaseSeconds ?? core.config.leaseSeconds,
                                      leaseExpiresAt: lease.expiresAt, attempt: job.attempt,
                                      checkpoint: lease.checkpoint.map(CheckpointInfo.init), vgg: core.config.lossNetwork,
                                      dataset: dataset, validation: lease.validation,
                                      best: lease.best.map(CheckpointInfo.init), initCandidates: lease.initCandidates))
    }

    @Sendable func heartbeat(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let body = try await request.decodeJSON(HeartbeatRequest.self, limit: core.config.maxJSONBytes)
        switch try await core.store.heartbeat(jobID: id, token: body.token, progress: body.progress,
                                              lossPoints: body.lossPoints, lossNetwork: body.lossNetwork,
                                              validation: body.validation, styleWeight: body.styleWeight,
                                              warmStart: body.warmStart) {
        case .continue(let expiry):
            core.metrics.heartbeat()
            return try json(HeartbeatResponse.continue(expiresAt: expiry))
        case .cancelled: return try json(HeartbeatResponse.cancel)
        }
    }

    @Sendable func uploadCheckpoint(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let stepText = context.parameters.get("step") ?? ""
        guard let step = Int(stepText), step >= 0 else {
            throw APIError.badRequest("checkpoint step must be a non-negative integer, got \"\(stepText.prefix(40))\"")
        }
        guard let seenText = request.headers[.imagesSeen], let seen = Int(seenText), seen >= 0 else {
            throw APIError.badRequest("X-Images-Seen must be a non-negative integer")
        }
        let (token, sha) = try await core.fencedUploadHeaders(request, jobID: id)
        let size = try await core.artifacts.ingest(request.body, expected: sha, contentLength: try request.contentLength(),
                                                   kind: .checkpoint)
        // The store fences again: a lease lost during the upload leaves the file unreferenced.
        try await core.store.recordCheckpoint(jobID: id, token: token, step: step, imagesSeen: seen, sha256: sha,
                                              size: size, path: try core.artifacts.relativePath(for: sha))
        core.metrics.uploaded(size, kind: .checkpoint)
        core.logger.info("job \(id): checkpoint at step \(step) (\(size) bytes)")
        return try json(UploadResponse(sha256: sha, size: size, step: step), status: .created)
    }

    @Sendable func uploadModel(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let (_, sha) = try await core.fencedUploadHeaders(request, jobID: id)
        let size = try await core.artifacts.ingest(request.body, expected: sha, contentLength: try request.contentLength(),
                                                   kind: .model)
        core.metrics.uploaded(size, kind: .model)
        return try json(UploadResponse(sha256: sha, size: size, step: nil), status: .created)
    }

    @Sendable func complete(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let body = try await request.decodeJSON(CompleteRequest.self, limit: core.config.maxJSONBytes)
        let sha = try ArtifactStore.checked(body.modelSHA256)
        guard let size = try core.artifacts.claim(sha) else {
            throw APIError.badRequest("model \(sha) has not been uploaded (PUT /v1/jobs/\(id)/model first)")
        }
        var progress: JobProgress?
        if let step = body.step, let images = body.imagesDone {
            progress = JobProgress(step: step, imagesDone: images)
        }
        let job = try await core.store.completeJob(jobID: id, token: body.token, modelSHA256: sha, modelSize: size,
                                                   finalProgress: progress, lossPoints: body.lossPoints ?? [],
                                                   validation: body.validation ?? [], bestStep: body.bestStep)
        core.logger.info("job \(id) (\(job.name)) succeeded at step \(job.step), model \(sha.prefix(12))")
        return try json(try await core.status(of: job))
    }

    @Sendable func fail(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let body = try await request.decodeJSON(FailRequest.self, limit: core.config.maxJSONBytes)
        let job = try await core.store.failJob(jobID: id, token: body.token, reason: body.reason, retryable: body.retryable)
        core.logger.warning("job \(id) (\(job.name)) reported failed (\(body.retryable ? "retryable" : "final")): \(Sanitize.oneLine(body.reason)) → \(job.state.rawValue)")
        return try json(try await core.status(of: job))
    }

    @Sendable func release(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let body = try await request.decodeJSON(ReleaseRequest.self, limit: core.config.maxJSONBytes)
        let job = try await core.store.releaseJob(jobID: id, token: body.token,
                                                  reason: body.reason ?? "released by worker")
        core.logger.info("job \(id) (\(job.name)) released by its worker: \(body.reason.map { Sanitize.oneLine($0) } ?? "no reason given")")
        return try json(try await core.status(of: job))
    }
}
