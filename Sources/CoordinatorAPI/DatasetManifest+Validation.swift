import Foundation

// MARK: - Limits

/// The limits on every number and string of a dataset manifest (docs/datasets.md), checked by
/// `DatasetManifest.problems()` wherever a manifest enters: the worker on what it downloads,
/// the coordinator on what it loads.
public enum DatasetLimits {
    /// Files and excluded files together (COCO 2017 train has 118,287).
    public static let entries = 10_000_000
    /// A relative path's UTF-8 bytes (Linux's PATH_MAX).
    public static let pathBytes = 4096
    /// An exclusion reason's UTF-8 bytes.
    public static let reasonBytes = 1000
    /// One image file, and one shard (a file larger than the shard size has a shard of its own).
    public static let fileBytes: Int64 = 1 << 30
    public static let shardBytes: Int64 = 4 << 30
    /// The manifest's canonical JSON (about 200 bytes a file).
    public static let manifestBytes: Int64 = 2 << 30
}

// MARK: - Validation

extension DatasetManifest {
    /// Every way this manifest breaks the format, one line each; empty when it is usable.
    /// Beyond types and limits: paths are relative and clean, each list is sorted with no path
    /// twice, every file lies inside its shard, the files of each shard follow each other with
    /// no gap in training order and fill it exactly, and the totals add up.
    public func problems() -> [String] {
        var out: [String] = []
        func report(_ s: String) { if out.count < 100 { out.append(s) } }
        if format != Self.currentFormat { report("format \(format) is not \(Self.currentFormat), the one this program reads") }
        if let p = JobConfig.nameProblem(name) { report("name: \(p)") }
        if files.count + excluded.count > DatasetLimits.entries {
            report("\(files.count + excluded.count) entries, more than \(DatasetLimits.entries)")
            return out
        }
        for (i, s) in shards.enumerated() {
            if !JobConfig.isSHA256(s.sha256) { report("shards[\(i)].sha256 is not 64 lowercase hex digits") }
            if s.size < 1 || s.size > DatasetLimits.shardBytes { report("shards[\(i)].size \(s.size) is not in 1...\(DatasetLimits.shardBytes)") }
        }
        checkFiles(report)
        for (i, e) in excluded.enumerated() {
            if let p = Self.pathProblem(e.path) { report("excluded[\(i)].path: \(p)") }
            if e.reason.utf8.count > DatasetLimits.reasonBytes { report("excluded[\(i)].reason is longer than \(DatasetLimits.reasonBytes) bytes") }
            if i > 0 && !Self.precedes(excluded[i - 1].path, e.path) { report("excluded[\(i)].path is not after excluded[\(i - 1)].path") }
        }
        let filePaths = Set(files.lazy.map { Array($0.path.utf8) })
        for (i, e) in excluded.enumerated() where filePaths.contains(Array(e.path.utf8)) {
            report("excluded[\(i)].path is also in files")
        }
        let bytes = files.reduce(Int64(0)) { $0 &+ $1.size }
        if totals != Totals(files: files.count, excluded: excluded.count, bytes: bytes, shards: shards.count) {
            report("totals \(totals) do not match the lists")
        }
        return out
    }

    /// Files: clean paths, sorted, sizes within limits, and laid end to end in the shards.
    private func checkFiles(_ report: (String) -> Void) {
        var sizesValid = true
        for (i, f) in files.enumerated() {
            if let p = Self.pathProblem(f.path) { report("files[\(i)].path: \(p)") }
            if i > 0 && !Self.precedes(files[i - 1].path, f.path) { report("files[\(i)].path is not after files[\(i - 1)].path") }
            if !JobConfig.isSHA256(f.sha256) { report("files[\(i)].sha256 is not 64 lowercase hex digits") }
            if f.size < 0 || f.size > DatasetLimits.fileBytes || f.length != f.size {
                report("files[\(i)]: size \(f.size) and length \(f.length) must be equal and in 0...\(DatasetLimits.fileBytes)")
                sizesValid = false
            }
        }
        guard sizesValid else { return }
        // The layout: each file starts where the previous one ended, or at 0 of the next shard
        // once the previous shard is full; the last file ends the last shard.
        var shard = 0, end: Int64 = 0
        for (i, f) in files.enumerated() {
            guard shards.indices.contains(f.shard) else { report("files[\(i)].shard \(f.shard) is not a shard index"); return }
            if f.shard == shard + 1 && end == shards[shard].size {
                shard += 1; end = 0
            }
            guard f.shard == shard, f.offset == end else {
                report("files[\(i)] at shard \(f.shard) offset \(f.offset); expected shard \(shard) offset \(end) (files fill shards in order)")
                return
            }
            end += f.length
            if end > shards[shard].size { report("files[\(i)] ends at \(end), past shard \(shard)'s \(shards[shard].size) bytes"); return }
        }
        if !shards.isEmpty && (shard != shards.count - 1 || end != shards[shard].size) {
            report("the files fill shards up to shard \(shard) offset \(end), not all \(shards.count) shards exactly")
        }
    }

    /// Why `path` is not a clean relative `/`-separated path, or nil.
    public static func pathProblem(_ path: String) -> String? {
        if path.isEmpty { return "empty" }
        if path.utf8.count > DatasetLimits.pathBytes { return "longer than \(DatasetLimits.pathBytes) bytes" }
        if path.hasPrefix("/") { return "absolute" }
        if path.utf8.contains(0) { return "contains a NUL byte" }
        for part in path.split(separator: "/", omittingEmptySubsequences: false) where part.isEmpty || part == "." || part == ".." {
            return "has an empty, '.' or '..' component: \"\(Sanitize.oneLine(path, limit: 200))\""
        }
        return nil
    }
}
