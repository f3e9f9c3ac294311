import AsyncHTTPClient
import CoordinatorAPI
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix

// MARK: - CoordinatorClient

/// The coordinator's HTTP API (docs/api.md) for the CLI and the worker, over AsyncHTTPClient.
///
/// Errors are `ClientError`: `.unreachable` when no answer came (connection refused, timeout,
/// DNS), `.http` for an error status with the coordinator's one-line reason, `.badResponse`,
/// `.checksumMismatch` for a download that does not hash to what was expected. Call
/// `shutdown()` when done.
public struct CoordinatorClient: Sendable {
    public let address: CoordinatorAddress
    let token: String?
    let timeout: TimeAmount
    let http: HTTPClient

    /// - Parameters:
    ///   - address: `host:port`, `http://host:port` or `[::1]:7000`.
    ///   - token: the bearer token, if the coordinator has one.
    ///   - timeout: the deadline of a JSON call, and the longest silence during a transfer.
    /// - Throws: `CoordinatorAddress.ParseError`.
    public init(address: String, token: String?, timeout: TimeAmount = .seconds(30)) throws {
        self.address = try CoordinatorAddress(parsing: address)
        self.token = token
        self.timeout = timeout
        var config = HTTPClient.Configuration()
        config.timeout = .init(connect: min(timeout, .seconds(10)), read: timeout)
        config.redirectConfiguration = .disallow
        config.decompression = .disabled
        // Fail at once when nothing listens: callers (the worker) retry with their own backoff.
        config.connectionPool.retryConnectionEstablishment = false
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
    }

    /// Closes the connections.
    public func shutdown() async throws {
        try await http.shutdown()
    }

    // MARK: - Transport

    /// Sends a request; only transport failures throw (as `.unreachable`).
    func send(_ method: HTTPMethod, _ path: String, headers: [(String, String)] = [],
              body: HTTPClientRequest.Body? = nil, transfer: Bool = false) async throws -> HTTPClientResponse {
        var request = HTTPClientRequest(url: address.baseURL + path)
        request.method = method
        if let token { request.headers.add(name: "Authorization", value: "Bearer \(token)") }
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        request.body = body
        // A transfer may take long; the read timeout still catches a stalled one.
        let deadline: NIODeadline = transfer ? .now() + .hours(24) : .now() + timeout
        do {
            return try await http.execute(request, deadline: deadline)
        } catch let error as LocalFileError {
            throw error
        } catch {
            throw unreachable(error)
        }
    }

    /// The body of a 2xx answer decoded as `T`; an error status becomes `.http`.
    func decode<T: Decodable>(_ type: T.Type, from response: HTTPClientResponse) async throws -> T {
        let data = try await successBody(response)
        do {
            return try APICoding.decoder().decode(T.self, from: data)
        } catch let error as DecodingError {
            throw ClientError.badResponse("\(T.self): \(error.oneLine)")
        }
    }

    /// The whole body of a 2xx answer (at most 256 MiB); an error status becomes `.http`.
    func successBody(_ response: HTTPClientResponse) async throws -> Data {
        let buffer: ByteBuffer
        do {
            buffer = try await response.body.collect(upTo: 256 << 20)
        } catch {
            throw unreachable(error)
        }
        guard (200..<300).contains(Int(response.status.code)) else {
            throw Self.httpError(status: Int(response.status.code), body: Data(buffer: buffer))
        }
        return Data(buffer: buffer)
    }

    /// A JSON call: `body` encoded (if any), the answer decoded as `T`.
    func call<T: Decodable>(_ method: HTTPMethod, _ path: String, json body: (any Encodable)? = nil,
                            as type: T.Type) async throws -> T {
        try await decode(T.self, from: send(method, path, headers: jsonHeaders(body), body: try encodeBody(body)))
    }

    func jsonHeaders(_ body: (any Encodable)?) -> [(String, String)] {
        body == nil ? [] : [("Content-Type", "application/json")]
    }

    func encodeBody(_ body: (any Encodable)?) throws -> HTTPClientRequest.Body? {
        guard let body else { return nil }
        return .bytes(ByteBuffer(bytes: try APICoding.encoder().encode(body)))
    }

    /// `.http(status, reason)` from an error answer's `{"error": reason}`.
    static func httpError(status: Int, body: Data) -> ClientError {
        if let object = try? JSONSerialization.jsonObject(with: body) as? [String: Any],
           let message = object["error"] as? String {
            // The coordinator's words reach a terminal: bounded, control characters escaped.
            return .http(status: status, message: Sanitize.oneLine(message))
        }
        let reason = HTTPResponseStatus(statusCode: status).reasonPhrase
        return .http(status: status, message: "\(reason), without a coordinator error body (is this a coordinator?)")
    }

    /// `.unreachable` with a short reason for a transport failure.
    func unreachable(_ error: any Error) -> ClientError {
        if let error = error as? ClientError { return error }
        return .unreachable("cannot reach the coordinator at \(address): \(Self.reason(error))")
    }

    static func reason(_ error: any Error) -> String {
        if let e = error as? HTTPClientError {
            switch e {
            case .connectTimeout: return "connection timed out"
            case .deadlineExceeded: return "no answer before the deadline"
            case .readTimeout: return "no answer (read timed out)"
            case .remoteConnectionClosed: return "connection closed by the coordinator"
            default: return "\(e)"
            }
        }
        if let e = error as? NIOConnectionError {
            if let first = e.connectionErrors.first { return reason(first.error) }
            if e.dnsAError != nil || e.dnsAAAAError != nil { return "cannot resolve host \(e.host)" }
            return "cannot connect to \(e.host):\(e.port)"
        }
        if let e = error as? IOError { return String(cString: strerror(e.errnoCode)).lowercased() }
        if let e = error as? ChannelError {
            switch e {
            case .connectTimeout: return "connection timed out"
            case .ioOnClosedChannel, .eof, .alreadyClosed: return "connection closed"
            default: return "\(e)"
            }
        }
        if error is NIOTooManyBytesError { return "answer too large" }
        if let e = error as? SocketAddressError, case .unknown(let host, _) = e { return "cannot resolve host \(host)" }
        return "\(error)"
    }
}

// MARK: - Files

/// A local file that could not be read or written during a transfer.
public struct LocalFileError: Error, CustomStringConvertible {
    public let path: String
    public let reason: String
    public var description: String { "\(path): \(reason)" }
}

/// A file read in chunks, as an upload body.
struct FileChunks: AsyncSequence, Sendable {
    typealias Element = ByteBuffer
    let url: URL
    let chunkSize = 256 << 10

    struct AsyncIterator: AsyncIteratorProtocol {
        let url: URL
        let chunkSize: Int
        var handle: FileHandle?
        var done = false

        mutating func next() async throws -> ByteBuffer? {
            if done { return nil }
            do {
                if handle == nil { handle = try FileHandle(forReadingFrom: url) }
                guard let data = try handle!.read(upToCount: chunkSize), !data.isEmpty else {
                    done = true
                    try? handle?.close()
                    return nil
                }
                return ByteBuffer(bytes: data)
            } catch {
                done = true
                try? handle?.close()
                throw LocalFileError(path: url.path, reason: (error as NSError).localizedDescription)
            }
        }
    }

    func makeAsyncIterator() -> AsyncIterator { AsyncIterator(url: url, chunkSize: chunkSize) }
}
