import CoordinatorAPI
import Foundation
import Hummingbird
import NIOCore

// MARK: - /v1/artifacts

/// `PUT`, `GET` and `HEAD /v1/artifacts/{sha256}`: the content-addressed store.
struct ArtifactsController: Sendable {
    let core: CoordinatorCore

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.put(":sha256", use: upload)
        group.get(":sha256", use: download)
        group.head(":sha256", use: exists)
    }

    @Sendable func upload(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let sha = try ArtifactStore.checked(context.parameters.get("sha256") ?? "")
        let size = try await core.artifacts.ingest(request.body, expected: sha, contentLength: try request.contentLength(),
                                                   kind: .artifact)
        core.metrics.uploaded(size, kind: .artifact)
        return try json(UploadResponse(sha256: sha, size: size, step: nil), status: .created)
    }

    @Sendable func download(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let sha = try ArtifactStore.checked(context.parameters.get("sha256") ?? "")
        return try await fileResponse(core: core, sha256: sha, context: context, what: "artifact")
    }

    @Sendable func exists(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let sha = try ArtifactStore.checked(context.parameters.get("sha256") ?? "")
        // A client that finds the file here will reference it without uploading: claim it.
        guard let size = try core.artifacts.claim(sha) else {
            return Response(status: .notFound, headers: [.contentLength: "0"])
        }
        return Response(status: .ok, headers: [.contentLength: "\(size)", .contentSHA256: sha,
                                               .contentType: "application/octet-stream"])
    }
}

/// The stored file `sha256` streamed from disk, with `X-Content-SHA256`; 404 if absent.
func fileResponse(core: CoordinatorCore, sha256: String, context: CoordinatorContext,
                  what: String) async throws -> Response {
    guard let size = try core.artifacts.size(of: sha256) else {
        throw APIError.notFound("\(what) \(sha256) not found")
    }
    let path = try core.artifacts.url(for: sha256).path
    let body = size == 0 ? ResponseBody() : try await FileIO().loadFile(path: path, context: context)
    return Response(status: .ok,
                    headers: [.contentType: "application/octet-stream", .contentLength: "\(size)",
                              .contentSHA256: sha256],
                    body: body)
}
