import CoordinatorAPI
import Foundation
import Hummingbird
import NIOCore

// MARK: - POST /v1/stylize (admin)

/// A photo through the finished styles, for scripts: a raw JPEG/PNG body or a multipart form;
/// `?model=NAME` answers that style's PNG, no `model` (or `all`) a JSON list of every style's.
struct StylizeController: Sendable {
    let core: CoordinatorCore
    let desk: StylizeDesk

    init(core: CoordinatorCore) {
        self.core = core
        desk = StylizeDesk(core: core)
    }

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.post(use: stylize)
    }

    @Sendable func stylize(_ request: Request, context: CoordinatorContext) async throws -> Response {
        let name = request.uri.queryParameters.get("model")
        let styles = try await desk.choose(name)
        let photo = try await desk.photo(from: request)
        let output = try await desk.run(photo, styles)
        if let name, name != "all" {
            return Response(status: .ok, headers: [.contentType: "image/png", .contentLength: "\(output.images[0].count)",
                                                   .init("X-Style")!: styles[0].name],
                            body: .init(byteBuffer: ByteBuffer(bytes: output.images[0])))
        }
        let results = zip(styles, output.images).map { style, png in
            StylizeResult(name: style.name, jobID: style.jobID, pngBase64: png.base64EncodedString())
        }
        return try json(StylizeResponse(contentPNGBase64: output.content.base64EncodedString(), results: results))
    }
}
