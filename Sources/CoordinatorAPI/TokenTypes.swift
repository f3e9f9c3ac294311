import Foundation

// MARK: - Worker tokens (admin only)

/// `POST /v1/tokens` body: a worker token, optionally named.
public struct TokenCreateRequest: Codable, Sendable, Equatable {
    /// Only `worker` exists: the admin token is the coordinator's own configuration.
    public var role: String
    public var name: String?

    public init(role: String = "worker", name: String? = nil) {
        self.role = role
        self.name = name
    }
}

/// A token as `GET /v1/tokens` lists it: never the token itself, which only its creation shows.
public struct TokenInfo: Codable, Sendable, Equatable {
    public var id: Int64
    public var name: String
    public var role: String
    public var createdAt: Date
    /// The last time the token leased a job.
    public var lastUsedAt: Date?
    public var revokedAt: Date?

    public init(id: Int64, name: String, role: String, createdAt: Date, lastUsedAt: Date?, revokedAt: Date?) {
        self.id = id
        self.name = name
        self.role = role
        self.createdAt = createdAt
        self.lastUsedAt = lastUsedAt
        self.revokedAt = revokedAt
    }

    enum CodingKeys: String, CodingKey {
        case id, name, role
        case createdAt = "created_at"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }
}

/// `POST /v1/tokens` answer (201): the new token, shown this once.
public struct TokenCreated: Codable, Sendable, Equatable {
    public var info: TokenInfo
    public var token: String

    public init(info: TokenInfo, token: String) {
        self.info = info
        self.token = token
    }
}

/// `GET /v1/tokens` answer.
public struct TokensResponse: Codable, Sendable, Equatable {
    public var tokens: [TokenInfo]

    public init(tokens: [TokenInfo]) { self.tokens = tokens }
}
