import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - Scanned files

/// One listed file after the scan: its SHA-256 and size if it decodes, else why not.
struct ScannedFile: Sendable {
    /// Relative to the root, `/`-separated.
    var path: String
    var size: Int64
    var sha256: String
    /// nil when the file decodes; else the one-line reason it is excluded.
    var reason: String?
}

/// What a scan did, for tests and the CLI: how many files it had to read.
public struct ScanCounts: Sendable, Equatable {
    public var files = 0
    public var fromCache = 0
    public var hashed = 0
    public var bytesHashed: Int64 = 0
}

// MARK: - DatasetScan

/// Lists a folder in `ImageFolder`'s order and finds, for each file, its SHA-256 and whether it
/// decodes — from the scan cache when the file's size and mtime are unchanged, else by reading
/// it (on `threads` threads, a chunk of files at a time).
enum DatasetScan {
    /// The files `ImageFolder(root:)` lists, as paths relative to `root`, in its order.
    static func list(_ root: URL) throws(DatasetPackError) -> [String] {
        let folder: ImageFolder
        do { folder = try ImageFolder(root: root) } catch { throw .folder(error) }
        let prefix = root.path.hasSuffix("/") ? root.path : root.path + "/"
        return folder.files.map { url in
            precondition(url.path.hasPrefix(prefix), "\(url.path) is not under \(prefix)")
            return String(url.path.dropFirst(prefix.count))
        }
    }

    /// Scans `paths` under `root`, updating `cache` (entries of files no longer listed are
    /// dropped). `progress` is called on this thread after each chunk with the files done.
    static func scan(root: URL, paths: [String], cache: inout ScanCache, threads: Int,
                     progress: (_ done: Int, _ counts: ScanCounts) -> Void) -> (files: [ScannedFile], counts: ScanCounts) {
        let old = cache
        cache.files = [:]
        var counts = ScanCounts()
        counts.files = paths.count
        var out: [ScannedFile] = []
        out.reserveCapacity(paths.count)
        let chunk = 32 * max(threads, 1)
        var start = 0
        while start < paths.count {
            let end = min(start + chunk, paths.count)
            var results = [Outcome?](repeating: nil, count: end - start)
            results.withUnsafeMutableBufferPointer { slots in
                let n = max(1, min(threads, slots.count))
                DispatchQueue.concurrentPerform(iterations: n) { worker in
                    for i in stride(from: worker, to: slots.count, by: n) {
                        let path = paths[start + i]
                        slots[i] = examine(path, at: root.path + "/" + path, cached: old)
                    }
                }
            }
            for outcome in results {
                let o = outcome!
                out.append(o.file)
                if let entry = o.entry { cache.files[o.file.path] = entry }
                if o.hashed {
                    counts.hashed += 1
                    counts.bytesHashed += o.file.size
                } else if o.entry != nil {
                    counts.fromCache += 1
                }
            }
            progress(end, counts)
            start = end
        }
        return (out, counts)
    }

    /// One file's result, and the cache entry to keep (nil when the file changed meanwhile or
    /// cannot be read: it is looked at again next time).
    struct Outcome {
        var file: ScannedFile
        var entry: ScanCache.Entry?
        var hashed: Bool
    }

    static func examine(_ path: String, at full: String, cached: ScanCache) -> Outcome {
        let before: (size: Int64, mtime: Int64)
        switch fileStatus(full) {
        case .failure(let e):
            return Outcome(file: ScannedFile(path: path, size: 0, sha256: "", reason: "cannot read \(path): \(e.text)"), entry: nil, hashed: false)
        case .success(let s): before = s
        }
        if before.size > DatasetLimits.fileBytes {
            let reason = "\(path) is larger than \(DatasetLimits.fileBytes) bytes, the most a dataset file may have"
            return Outcome(file: ScannedFile(path: path, size: 0, sha256: "", reason: reason), entry: nil, hashed: false)
        }
        if let e = cached.entry(path, size: before.size, mtime: before.mtime), let decodes = e.decodes {
            let file = ScannedFile(path: path, size: e.size, sha256: e.sha256, reason: decodes ? nil : (e.reason ?? "does not decode"))
            return Outcome(file: file, entry: e, hashed: false)
        }
        let data: Data
        do { data = try readFile(full, expected: before.size) } catch {
            return Outcome(file: ScannedFile(path: path, size: 0, sha256: "", reason: "cannot read \(path): \(error.text)"), entry: nil, hashed: false)
        }
        let sha256 = FileDigest.sha256(of: data)
        var reason: String?
        do { _ = try RGBImage(decoding: data, name: path) } catch { reason = error.description }
        let file = ScannedFile(path: path, size: Int64(data.count), sha256: sha256, reason: reason)
        // Cached only if the file did not change while it was read.
        guard case .success(let after) = fileStatus(full), after == before, Int64(data.count) == before.size else {
            return Outcome(file: file, entry: nil, hashed: true)
        }
        let entry = ScanCache.Entry(size: before.size, mtimeNanoseconds: before.mtime, sha256: sha256,
                                    decodes: reason == nil, reason: reason)
        return Outcome(file: file, entry: entry, hashed: true)
    }
}
