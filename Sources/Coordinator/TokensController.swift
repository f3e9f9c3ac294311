import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore

// MARK: - /v1/tokens (admin)

/// Worker tokens: made, listed and revoked by the admin (`orchestrator token …`). The admin
/// token itself is the coordinator's configuration and is rotated by restarting with another.
struct TokensController: Sendable {
    let core: CoordinatorCore

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.post(use: create)
        group.get(use: list)
        group.post(":id/revoke", use: revoke)
    }

    @Sendable func create(_ request: Request, context: CoordinatorContext) async throws -> Response {
        try requireAdmin(context)
        let body = try await request.decodeJSON(TokenCreateRequest.self, limit: core.config.maxJSONBytes)
        guard body.role == "worker" else {
            throw APIError.badRequest("only worker tokens can be made (role \"worker\"), not \"\(Sanitize.oneLine(String(body.role.prefix(40))))\"")
        }
        let (credential, token) = try await core.store.createWorkerCredential(name: body.name)
        core.logger.info("worker token \(credential.id) (\(credential.name)) created")
        return try json(TokenCreated(info: TokenInfo(credential), token: token), status: .created)
    }

    @Sendable func list(_ request: Request, context: CoordinatorContext) async throws -> Response {
        try requireAdmin(context)
        return try json(TokensResponse(tokens: try await core.store.credentials().map(TokenInfo.init)))
    }

    @Sendable func revoke(_ request: Request, context: CoordinatorContext) async throws -> Response {
        try requireAdmin(context)
        let text = context.parameters.get("id") ?? ""
        guard let id = Int64(text) else { throw APIError.badRequest("token id must be an integer, got \"\(text.prefix(40))\"") }
        let credential = try await core.store.revokeCredential(id: id)
        core.credentials.forget(id: id)
        core.logger.warning("worker token \(credential.id) (\(credential.name)) revoked")
        return try json(TokenInfo(credential))
    }

    /// Tokens are for the admin token only; on a coordinator without a token they make no sense.
    private func requireAdmin(_ context: CoordinatorContext) throws {
        switch context.caller {
        case .admin: return
        case .open:
            throw APIError(.conflict, "this coordinator runs without a token (loopback only), so worker tokens would change nothing; start it with ORCHESTRATOR_TOKEN or --token-file")
        case .session, .worker:
            throw APIError(.forbidden, "only the admin token manages tokens")
        }
    }
}

extension TokenInfo {
    init(_ credential: CredentialRecord) {
        self.init(id: credential.id, name: credential.name, role: credential.role, createdAt: credential.createdAt,
                  lastUsedAt: credential.lastUsedAt, revokedAt: credential.revokedAt)
    }
}
