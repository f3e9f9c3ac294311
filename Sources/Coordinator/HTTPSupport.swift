import CoordinatorAPI
import Foundation
import HTTPTypes
import Hummingbird
import JobStore
import NIOCore

// MARK: - Headers

extension HTTPField.Name {
    /// SHA-256 (lowercase hex) of an uploaded or downloaded body.
    static let contentSHA256 = HTTPField.Name(APIHeader.contentSHA256)!
    /// The lease token of a checkpoint or model upload.
    static let leaseToken = HTTPField.Name(APIHeader.leaseToken)!
    /// Images seen when a checkpoint was taken.
    static let imagesSeen = HTTPField.Name(APIHeader.imagesSeen)!
    /// An error answer's message (HEAD answers have no body).
    static let xError = HTTPField.Name(APIHeader.error)!
}

// MARK: - JSON in and out

/// `value` as a JSON response.
func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    let data = try APICoding.encoder().encode(value)
    return Response(status: status,
                    headers: [.contentType: "application/json; charset=utf-8", .contentLength: "\(data.count)"],
                    body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

extension Request {
    /// The declared body length, if any (a malformed value is a 400).
    func contentLength() throws -> Int64? {
        guard let text = headers[.contentLength] else { return nil }
        guard let n = Int64(text), n >= 0 else { throw APIError.badRequest("malformed Content-Length \"\(text)\"") }
        return n
    }

    /// The body decoded as JSON, collected up to `limit` bytes (413 beyond, 400 when malformed).
    func decodeJSON<T: Decodable>(_ type: T.Type, limit: Int) async throws -> T {
        if let n = try contentLength(), n > Int64(limit) {
            throw APIError(.contentTooLarge, "JSON body of \(n) bytes exceeds the limit of \(limit) bytes")
        }
        let buffer: ByteBuffer
        do {
            buffer = try await body.collect(upTo: limit)
        } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "JSON body exceeds the limit of \(limit) bytes")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            // A body cut short, or chunked encoding that does not parse: the client's fault.
            throw APIError.badRequest("the request body could not be read (cut short or malformed): \(error)")
        }
        if buffer.readableBytes == 0 { throw APIError.badRequest("empty body, expected a JSON object") }
        do {
            return try APICoding.decoder().decode(T.self, from: Data(buffer: buffer))
        } catch let error as DecodingError {
            throw APIError.badRequest("malformed JSON body: \(error.oneLine)")
        }
    }
}

// MARK: - Path parameters

extension RequestContext {
    /// The `:id` parameter as a job id (400 if it is not a positive integer).
    func jobID() throws -> Int64 {
        let text = parameters.get("id") ?? ""
        guard let id = Int64(text), id > 0 else {
            throw APIError.badRequest("job id must be a positive integer, got \"\(text.prefix(40))\"")
        }
        return id
    }
}
