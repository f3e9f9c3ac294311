import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Pinned artifacts

extension JobStore {
    /// Keeps `sha256` from the garbage collector as `what` (e.g. "VGG16 weights"); pinning it
    /// again updates `what`. Unpins every other artifact pinned as the same `what`, so a
    /// coordinator restarted with other weights lets the old ones go.
    public func pinArtifact(_ sha256: String, as what: String) async throws {
        guard JobConfig.isSHA256(sha256) else { throw StoreError.invalidConfig(reason: "not a sha256 digest: \(sha256.prefix(80))") }
        try await write("pinArtifact") { db, now in
            try db.execute(sql: "DELETE FROM pinned_artifacts WHERE what = ? AND sha256 <> ?", arguments: [what, sha256])
            try db.execute(sql: """
                INSERT INTO pinned_artifacts (sha256, what, pinned_at) VALUES (?, ?, ?)
                ON CONFLICT(sha256) DO UPDATE SET what = excluded.what
                """, arguments: [sha256, what, now.timeIntervalSince1970])
        }
    }

    /// The pinned artifacts: digest → what.
    public func pinnedArtifacts() async throws -> [String: String] {
        try await read("pinnedArtifacts") { db in
            Dictionary(try Row.fetchAll(db, sql: "SELECT sha256, what FROM pinned_artifacts").map { ($0["sha256"], $0["what"]) },
                       uniquingKeysWith: { a, _ in a })
        }
    }
}
