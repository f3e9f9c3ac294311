import Foundation

// MARK: - ClientError

/// Why a `CoordinatorClient` call failed. Each description is one line fit for a CLI message.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    /// No answer: connection refused, timeout, DNS failure, connection dropped. The text is
    /// the whole message, e.g. `cannot reach the coordinator at 127.0.0.1:7000: connection refused`.
    case unreachable(String)
    /// The coordinator answered with an error status and `{"error": message}`.
    case http(status: Int, message: String)
    /// The coordinator answered something this client cannot read.
    case badResponse(String)
    /// A downloaded file's SHA-256 is not the one expected (nothing was kept).
    case checksumMismatch(expected: String, actual: String)
    /// The TLS connection could not be set up: the certificate is not trusted, does not name
    /// the host, has expired, or the other end does not speak TLS. Not worth retrying.
    case tls(String)

    /// True for 409: the lease token no longer holds the job (or the state forbids the
    /// change); a worker must stop the job and discard its work.
    public var isStaleLease: Bool {
        if case .http(409, _) = self { return true }
        return false
    }

    /// True when trying again later may succeed: unreachable, or a 5xx answer.
    public var isTransient: Bool {
        switch self {
        case .unreachable: return true
        case .http(let status, _): return status >= 500
        default: return false
        }
    }

    public var description: String {
        switch self {
        case .unreachable(let message): return message
        case let .http(status, message): return "\(message) (HTTP \(status))"
        case .badResponse(let message): return "unexpected answer from the coordinator: \(message)"
        case let .checksumMismatch(expected, actual):
            return "checksum mismatch: expected sha256 \(expected), got \(actual)"
        case .tls(let message): return message
        }
    }
}

// MARK: - Address

/// A coordinator's host and port, parsed from `host:port`, `http://host:port`, `[::1]:7000`,
/// a bare host (port 7000) or a bare IPv6 address.
public struct CoordinatorAddress: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    /// `https://`: TLS, with the certificate and host name verified.
    public var secure = false

    /// A malformed address.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let address: String
        public let reason: String
        public var description: String { "invalid coordinator address \"\(address)\": \(reason)" }
    }

    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    public init(parsing text: String) throws {
        func fail(_ reason: String) -> ParseError { ParseError(address: text, reason: reason) }
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        var secure = false
        if rest.lowercased().hasPrefix("https://") {
            rest = rest.dropFirst("https://".count)
            secure = true
        } else if rest.lowercased().hasPrefix("http://") {
            rest = rest.dropFirst("http://".count)
        }
        while rest.hasSuffix("/") { rest = rest.dropLast() }
        if rest.contains("/") { throw fail("expected host:port, without a path") }
        var host: Substring
        var portText: Substring?
        if rest.hasPrefix("[") {
            guard let close = rest.firstIndex(of: "]") else { throw fail("missing ']' after an IPv6 address") }
            host = rest[rest.index(after: rest.startIndex)..<close]
            let after = rest[rest.index(after: close)...]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw fail("expected ':port' after ']'") }
                portText = after.dropFirst()
            }
        } else if rest.filter({ $0 == ":" }).count > 1 {
            host = rest  // a bare IPv6 address
        } else if let colon = rest.firstIndex(of: ":") {
            host = rest[..<colon]
            portText = rest[rest.index(after: colon)...]
        } else {
            host = rest
        }
        guard !host.isEmpty else { throw fail("missing host") }
        if host.contains(where: { $0.isWhitespace || $0 == "@" }) { throw fail("invalid host") }
        var port = CoordinatorDefaults.port
        if let portText {
            guard let p = Int(portText), (1...65535).contains(p) else {
                throw fail("port must be a number from 1 to 65535, got \"\(portText)\"")
            }
            port = p
        }
        self.init(host: String(host), port: port)
        self.secure = secure
    }

    /// True for an IPv6 literal (it needs brackets in a URL).
    var isIPv6: Bool { host.contains(":") }

    /// `http://host:port` or `https://host:port` (IPv6 in brackets).
    public var baseURL: String { (secure ? "https://" : "http://") + hostPort }

    /// `host:port`, or `[v6]:port`.
    var hostPort: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    /// `host:port` (`[v6]:port`), with `https://` in front for TLS.
    public var description: String { secure ? "https://" + hostPort : hostPort }
}
