import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Served datasets

/// A dataset as `serve --dataset NAME=DIR` built it: its manifest (`ref`, an artifact named by
/// its digest) and the shards the manifest lists, in order (artifacts too).
public struct ServedDataset: Sendable, Equatable {
    public var ref: DatasetRef
    public var shards: [DatasetManifest.Shard]

    public init(ref: DatasetRef, shards: [DatasetManifest.Shard]) {
        self.ref = ref
        self.shards = shards
    }

    /// The manifest's digest, then every shard's: what must stay in the artifact store.
    public var artifacts: [String] { [ref.sha256] + shards.map(\.sha256) }
}

/// One registered version of a dataset (a `dataset_versions` row, migration "v5"), named by
/// its manifest's digest.
public struct DatasetVersion: Codable, Sendable, Equatable, FetchableRecord, PersistableRecord {
    public var sha256: String
    public var name: String
    /// The manifest's size in bytes.
    public var size: Int64
    public var files: Int
    public var excluded: Int
    public var bytes: Int64
    public var shards: Int
    /// When this digest was first registered.
    public var registeredAt: Date
    /// Its place among the datasets the coordinator serves now (0: the default one); nil for a
    /// version no longer served, kept while a job that can still train pins it.
    public var servedPosition: Int?

    /// True for the version served now under its name.
    public var isCurrent: Bool { servedPosition != nil }

    /// As leases and `GET /v1/datasets` name it.
    public var ref: DatasetRef {
        DatasetRef(name: name, sha256: sha256, size: size, files: files, excluded: excluded, bytes: bytes, shards: shards)
    }

    enum CodingKeys: String, CodingKey {
        case sha256, name, size, files, excluded, bytes, shards
        case registeredAt = "registered_at"
        case servedPosition = "served_position"
    }

    public static let databaseTableName = "dataset_versions"

    /// Columns for the query interface.
    public enum Columns {
        public static let sha256 = Column(CodingKeys.sha256)
        public static let name = Column(CodingKeys.name)
        public static let servedPosition = Column(CodingKeys.servedPosition)
    }

    public static func databaseDateEncodingStrategy(for column: String) -> DatabaseDateEncodingStrategy {
        .timeIntervalSince1970
    }
}

/// What `registerDatasets` did with one dataset.
public struct DatasetRegistration: Sendable, Equatable {
    public var version: DatasetVersion
    /// False when this digest was registered before (an unchanged folder, e.g. a restart).
    public var isNew: Bool
    /// The version that was current under the same name before, when it was another one.
    public var replaced: String?
}

extension JobStore {
    /// Makes `datasets`, in this order (the first is the default), the datasets the coordinator
    /// serves, in one transaction: each digest gets a row (with its shards) the first time it
    /// is seen, an unchanged one keeps its row; every other version stops being current. An
    /// older version stays registered, with its shards referenced, while a job that can still
    /// train pins it (`pruneCheckpoints` lets it go afterwards).
    /// - Throws: `invalidDataset` for a bad name or digest, a name given twice, or shards that
    ///   do not match the count (nothing changes).
    @discardableResult
    public func registerDatasets(_ datasets: [ServedDataset]) async throws -> [DatasetRegistration] {
        var problems: [String] = []
        var seen = Set<String>()
        for d in datasets {
            let r = d.ref
            if let p = JobConfig.nameProblem(r.name) { problems.append("name \"\(Sanitize.oneLine(r.name, limit: 200))\": \(p)") }
            if !seen.insert(r.name).inserted { problems.append("\(r.name): named twice") }
            if !JobConfig.isSHA256(r.sha256) { problems.append("\(r.name): manifest digest is not 64 lowercase hex digits") }
            if d.shards.count != r.shards { problems.append("\(r.name): \(d.shards.count) shard digests for \(r.shards) shards") }
            if d.shards.contains(where: { !JobConfig.isSHA256($0.sha256) || $0.size < 0 }) {
                problems.append("\(r.name): a shard digest is not 64 lowercase hex digits, or a size is negative")
            }
            if r.size < 0 || r.files < 0 || r.excluded < 0 || r.bytes < 0 { problems.append("\(r.name): negative totals") }
        }
        if !problems.isEmpty { throw StoreError.invalidDataset(reason: problems.joined(separator: "; ")) }
        return try await write("registerDatasets") { db, now in
            let before = try DatasetVersion.filter(DatasetVersion.Columns.servedPosition != nil).fetchAll(db)
            try db.execute(sql: "UPDATE dataset_versions SET served_position = NULL WHERE served_position IS NOT NULL")
            var out: [DatasetRegistration] = []
            for (position, d) in datasets.enumerated() {
                let r = d.ref
                var version: DatasetVersion
                let isNew: Bool
                if let known = try DatasetVersion.fetchOne(db, key: r.sha256) {
                    guard known.name == r.name else {
                        throw StoreError.invalidDataset(reason: "manifest \(r.sha256.prefix(12)) is registered as \"\(known.name)\", not \"\(r.name)\"")
                    }
                    version = known
                    isNew = false
                } else {
                    version = DatasetVersion(sha256: r.sha256, name: r.name, size: r.size, files: r.files, excluded: r.excluded,
                                             bytes: r.bytes, shards: r.shards, registeredAt: now, servedPosition: nil)
                    try version.insert(db)
                    for (i, shard) in d.shards.enumerated() {
                        try db.execute(sql: "INSERT INTO dataset_shards (dataset_sha256, position, sha256, size) VALUES (?, ?, ?, ?)",
                                       arguments: [r.sha256, i, shard.sha256, shard.size])
                    }
                    isNew = true
                }
                version.servedPosition = position
                try version.update(db)
                let previous = before.first { $0.name == r.name && $0.sha256 != r.sha256 }
                out.append(DatasetRegistration(version: version, isNew: isNew, replaced: previous?.sha256))
            }
            return out
        }
    }

    /// The datasets served now, the default first.
    public func servedDatasets() async throws -> [DatasetVersion] {
        try await read("servedDatasets") { db in try Self.servedDatasets(db) }
    }

    /// Every registered version still kept: the served ones and those jobs pin, by name then age.
    public func datasetVersions() async throws -> [DatasetVersion] {
        try await read("datasetVersions") { db in
            try DatasetVersion.order(DatasetVersion.Columns.name, Column("registered_at"), DatasetVersion.Columns.sha256).fetchAll(db)
        }
    }

    /// The registered version with this manifest digest (served or older), or nil.
    public func datasetVersion(sha256: String) async throws -> DatasetVersion? {
        guard JobConfig.isSHA256(sha256) else { return nil }
        return try await read("datasetVersion") { db in try DatasetVersion.fetchOne(db, key: sha256) }
    }

    /// The shards of the registered version `sha256`, in order (empty if unknown).
    public func datasetShards(sha256: String) async throws -> [DatasetManifest.Shard] {
        try await read("datasetShards") { db in
            try Row.fetchAll(db, sql: "SELECT sha256, size FROM dataset_shards WHERE dataset_sha256 = ? ORDER BY position",
                             arguments: [sha256]).map { DatasetManifest.Shard(sha256: $0["sha256"], size: $0["size"]) }
        }
    }

    // MARK: - Inside a transaction

    static func servedDatasets(_ db: Database) throws -> [DatasetVersion] {
        try DatasetVersion.filter(DatasetVersion.Columns.servedPosition != nil)
            .order(DatasetVersion.Columns.servedPosition).fetchAll(db)
    }

    /// The manifest digests pinned by jobs that can still train: queued, running, or failed
    /// (`retryJob` queues those again). Succeeded and cancelled jobs pin nothing.
    static func datasetsPinnedByLiveJobs(_ db: Database) throws -> Set<String> {
        var out = Set<String>()
        for job in try Job.filter([JobState.queued, JobState.running, JobState.failed].contains(Job.Columns.state)).fetchAll(db) {
            if let sha = job.config.datasetSHA256 { out.insert(sha) }
        }
        return out
    }

    /// The manifests and shards of the served versions and of those `pinned`.
    static func datasetArtifacts(_ db: Database, pinned: Set<String>) throws -> Set<String> {
        var kept = Set(try String.fetchAll(db, sql: "SELECT sha256 FROM dataset_versions WHERE served_position IS NOT NULL"))
        kept.formUnion(pinned)
        var out = kept
        for sha in kept {
            out.formUnion(try String.fetchAll(db, sql: "SELECT sha256 FROM dataset_shards WHERE dataset_sha256 = ?", arguments: [sha]))
        }
        return out
    }

    /// Deletes the versions that are neither served nor in `pinned`; returns them.
    static func dropUnpinnedDatasetVersions(_ db: Database, pinned: Set<String>) throws -> [DatasetVersion] {
        let old = try DatasetVersion.filter(DatasetVersion.Columns.servedPosition == nil).fetchAll(db)
            .filter { !pinned.contains($0.sha256) }
        for version in old { try version.delete(db) }  // its shard rows cascade
        return old
    }

    /// Sets `config.dataset` and `config.datasetSHA256` from the served datasets (`served`, the
    /// default first), or says why it cannot: with none served, a config must name none; else
    /// its dataset (the default when it names none) must be served, and a digest it gives must
    /// be a registered version of that dataset (the current one otherwise).
    static func resolveDataset(_ db: Database, _ config: inout JobConfig, served: [DatasetVersion]) throws -> String? {
        guard let fallback = served.first else {
            if config.dataset != nil || config.datasetSHA256 != nil {
                return "dataset: this coordinator serves no datasets (`serve --dataset NAME=DIR`); leave \"dataset\" "
                    + "out to train on each worker's own --dataset folder"
            }
            return nil
        }
        let name = config.dataset ?? fallback.name
        guard let current = served.first(where: { $0.name == name }) else {
            return "dataset: \"\(name)\" is not served by this coordinator (it serves \(served.map { "\"\($0.name)\"" }.joined(separator: ", ")))"
        }
        if let asked = config.datasetSHA256, asked != current.sha256 {
            guard let version = try DatasetVersion.fetchOne(db, key: asked), version.name == name else {
                return "dataset_sha256: \(asked) is not a registered version of dataset \"\(name)\" (its current one is \(current.sha256))"
            }
        }
        config.dataset = name
        config.datasetSHA256 = config.datasetSHA256 ?? current.sha256
        return nil
    }
}
