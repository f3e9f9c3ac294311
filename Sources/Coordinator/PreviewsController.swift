import CoordinatorAPI
import Foundation
import HTTPTypes
import Hummingbird
import JobStore
import NIOCore

// MARK: - /v1/jobs/{id}/preview

/// The latest preview of each job: a PNG the worker renders through a checkpoint, uploaded
/// under its lease (`PUT`), shown by the dashboard (`GET`).
struct PreviewsController: Sendable {
    let core: CoordinatorCore

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.put(":id/preview", use: upload)
        group.get(":id/preview", use: download)
    }

    /// `PUT`: streamed into the artifact store like a checkpoint (checksum, length, the token
    /// checked before and after), refused (400) unless it starts like a PNG, then recorded.
    @Sendable func upload(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let id = try context.jobID()
        guard let stepText = request.headers[.step], let step = Int(stepText), step >= 0 else {
            throw APIError.badRequest("X-Step must be a non-negative integer")
        }
        let (token, sha) = try await core.fencedUploadHeaders(request, jobID: id)
        let size = try await core.artifacts.ingest(PNGCheckedBody(base: request.body), expected: sha,
                                                   contentLength: try request.contentLength(),
                                                   kind: .preview)
        core.metrics.uploaded(size, kind: .preview)
        try await core.store.recordPreview(jobID: id, token: token, step: step, sha256: sha)
        core.logger.debug("job \(id): preview at step \(step) (\(size) bytes)")
        return try json(UploadResponse(sha256: sha, size: size, step: step), status: .created)
    }

    /// `GET`: the latest preview as `image/png`, with `X-Step`; `304` when `If-None-Match`
    /// names it already; `404` when the job has none.
    @Sendable func download(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let job = try await core.requireJob(try context.jobID())
        guard let sha = job.previewSHA256, let size = try core.artifacts.size(of: sha) else {
            throw APIError.notFound("job \(job.id) (\(job.name)) has no preview yet")
        }
        var headers: HTTPFields = [.contentSHA256: sha, .eTag: "\"\(sha)\"", .cacheControl: "private, no-cache"]
        if let step = job.previewStep { headers[.step] = "\(step)" }
        if let tags = request.headers[.ifNoneMatch], tags.contains(sha) {
            return Response(status: .notModified, headers: headers)
        }
        headers[.contentType] = "image/png"
        headers[.contentLength] = "\(size)"
        let body = try await FileIO().loadFile(path: try core.artifacts.url(for: sha).path, context: context)
        return Response(status: .ok, headers: headers, body: body)
    }
}

extension HTTPField.Name {
    /// The training step a preview shows.
    static let step = HTTPField.Name(APIHeader.step)!
}

// MARK: - PNG check

/// An upload body passed through unchanged, except that it throws a 400 as soon as its first
/// 16 bytes are not the PNG signature followed by an `IHDR` chunk header (or the body ends
/// before them), so a preview that no browser could show is never stored.
struct PNGCheckedBody<Base: AsyncSequence>: AsyncSequence where Base.Element == ByteBuffer {
    typealias Element = ByteBuffer
    let base: Base

    /// `\x89PNG\r\n\x1a\n`, then the IHDR chunk: length 13, type `IHDR`.
    static var expectedHead: [UInt8] {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13] + Array("IHDR".utf8)
    }

    struct AsyncIterator: AsyncIteratorProtocol {
        var base: Base.AsyncIterator
        var head: [UInt8] = []
        var checked = false

        mutating func next() async throws -> ByteBuffer? {
            let expected = PNGCheckedBody.expectedHead
            guard let buffer = try await base.next() else {
                if !checked { throw Self.notPNG("the body ends after \(head.count) bytes") }
                return nil
            }
            if !checked {
                head += buffer.readableBytesView.prefix(expected.count - head.count)
                if head.count == expected.count {
                    guard head == expected else { throw Self.notPNG("it does not start with a PNG signature and IHDR chunk") }
                    checked = true
                }
            }
            return buffer
        }

        static func notPNG(_ why: String) -> APIError {
            APIError.badRequest("a preview must be a PNG image: \(why)")
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(base: base.makeAsyncIterator()) }
}

extension PNGCheckedBody: Sendable where Base: Sendable {}
