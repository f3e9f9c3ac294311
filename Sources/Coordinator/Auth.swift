import Crypto
import Foundation
import Hummingbird

// MARK: - Bearer token

/// Requires `Authorization: Bearer <token>` on every route it wraps (401 otherwise). The
/// comparison is of SHA-256 digests, XOR-accumulated over all 32 bytes, so its time depends
/// neither on where the tokens differ nor on the token's length.
struct AuthMiddleware<Context: RequestContext>: RouterMiddleware {
    private let expected: SHA256Digest

    init(token: String) {
        expected = SHA256.hash(data: Data(token.utf8))
    }

    func handle(_ request: Request, context: Context,
                next: (Request, Context) async throws -> Response) async throws -> Response {
        guard let header = request.headers[.authorization] else {
            throw APIError(.unauthorized, "missing bearer token (Authorization: Bearer …)")
        }
        let prefix = "Bearer "
        guard header.count > prefix.count, header.prefix(prefix.count).lowercased() == prefix.lowercased() else {
            throw APIError(.unauthorized, "the Authorization header must be \"Bearer <token>\"")
        }
        let presented = String(header.dropFirst(prefix.count)).trimmingCharacters(in: .whitespaces)
        guard Self.constantTimeEqual(SHA256.hash(data: Data(presented.utf8)), expected) else {
            throw APIError(.unauthorized, "wrong bearer token")
        }
        return try await next(request, context)
    }

    /// True if the digests are equal, in time independent of their content.
    static func constantTimeEqual(_ a: SHA256Digest, _ b: SHA256Digest) -> Bool {
        var diff: UInt8 = 0
        for (x, y) in zip(a, b) { diff |= x ^ y }
        return diff == 0
    }
}
