import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore
import NIOCore

// MARK: - /v1/jobs (CLI)

/// Submitting, listing, inspecting, cancelling and retrying jobs; losses and final models.
struct JobsController: Sendable {
    let core: CoordinatorCore

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.post(use: submit)
        group.get(use: list)
        group.post("cancel-all", use: cancelAll)
        group.get(":id", use: detail)
        group.get(":id/losses", use: losses)
        group.get(":id/model", use: model)
        group.post(":id/cancel", use: cancel)
        group.post(":id/retry", use: retry)
        group.post(":id/promote", use: promote)
    }

    @Sendable func submit(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let body = try await request.decodeJSON(SubmitRequest.self, limit: core.config.maxJSONBytes)
        guard !body.jobs.isEmpty else { throw APIError.badRequest("no jobs in the request") }
        var missing: [String] = []
        for (i, config) in body.jobs.enumerated() where JobConfig.isSHA256(config.styleSHA256) {
            // Claimed: the garbage collector keeps the file until the job row references it.
            if try core.artifacts.claim(config.styleSHA256) == nil {
                missing.append("jobs[\(i)] (\(config.name)): style image \(config.styleSHA256) is not in the artifact store")
            }
        }
        if !missing.isEmpty { throw APIError.badRequest(missing.joined(separator: "; ")) }
        let result = try await core.store.submitJobs(body.jobs, force: body.force ?? false)
        let skipped = result.skipped.isEmpty ? "" : ", skipped \(result.skipped) (already queued or running)"
        core.logger.info("submitted \(result.created.count) job(s) \(result.created)\(skipped)")
        return try json(SubmitResponse(created: result.created, skipped: result.skipped))
    }

    @Sendable func list(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let summaries = try await core.store.jobs()
        // Only the points the sparklines show, sampled in SQL (never whole curves).
        let samples = try await core.store.sampledLossPoints(count: JobStatus.recentTotalsCount)
        let statuses = summaries.map { summary in
            JobStatus(job: summary.job, latest: summary.latestLoss, totals: (samples[summary.job.id] ?? []).map(\.total))
        }
        let counts = try await core.store.counts()
        let totals = JobsResponse.Totals(
            queued: counts[.queued] ?? 0, running: counts[.running] ?? 0, succeeded: counts[.succeeded] ?? 0,
            failed: counts[.failed] ?? 0, cancelled: counts[.cancelled] ?? 0,
            imagesPerS: statuses.compactMap(\.imagesPerS).reduce(0, +))
        return try json(JobsResponse(jobs: statuses, totals: totals))
    }

    @Sendable func detail(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let job = try await core.requireJob(try context.jobID())
        let detail = JobDetail(job: try await core.status(of: job), config: job.config,
                               checkpoints: try await core.store.checkpoints(jobID: job.id).map(CheckpointInfo.init),
                               events: try await core.store.events(jobID: job.id).map(EventInfo.init),
                               validation: try await core.store.validationPoints(jobID: job.id))
        return try json(detail)
    }

    @Sendable func losses(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let job = try await core.requireJob(try context.jobID())
        let points = try await core.store.lossPoints(jobID: job.id)
        switch request.uri.queryParameters.get("format") {
        case nil, "json":
            return try json(LossesResponse(points: points))
        case "csv":
            let text = LossCSV.render(points)
            return Response(status: .ok,
                            headers: [.contentType: "text/csv; charset=utf-8", .contentLength: "\(text.utf8.count)"],
                            body: .init(byteBuffer: ByteBuffer(string: text)))
        case let other?:
            throw APIError.badRequest("unknown format \"\(other.prefix(20))\", expected json or csv")
        }
    }

    @Sendable func model(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let job = try await core.requireJob(try context.jobID())
        guard job.state == .succeeded, let sha = job.modelSHA256 else {
            throw APIError.notFound("job \(job.id) (\(job.name)) has no model: it is \(job.state.rawValue)")
        }
        return try await fileResponse(core: core, sha256: sha, request: request, context: context, what: "model", kind: .model)
    }

    @Sendable func cancel(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let job = try await core.store.cancelJob(id: try context.jobID())
        core.logger.info("job \(job.id) (\(job.name)) cancelled")
        return try json(try await core.status(of: job))
    }

    @Sendable func retry(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let job = try await core.store.retryJob(id: try context.jobID())
        core.logger.info("job \(job.id) (\(job.name)) queued again by retry")
        return try json(try await core.status(of: job))
    }

    @Sendable func promote(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        let body = try await request.decodeJSON(PromoteRequest.self, limit: core.config.maxJSONBytes)
        let job = try await core.store.promoteJob(id: id, name: body.name, steps: body.steps, epochs: body.epochs)
        core.logger.info("job \(job.id) (\(job.name)) queued: job \(id) promoted to \(job.config.steps.map { "\($0) steps" } ?? "\(job.config.epochs) epochs")")
        return try json(try await core.status(of: job))
    }

    @Sendable func cancelAll(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let ids = try await core.store.cancelAll()
        core.logger.info("cancelled \(ids.count) job(s) \(ids)")
        return try json(CancelAllResponse(cancelled: ids))
    }
}
