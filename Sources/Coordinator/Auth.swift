import Crypto
import Foundation
import Hummingbird

// MARK: - Token check

/// The coordinator's shared token, compared in constant time. Every path that accepts a token
/// (the `Authorization` header, the dashboard cookie, the dashboard's `?token=` link) goes
/// through `matches`.
struct TokenCheck: Sendable {
    /// The dashboard's cookie: the token, percent-encoded.
    static let cookieName = "nst_token"

    /// RFC 3986 unreserved characters (ASCII only): all a cookie value needs unescaped.
    static let unreserved = CharacterSet(charactersIn:
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    private let expected: SHA256Digest

    init(token: String) {
        expected = SHA256.hash(data: Data(token.utf8))
    }

    /// True if `presented` is the token. The comparison is of SHA-256 digests, XOR-accumulated
    /// over all 32 bytes, so its time depends neither on where the tokens differ nor on the
    /// token's length.
    func matches(_ presented: String) -> Bool {
        Self.constantTimeEqual(SHA256.hash(data: Data(presented.utf8)), expected)
    }

    /// True if the digests are equal, in time independent of their content.
    static func constantTimeEqual(_ a: SHA256Digest, _ b: SHA256Digest) -> Bool {
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }

    /// The token of an `Authorization: Bearer <token>` header: nil without the header, an
    /// `APIError` 401 for another scheme.
    static func bearer(_ request: Request) throws -> String? {
        guard let header = request.headers[.authorization] else { return nil }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix.lowercased() else {
            throw APIError(.unauthorized, "the Authorization header must be \"Bearer <token>\"")
        }
        return String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
    }

    /// The (percent-decoded) value of the `nst_token` cookie, if the request carries one.
    static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard let eq = trimmed.firstIndex(of: "="), trimmed[..<eq] == cookieName else { continue }
                let raw = String(trimmed[trimmed.index(after: eq)...])
                return raw.removingPercentEncoding ?? raw
            }
        }
        return nil
    }

    /// The `Set-Cookie` value that makes a browser present `token` on every later request to
    /// this coordinator: HttpOnly (no script can read it), SameSite=Strict (no other site can
    /// make the browser send it), the whole site.
    static func setCookie(token: String) -> String {
        let value = token.addingPercentEncoding(withAllowedCharacters: unreserved) ?? ""
        return "\(cookieName)=\(value); Path=/; HttpOnly; SameSite=Strict"
    }
}

// MARK: - Middleware

/// Requires the token on every route it wraps (401 otherwise): `Authorization: Bearer <token>`
/// on any request, or — for `GET` and `HEAD` only, so that a browser showing the dashboard can
/// load the preview images — the dashboard's `nst_token` cookie. State-changing requests need
/// the header, so a cookie can never make a browser change anything.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    let check: TokenCheck

    init(token: String) {
        check = TokenCheck(token: token)
    }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        if let presented = try TokenCheck.bearer(request) {
            guard check.matches(presented) else { throw APIError(.unauthorized, "wrong bearer token") }
            return try await next(request, context)
        }
        if request.method == .get || request.method == .head, let cookie = TokenCheck.cookie(request) {
            guard check.matches(cookie) else { throw APIError(.unauthorized, "wrong token in the nst_token cookie") }
            return try await next(request, context)
        }
        throw APIError(.unauthorized, "missing bearer token (Authorization: Bearer …)")
    }
}
