import CoordinatorAPI
import Foundation

/// Which files of a manifest a machine already has: a worker's `--dataset DIR` is used in place
/// for every manifest file found at the same relative path with the same size and SHA-256; the
/// others come from the shards.
public struct InPlaceMatch: Sendable, Equatable {
    /// Index into `manifest.files` → the local file with exactly those bytes.
    public var usable: [Int: URL] = [:]
    /// Files present under the same path but with other bytes, and why they are not used.
    public var differing: [(path: String, reason: String)] = []
    /// Files not present locally (or not readable).
    public var missing = 0
    /// How much hashing it took.
    public var counts = ScanCounts()

    public static func == (a: InPlaceMatch, b: InPlaceMatch) -> Bool {
        a.usable == b.usable && a.missing == b.missing && a.counts == b.counts
            && a.differing.map(\.path) == b.differing.map(\.path) && a.differing.map(\.reason) == b.differing.map(\.reason)
    }
}

extension DatasetManifest {
    /// Matches `files` against the folder `root`: size first (one `stat`), then the SHA-256,
    /// taken from the scan cache in `cacheDirectory` when the file's size and mtime are the ones
    /// cached (the cache is updated with what had to be hashed).
    public func matchLocalFiles(in root: URL, cacheDirectory: URL? = nil,
                                threads: Int = ProcessInfo.processInfo.activeProcessorCount) throws(DatasetPackError) -> InPlaceMatch {
        let root = root.standardizedFileURL
        var cache = cacheDirectory.map { ScanCache.load(for: root, in: $0) } ?? ScanCache(root: root.path)
        var match = InPlaceMatch()
        var results = [Local?](repeating: nil, count: files.count)
        let known = cache
        results.withUnsafeMutableBufferPointer { slots in
            let n = max(1, min(threads, slots.count))
            DispatchQueue.concurrentPerform(iterations: n) { worker in
                for i in stride(from: worker, to: slots.count, by: n) {
                    slots[i] = Self.local(files[i], at: root.path + "/" + files[i].path, cache: known)
                }
            }
        }
        for (i, result) in results.enumerated() {
            let f = files[i], local = result!
            switch local.verdict {
            case .missing: match.missing += 1
            case .differs(let reason): match.differing.append((f.path, reason))
            case .same: match.usable[i] = root.appendingPathComponent(f.path)
            }
            guard let entry = local.entry else { continue }
            guard local.hashed else { match.counts.fromCache += 1; continue }
            match.counts.hashed += 1
            match.counts.bytesHashed += entry.size
            // Keep what a scan knew about decoding if the bytes are the ones it saw.
            let old = cache.files[f.path]
            let decodes = old?.sha256 == entry.sha256 ? old?.decodes : nil
            cache.files[f.path] = ScanCache.Entry(size: entry.size, mtimeNanoseconds: entry.mtimeNanoseconds, sha256: entry.sha256,
                                                  decodes: decodes, reason: decodes == false ? old?.reason : nil)
        }
        match.counts.files = files.count
        if let cacheDirectory, match.counts.hashed > 0 { try cache.save(in: cacheDirectory) }
        return match
    }

    /// One manifest file against the local folder.
    struct Local {
        enum Verdict { case missing, differs(String), same }
        var verdict: Verdict
        /// What is known of the local file's bytes (to cache), nil when it is missing.
        var entry: ScanCache.Entry?
        /// True when the file had to be read.
        var hashed: Bool
    }

    static func local(_ f: File, at full: String, cache: ScanCache) -> Local {
        guard case .success(let st) = fileStatus(full) else { return Local(verdict: .missing, entry: nil, hashed: false) }
        guard st.size == f.size else {
            return Local(verdict: .differs("\(st.size) bytes, the dataset's file has \(f.size)"), entry: nil, hashed: false)
        }
        var entry = cache.entry(f.path, size: st.size, mtime: st.mtime)
        let hashed = entry == nil
        if entry == nil {
            guard let data = try? readFile(full, expected: st.size), Int64(data.count) == st.size else {
                return Local(verdict: .missing, entry: nil, hashed: false)
            }
            entry = ScanCache.Entry(size: st.size, mtimeNanoseconds: st.mtime, sha256: FileDigest.sha256(of: data), decodes: nil, reason: nil)
        }
        let sha256 = entry!.sha256
        let verdict: Local.Verdict = sha256 == f.sha256 ? .same : .differs("other bytes (sha256 \(sha256.prefix(12))…)")
        return Local(verdict: verdict, entry: entry, hashed: hashed)
    }
}
