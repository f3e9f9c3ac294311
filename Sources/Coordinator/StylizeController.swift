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
            switch output.images[0] {
            case .success(let png):
                return Response(status: .ok, headers: [.contentType: "image/png", .contentLength: "\(png.count)",
                                                       .init("X-Style")!: styles[0].name],
                                body: .init(byteBuffer: ByteBuffer(bytes: png)))
            case .failure(let error):
                throw APIError(.conflict, "the model of \(styles[0].name) (job \(styles[0].jobID)) cannot be used: \(error.description)")
            }
        }
        let results = zip(styles, output.images).map { style, image in
            switch image {
            case .success(let png): StylizeResult(name: style.name, jobID: style.jobID, pngBase64: png.base64EncodedString())
            case .failure(let error): StylizeResult(name: style.name, jobID: style.jobID, error: error.description)
            }
        }
        return try json(StylizeResponse(contentPNGBase64: output.content.base64EncodedString(), results: results))
    }
}
