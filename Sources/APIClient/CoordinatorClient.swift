import AsyncHTTPClient
import CoordinatorAPI
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import NIOSSL

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
    ///   - caFile: PEM certificates to trust for `https://` besides the system's (a private CA
    ///     made by `orchestrator tls init`); the certificate and the host name are verified.
    /// - Throws: `CoordinatorAddress.ParseError`, `ClientError.tls` for an unreadable CA file.
    public init(address: String, token: String?, timeout: TimeAmount = .seconds(30), caFile: String? = nil) throws {
        self.address = try CoordinatorAddress(parsing: address)
        self.token = token
        self.timeout = timeout
        var config = HTTPClient.Configuration()
        var tls = TLSConfiguration.makeClientConfiguration()
        tls.minimumTLSVersion = .tlsv12
        tls.certificateVerification = .fullVerification
        if let caFile {
            let roots: [NIOSSLCertificate]
            do { roots = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
                throw ClientError.tls("cannot read the CA file \(caFile): \(error)")
            }
            if roots.isEmpty { throw ClientError.tls("no certificate in the CA file \(caFile)") }
            tls.additionalTrustRoots = [.certificates(roots)]
        }
        config.tlsConfiguration = tls
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
        if let tls = Self.tlsProblem(error) {
            return .tls("TLS with the coordinator at \(address.host) failed: \(tls)")
        }
        if !address.secure, let e = error as? HTTPClientError, e == .remoteConnectionClosed {
            return .unreachable("cannot reach the coordinator at \(address): connection closed by the coordinator "
                                + "(if it serves TLS, use https://\(address.hostPort))")
        }
        return .unreachable("cannot reach the coordinator at \(address): \(Self.reason(error))")
    }

    /// A one-line account of a TLS failure, or nil when `error` is not one.
    static func tlsProblem(_ error: any Error) -> String? {
        if let e = error as? NIOSSLError {
            switch e {
            case .handshakeFailed(let reason):
                let text = "\(reason)"
                if text.contains("WRONG_VERSION_NUMBER") || text.contains("wrong version number") {
                    return "the other end does not speak TLS (is it plain http://?)"
                }
                if text.contains("CERTIFICATE_VERIFY_FAILED") {
                    return "certificate verify failed: not signed by a trusted CA, expired, or not for this host (\(text))"
                }
                return "handshake failed: \(text)"
            case .unableToValidateCertificate: return "the certificate does not name this host"
            default: return "\(e)"
            }
        }
        if let e = error as? NIOSSLExtraError { return "\(e)" }
        if let e = error as? BoringSSLError { return "\(e)" }
        return nil
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
