import Foundation
import GRDB

// MARK: - Credential

/// A worker token made by the admin (`credentials` table, migration "v3"). The token itself
/// is shown once, when made; the table keeps only its SHA-256, so a copy of the database
/// (a backup, a stolen disk) lets nobody in.
public struct CredentialRecord: Codable, Sendable, Equatable, Identifiable, FetchableRecord, PersistableRecord {
    public var id: Int64
    public var name: String
    /// Always `worker` for now: the admin token is the coordinator's configuration, not a row.
    public var role: String
    /// SHA-256 (lowercase hex) of the token.
    public var tokenSHA256: String
    public var createdAt: Date
    /// The last time this token leased a job.
    public var lastUsedAt: Date?
    /// Set once revoked; a revoked token is refused on its next request.
    public var revokedAt: Date?

    public var isRevoked: Bool { revokedAt != nil }

    enum CodingKeys: String, CodingKey {
        case id, name, role
        case tokenSHA256 = "token_sha256"
        case createdAt = "created_at"
        case lastUsedAt = "last_used_at"
        case revokedAt = "revoked_at"
    }

    public static let databaseTableName = "credentials"

    public enum Columns {
        public static let tokenSHA256 = Column(CodingKeys.tokenSHA256)
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}
