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
        return try await fileResponse(core: core, sha256: sha, request: request, context: context, what: "artifact",
                                      kind: try await servedKind(sha))
    }

    /// What the artifact is, for the metric: the served VGG16 weights, a dataset's manifest or
    /// shard (served now or an older version a job pins), a checkpoint, a style image, or
    /// something else.
    func servedKind(_ sha: String) async throws -> ServedKind {
        if sha == core.config.lossNetwork?.sha256 { return .weights }
        if core.datasetArtifacts.contains(sha) { return .dataset }
        switch try await core.store.artifactRole(sha256: sha) {
        case "dataset": return .dataset
        case "checkpoint": return .checkpoint
        case "style": return .style
        case "model": return .model
        default: return .artifact
        }
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

/// The stored file `sha256` streamed from disk (never held in memory), with
/// `X-Content-SHA256` and `Accept-Ranges: bytes`; 404 if absent. A single `Range: bytes=a-b`,
/// `a-` or `-n` is answered `206` with `Content-Range` (so that a cut download resumes), one
/// that starts past the end `416`; anything else in `Range` is ignored (the whole file, as RFC
/// 9110 allows). Counts the bytes sent as `kind` in `nst_served_bytes_total`.
func fileResponse(core: CoordinatorCore, sha256: String, request: Request, context: CoordinatorContext,
                  what: String, kind: ServedKind) async throws -> Response {
    guard let size = try core.artifacts.size(of: sha256) else {
        throw APIError.notFound("\(what) \(sha256) not found")
    }
    let path = try core.artifacts.url(for: sha256).path
    var headers: HTTPFields = [.contentType: "application/octet-stream", .contentSHA256: sha256, .acceptRanges: "bytes"]
    switch ByteRange.parse(request.headers[.range], size: size) {
    case .whole:
        headers[.contentLength] = "\(size)"
        core.metrics.served(size, kind: kind)
        let body = size == 0 ? ResponseBody() : try await FileIO().loadFile(path: path, context: context)
        return Response(status: .ok, headers: headers, body: body)
    case .part(let range):
        headers[.contentLength] = "\(range.count)"
        headers[.contentRange] = "bytes \(range.lowerBound)-\(range.upperBound)/\(size)"
        core.metrics.served(Int64(range.count), kind: kind)
        let body = try await FileIO().loadFile(path: path, range: Int(range.lowerBound)...Int(range.upperBound), context: context)
        return Response(status: .partialContent, headers: headers, body: body)
    case .unsatisfiable:
        return Response(status: .rangeNotSatisfiable, headers: [.contentRange: "bytes */\(size)", .contentLength: "0"])
    }
}

/// One `Range: bytes=…` of a file of `size` bytes.
enum ByteRange: Equatable {
    case whole
    case part(ClosedRange<Int64>)
    case unsatisfiable

    static func parse(_ header: String?, size: Int64) -> ByteRange {
        guard let header, header.hasPrefix("bytes="), !header.contains(",") else { return .whole }
        let spec = header.dropFirst("bytes=".count).trimmingCharacters(in: .whitespaces)
        guard let dash = spec.firstIndex(of: "-") else { return .whole }
        let first = spec[..<dash], last = spec[spec.index(after: dash)...]
        if first.isEmpty {  // the last n bytes
            guard let n = Int64(last), n > 0 else { return .whole }
            return size == 0 ? .unsatisfiable : .part(max(0, size - n)...(size - 1))
        }
        guard let start = Int64(first), start >= 0 else { return .whole }
        guard start < size else { return .unsatisfiable }
        if last.isEmpty { return .part(start...(size - 1)) }
        guard let end = Int64(last), end >= start else { return .whole }
        return .part(start...min(end, size - 1))
    }
}
