import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - Progress and result

/// Where a build is, for a progress line: reported after each chunk of files scanned and each
/// file packed.
public struct BuildProgress: Sendable, Equatable {
    public enum Phase: Sendable { case scanning, packing }
    public var phase: Phase
    public var filesScanned: Int
    public var totalFiles: Int
    public var scan: ScanCounts
    public var shardsDone: Int
    public var totalShards: Int
    public var bytesPacked: Int64
}

/// What `DatasetBuilder.build` made and how much work it took.
public struct BuildResult: Sendable {
    public var manifest: DatasetManifest
    /// SHA-256 of the manifest's canonical JSON, stored at `manifestURL`.
    public var digest: String
    public var manifestURL: URL
    public var scan: ScanCounts
    public var shardsWritten: Int
    public var shardsReused: Int
    /// Bytes read to make shards (written, or found stored once their digest was known).
    public var bytesPacked: Int64
    /// False when the same manifest was stored already (an unchanged folder).
    public var manifestWritten: Bool
}

// MARK: - DatasetBuilder

/// Builds a folder's `DatasetManifest` and shards (docs/datasets.md): lists it in
/// `ImageFolder`'s order, hashes each file and checks that it decodes (the scan cache spares
/// both for unchanged files), packs the files that decode, in that order, into shards of about
/// `shardBytes`, and stores shards and manifest in a `ContentStore`.
public struct DatasetBuilder: Sendable {
    public static let defaultShardBytes: Int64 = 64 << 20

    public let store: ContentStore
    /// Where the scan caches live (one file per folder).
    public let cacheDirectory: URL
    public var shardBytes: Int64 = DatasetBuilder.defaultShardBytes
    public var threads = ProcessInfo.processInfo.activeProcessorCount

    public init(store: ContentStore, cacheDirectory: URL) {
        self.store = store
        self.cacheDirectory = cacheDirectory
    }

    /// Builds and stores the manifest of the folder `root` under `name`.
    public func build(root: URL, name: String, progress: (BuildProgress) -> Void = { _ in })
        throws(DatasetPackError) -> BuildResult
    {
        if let problem = JobConfig.nameProblem(name) { throw .badName(name: name, problem: problem) }
        guard shardBytes >= 1, shardBytes <= DatasetLimits.shardBytes else { throw .badShardSize(shardBytes) }
        let root = root.standardizedFileURL
        let paths = try DatasetScan.list(root)
        var cache = ScanCache.load(for: root, in: cacheDirectory)
        var report = BuildProgress(phase: .scanning, filesScanned: 0, totalFiles: paths.count, scan: ScanCounts(),
                                   shardsDone: 0, totalShards: 0, bytesPacked: 0)
        progress(report)
        let (scanned, counts) = DatasetScan.scan(root: root, paths: paths, cache: &cache, threads: threads) { done, counts in
            report.filesScanned = done
            report.scan = counts
            progress(report)
        }
        try cache.save(in: cacheDirectory)  // the hashing is kept even if packing fails

        let included = scanned.filter { $0.reason == nil }
        let excluded = scanned.compactMap { f in f.reason.map { DatasetManifest.Excluded(path: f.path, reason: $0) } }
        guard !included.isEmpty else { throw .noImages(root: root.path, excluded: excluded.count) }

        // Shards: the planned groups, each reused if the cache knows its digest and the store has it.
        let plan = ShardPlan(sizes: included.map(\.size), target: shardBytes)
        report.phase = .packing
        report.totalShards = plan.groups.count
        progress(report)
        var shards: [DatasetManifest.Shard] = []
        var files: [DatasetManifest.File] = []
        var written = 0, reused = 0
        let oldShards = cache.shards
        cache.shards = [:]
        for (index, group) in plan.groups.enumerated() {
            let members = group.map { included[$0] }
            let key = ShardPlan.key(members.map { ($0.sha256, $0.size) })
            let shard: DatasetManifest.Shard
            if let known = oldShards[key], store.size(of: known.sha256) == known.size {
                shard = known
                reused += 1
            } else {
                let (made, stored) = try writeShard(members, root: root) { bytes in
                    report.bytesPacked += bytes
                    progress(report)
                }
                shard = made
                if stored { written += 1 } else { reused += 1 }
            }
            cache.shards[key] = shard
            var offset: Int64 = 0
            for f in members {
                files.append(DatasetManifest.File(path: f.path, size: f.size, sha256: f.sha256, shard: index, offset: offset, length: f.size))
                offset += f.size
            }
            shards.append(shard)
            report.shardsDone = index + 1
            progress(report)
        }
        try cache.save(in: cacheDirectory)

        let manifest = DatasetManifest(name: name, files: files, excluded: excluded, shards: shards)
        precondition(manifest.problems().isEmpty, "built an invalid manifest: \(manifest.problems())")
        let json: Data
        do { json = try manifest.canonicalJSON() } catch { preconditionFailure("a manifest always encodes: \(error)") }
        let (digest, manifestWritten) = try store.put(json)
        return BuildResult(manifest: manifest, digest: digest, manifestURL: store.url(for: digest), scan: counts,
                           shardsWritten: written, shardsReused: reused, bytesPacked: report.bytesPacked,
                           manifestWritten: manifestWritten)
    }

    /// Concatenates `members` into a shard, checking that each file still has the digest the
    /// scan found; `stored` is false when the store had that shard already.
    func writeShard(_ members: [ScannedFile], root: URL, packed: (Int64) -> Void)
        throws(DatasetPackError) -> (shard: DatasetManifest.Shard, stored: Bool)
    {
        let writer = try ContentStore.Writer(store: store)
        for f in members {
            let full = root.path + "/" + f.path
            let data: Data
            do { data = try readFile(full, expected: f.size) } catch { throw .unreadable(path: full, reason: error.text) }
            guard Int64(data.count) == f.size, FileDigest.sha256(of: data) == f.sha256 else { throw .fileChanged(path: full) }
            try writer.append(data)
            packed(f.size)
        }
        let sha256 = writer.digest()
        let stored = try writer.commit()
        return (DatasetManifest.Shard(sha256: sha256, size: writer.size), stored)
    }
}

// MARK: - ShardPlan

/// Which files go into which shard: in training order, a new shard starts when the next file
/// would take the current one past `target` bytes; a file larger than `target` gets a shard of
/// its own. So the layout depends only on the sizes, and a file changed in place (same size)
/// changes only its own shard.
struct ShardPlan {
    /// Indices into the sizes, per shard.
    let groups: [[Int]]

    init(sizes: [Int64], target: Int64) {
        var groups: [[Int]] = []
        var current: [Int] = []
        var bytes: Int64 = 0
        for (i, size) in sizes.enumerated() {
            if !current.isEmpty && bytes + size > target {
                groups.append(current)
                current = []
                bytes = 0
            }
            current.append(i)
            bytes += size
        }
        if !current.isEmpty { groups.append(current) }
        self.groups = groups
    }

    /// Names a group by its files' digests and sizes: the same key means the same shard bytes.
    static func key(_ members: [(sha256: String, size: Int64)]) -> String {
        var text = "nst-shard-v\(DatasetManifest.currentFormat)\n"
        for m in members { text += "\(m.sha256) \(m.size)\n" }
        return FileDigest.sha256(of: Data(text.utf8))
    }
}
