import CoordinatorAPI
import Crypto
import Foundation
import Hummingbird
import JobStore

// MARK: - Token check

/// The coordinator's admin token, compared in constant time. Every path that accepts it
/// (the `Authorization` header, the login form) goes through `matches`.
struct TokenCheck: Sendable {
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
}

// MARK: - Credentials

/// Turns what a request presents into a `Caller`: the admin token, a worker token (looked up
/// by digest in the store, refused once revoked), or a dashboard session cookie.
struct Authenticator: Sendable {
    let admin: TokenCheck
    let store: JobStore
    let cache: CredentialCache
    let sessions: SessionStore

    /// The caller of a bearer token; a 401 naming the problem for a wrong or revoked one.
    func caller(bearer presented: String) async throws -> Caller {
        if admin.matches(presented) { return .admin }
        if let credential = try await cache.credential(token: presented, store: store) {
            if let revoked = credential.revokedAt {
                throw APIError(.unauthorized, "worker token \(credential.id) (\(credential.name)) was revoked at \(iso8601(revoked))")
            }
            return .worker(credential)
        }
        throw APIError(.unauthorized, "wrong bearer token")
    }
}

// MARK: - Middleware

/// Requires a credential on every route it wraps (401 without one): `Authorization: Bearer`
/// with the admin token or a worker token on any request, or — for `GET` and `HEAD` only, so
/// that the dashboard's images load — the dashboard's session cookie. State-changing requests
/// need the header, so a cookie can never make a browser change anything. A worker token is
/// then held to `WorkerScope` (403 outside it).
struct AuthMiddleware: RouterMiddleware {
    let auth: Authenticator
    let store: JobStore
    /// Artifacts every worker token may download (`CoordinatorConfig.servedArtifacts`: the
    /// served VGG16 weights, the served datasets' manifests and shards).
    let served: Set<String>

    func handle(_ request: Request, context: CoordinatorContext,
                next: (Request, CoordinatorContext) async throws -> Response) async throws -> Response {
        var context = context
        if let presented = try TokenCheck.bearer(request) {
            context.caller = try await auth.caller(bearer: presented)
        } else if let session = SessionStore.cookie(request) {
            guard request.method == .get || request.method == .head else {
                throw APIError(.unauthorized, "a dashboard session only reads: \(request.method) needs Authorization: Bearer")
            }
            guard await auth.sessions.isValid(session) else {
                throw APIError(.unauthorized, "the dashboard session has expired or was logged out; log in again at /login")
            }
            context.caller = .session
        } else {
            throw APIError(.unauthorized, "missing bearer token (Authorization: Bearer …)")
        }
        if case .worker(let credential) = context.caller {
            try await WorkerScope.authorize(request, context: context, credential: credential, store: store, served: served)
        }
        return try await next(request, context)
    }
}

/// `2025-01-01T00:00:00Z`.
func iso8601(_ date: Date) -> String {
    ISO8601DateFormatter().string(from: date)
}

// MARK: - Credential cache

/// Worker credentials by the SHA-256 of their token, so that a worker's every heartbeat does not
/// read the table. Only this coordinator changes credentials, and `TokensController` forgets a
/// revoked one at once, so a revoked token is still refused on its next request. Unknown tokens
/// are never cached; at most `capacity` entries (then the cache starts over).
final class CredentialCache: @unchecked Sendable {
    private let lock = NSLock()
    private var byDigest: [String: CredentialRecord] = [:]
    let capacity: Int

    init(capacity: Int = 10_000) { self.capacity = capacity }

    /// The credential of `token` (revoked or not), from the cache or the store; nil if unknown.
    func credential(token: String, store: JobStore) async throws -> CredentialRecord? {
        guard token.hasPrefix(JobStore.workerTokenPrefix), token.utf8.count <= 256 else { return nil }
        let digest = FileDigest.sha256(of: Data(token.utf8))
        if let hit = lock.withLock({ byDigest[digest] }) { return hit }
        guard let found = try await store.credential(token: token) else { return nil }
        lock.withLock {
            if byDigest.count >= capacity { byDigest.removeAll() }
            byDigest[digest] = found
        }
        return found
    }

    /// Drops credential `id` (revoked: the next request reads the table again).
    func forget(id: Int64) {
        lock.withLock { byDigest = byDigest.filter { $0.value.id != id } }
    }
}
