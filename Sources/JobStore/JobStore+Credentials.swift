import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Worker tokens

extension JobStore {
    /// The prefix of every worker token, so that one found in a log or a file says what it is.
    public static let workerTokenPrefix = "nstw_"

    /// Makes a worker token named `name` (default `worker-<id>`) in one transaction and returns
    /// it with its row. The token (256 random bits, hex) exists only in the return value: the
    /// table keeps its SHA-256.
    public func createWorkerCredential(name: String?) async throws -> (credential: CredentialRecord, token: String) {
        if let name, let problem = JobConfig.nameProblem(name) {
            throw StoreError.invalidConfig(reason: "token name: \(problem)")
        }
        let token = Self.workerTokenPrefix + Self.newToken() + Self.newToken()
        let digest = Self.tokenDigest(token)
        let credential = try await write("createWorkerCredential") { db, now in
            try db.execute(sql: """
                INSERT INTO credentials (name, role, token_sha256, created_at) VALUES (?, 'worker', ?, ?)
                """, arguments: [name ?? "", digest, now.timeIntervalSince1970])
            let id = db.lastInsertedRowID
            if name == nil {
                try db.execute(sql: "UPDATE credentials SET name = ? WHERE id = ?", arguments: ["worker-\(id)", id])
            }
            return try CredentialRecord.fetchOne(db, key: id)!
        }
        return (credential, token)
    }

    /// Every credential, oldest first (revoked ones too: the list is also the audit trail).
    public func credentials() async throws -> [CredentialRecord] {
        try await read("credentials") { db in try CredentialRecord.order(Column("id")).fetchAll(db) }
    }

    /// Revokes credential `id` (again is a no-op that keeps the first time); returns its row.
    /// Its next request is refused; a lease it holds runs out as any lease of a silent worker.
    @discardableResult
    public func revokeCredential(id: Int64) async throws -> CredentialRecord {
        try await writeCommitting("revokeCredential") { db, now in
            guard var credential = try CredentialRecord.fetchOne(db, key: id) else {
                return .failure(.credentialNotFound(id: id))
            }
            if credential.revokedAt == nil {
                credential.revokedAt = now
                try credential.update(db)
            }
            return .success(credential)
        }
    }

    /// The credential whose token is `token`, revoked or not; nil for an unknown token.
    public func credential(token: String) async throws -> CredentialRecord? {
        guard token.hasPrefix(Self.workerTokenPrefix), token.utf8.count <= 256 else { return nil }
        let digest = Self.tokenDigest(token)
        return try await read("credential") { db in
            try CredentialRecord.filter(CredentialRecord.Columns.tokenSHA256 == digest).fetchOne(db)
        }
    }

    /// The credential that took job `jobID`'s current or last lease: `.some(nil)` for the admin
    /// token or none, nil when there is no such job. One indexed read of one column.
    public func leaseCredential(jobID: Int64) async throws -> Int64?? {
        try await read("leaseCredential") { db in
            guard let row = try Row.fetchOne(db, sql: "SELECT lease_credential_id FROM jobs WHERE id = ?", arguments: [jobID]) else {
                return nil
            }
            return .some(row[0] as Int64?)
        }
    }

    /// True if `sha256` is an artifact a job leased by `credentialID` needs right now: its
    /// style image, one of its checkpoints, the manifest or a shard of the dataset version it
    /// pins, or a warm start candidate's style image or model, while the job is running.
    public func artifactNeeded(sha256: String, byCredential credentialID: Int64) async throws -> Bool {
        try await read("artifactNeeded") { db in
            let jobs = try Job.filter(Job.Columns.state == JobState.running)
                .filter(Column("lease_credential_id") == credentialID).fetchAll(db)
            for job in jobs {
                if job.config.styleSHA256 == sha256 { return true }
                // The manifest and shards of the dataset version it pins (served or older).
                if let dataset = job.config.datasetSHA256 {
                    if dataset == sha256 { return true }
                    let shards = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM dataset_shards WHERE dataset_sha256 = ? AND sha256 = ?",
                                                  arguments: [dataset, sha256]) ?? 0
                    if shards > 0 { return true }
                }
                // A warm start's candidates: their style images and models.
                for c in try Self.initCandidates(db, for: job) where c.styleSHA256 == sha256 || c.model.sha256 == sha256 {
                    return true
                }
                let checkpoints = try CheckpointRecord.filter(CheckpointRecord.Columns.jobID == job.id)
                    .filter(Column("sha256") == sha256).fetchCount(db)
                if checkpoints > 0 { return true }
            }
            return false
        }
    }

    /// SHA-256 of a token, lowercase hex. Tokens are high-entropy, so an unsalted digest is
    /// enough: it cannot be reversed, and a lookup by it reveals nothing about other tokens.
    static func tokenDigest(_ token: String) -> String {
        FileDigest.sha256(of: Data(token.utf8))
    }
}
