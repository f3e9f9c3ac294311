import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore
import Logging
import NIOCore

// MARK: - APIError

/// An error answered to a client as `{"error": "<one line>"}` with an HTTP status.
struct APIError: Error, HTTPResponseError, CustomStringConvertible {
    let status: HTTPResponse.Status
    let message: String

    init(_ status: HTTPResponse.Status, _ message: String) {
        self.status = status
        // One line, whatever the underlying error printed.
        // One line, whatever the underlying error printed; control characters escaped (a
        // message may quote what a client sent, and it reaches logs and terminals).
        self.message = Sanitize.oneLine(message.split(whereSeparator: \.isNewline).joined(separator: " "),
                                        limit: 4 * Sanitize.maxFreeText)
    }

    var description: String { "\(status.code) \(message)" }

    func response(from request: Request, context: some RequestContext) throws -> Response {
        errorResponse(status: status, message: message)
    }

    static func badRequest(_ message: String) -> APIError { APIError(.badRequest, message) }
    static func notFound(_ message: String) -> APIError { APIError(.notFound, message) }

    /// The answer to a store refusal: notFound / credentialNotFound → 404, staleLease / invalidTransition /
    /// datasetVersionGone → 409, invalidConfig / invalidReport / invalidDataset → 400, a full disk → 507, database → 500.
    init(_ error: StoreError) {
        switch error {
        case .notFound, .credentialNotFound: self.init(.notFound, error.description)
        case .staleLease, .invalidTransition, .datasetVersionGone: self.init(.conflict, error.description)
        case .invalidConfig, .invalidReport, .invalidDataset: self.init(.badRequest, error.description)
        case .database where error.isStorageFull:
            self.init(.insufficientStorage, "the coordinator's disk is full: \(error.description); nothing was recorded")
        case .database: self.init(.internalServerError, error.description)
        }
    }
}

/// `{"error": message}` with `status`, the message also in `X-Error` (for HEAD answers).
func errorResponse(status: HTTPResponse.Status, message: String) -> Response {
    let data = (try? JSONSerialization.data(withJSONObject: ["error": message], options: [.sortedKeys]))
        ?? Data(#"{"error":"internal error"}"#.utf8)
    return Response(status: status,
                    headers: [.contentType: "application/json; charset=utf-8", .contentLength: "\(data.count)",
                              .xError: String(Sanitize.oneLine(message).prefix(300))],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

// MARK: - Error middleware

/// Turns every error thrown below it into `{"error": "..."}`: `APIError` as is, `StoreError`
/// by its mapping, Hummingbird's own errors (unknown route, 405…) with their status, and
/// anything else as 500 (logged).
struct ErrorMiddleware<Context: RequestContext>: RouterMiddleware {
    let logger: Logger

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as APIError {
            // A full store or disk needs the operator: say so in the log too.
            if error.status.code >= 500 {
                logger.error("\(request.method) \(request.uri.path): \(error.message)")
            }
            return errorResponse(status: error.status, message: error.message)
        } catch let error as StoreError {
            let api = APIError(error)
            if api.status.code >= 500 {
                logger.error("\(request.method) \(request.uri.path): \(error)")
            }
            return errorResponse(status: api.status, message: api.message)
        } catch let error as HTTPError {
            let message = error.body ?? Self.defaultMessage(error.status, request: request)
            return errorResponse(status: error.status, message: message)
        } catch let error as any HTTPResponseError {
            return errorResponse(status: error.status, message: Self.defaultMessage(error.status, request: request))
        } catch {
            logger.error("\(request.method) \(request.uri.path): \(error)")
            return errorResponse(status: .internalServerError, message: "internal error: \(error)")
        }
    }

    static func defaultMessage(_ status: HTTPResponse.Status, request: Request) -> String {
        switch status {
        case .notFound: return "no such endpoint: \(request.method) \(request.uri.path)"
        case .methodNotAllowed: return "method \(request.method) not allowed on \(request.uri.path)"
        case .contentTooLarge: return "request body too large"
        default: return status.reasonPhrase
        }
    }
}
