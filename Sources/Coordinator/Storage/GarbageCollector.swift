import CoordinatorAPI
import Foundation
import JobStore
import Logging
import ServiceLifecycle

// MARK: - GarbageCollector

/// Frees the disk the coordinator no longer needs: checkpoint rows past retention
/// (`JobStore.pruneCheckpoints`), then every file under `artifacts/` that no row references
/// and `tmp/` uploads abandoned for longer than the grace age. The rule is
/// `StoragePolicy`'s; `orchestrator gc` and the coordinator's periodic collection both run
/// `collect`.
///
/// Safe beside a running coordinator and its uploads: a file is never deleted where it lies.
/// It is renamed aside (`ab/abcdef….gc`) and its modification time checked again on the
/// renamed inode; an upload or claim that came in between made it young, and it is put back.
/// A set-aside file left by a crash is put back by the next collection or at start.
public struct GarbageCollector: Sendable {
    let store: JobStore
    let artifacts: ArtifactStore
    let keepCheckpoints: Int
    let graceAge: TimeInterval

    /// A collector for the state directory of `config` (for `orchestrator gc`): it prepares
    /// nothing and empties nothing, so it may run while a coordinator serves the same directory.
    public init(config: CoordinatorConfig, store: JobStore) {
        self.init(store: store, artifacts: ArtifactStore(config: config), policy: config.storage)
    }

    init(store: JobStore, artifacts: ArtifactStore, policy: StoragePolicy) {
        self.store = store
        self.artifacts = artifacts
        keepCheckpoints = policy.keepCheckpoints
        graceAge = policy.gcGraceAge
    }

    /// Applies retention and deletes what no row references, or with `dryRun` changes nothing
    /// and reports what it would free.
    /// - Parameter now: the time file ages are measured from (the file system's clock).
    public func collect(dryRun: Bool = false, now: Date = Date()) async throws -> GarbageReport {
        let retention = try await store.pruneCheckpoints(keepLatest: keepCheckpoints, dryRun: dryRun)
        // A dropped row's file may go at once when it is not newer than the row: the upload
        // that the row recorded, not a new upload of the same bytes since.
        var droppedAt: [String: Date] = [:]
        for row in retention.dropped { droppedAt[row.sha256] = max(droppedAt[row.sha256] ?? .distantPast, row.createdAt) }
        let grace = graceAge
        func collectible(_ sha: String, modified: Date) -> Bool {
            now.timeIntervalSince(modified) >= grace || droppedAt[sha].map { modified <= $0 } ?? false
        }

        var report = GarbageReport(dryRun: dryRun, checkpointRowsDropped: retention.dropped.count)
        for file in try artifacts.storedFiles() {
            guard let sha = file.sha256, !retention.referenced.contains(sha) || file.setAside else { continue }
            if file.setAside {
                if !dryRun { artifacts.restore(file) }  // the next collection decides
                continue
            }
            guard collectible(sha, modified: file.modified) else {
                report.young.add(file.size)
                continue
            }
            var freed: Int64? = file.size
            if !dryRun {
                do {
                    freed = try artifacts.remove(file) { collectible(sha, modified: $0) }
                } catch {
                    report.errors.append("\(error)")
                    continue
                }
            }
            guard let freed else { continue }
            if droppedAt[sha] != nil { report.prunedCheckpoints.add(freed) } else { report.unreferenced.add(freed) }
        }
        collectTemporary(into: &report, now: now)
        if !dryRun { try artifacts.recount() }
        return report
    }

    /// Removes `tmp/` files untouched for the grace age: uploads refused or cut off without
    /// their file being removed, or written by a process that died. An upload in progress
    /// writes its file at least every `uploadTimeout`, far less than the grace age.
    private func collectTemporary(into report: inout GarbageReport, now: Date) {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: artifacts.tmp.path)) ?? []
        for name in names.sorted() {
            let path = artifacts.tmp.appendingPathComponent(name).path
            guard let (size, modified) = ArtifactStore.regularFile(path),
                  now.timeIntervalSince(modified) >= graceAge else { continue }
            if !report.dryRun, unlink(path) != 0 {
                if errno != ENOENT { report.errors.append("cannot delete \(path): \(errnoText())") }
                continue
            }
            report.temporary.add(size)
        }
    }
}

// MARK: - Removing one file

extension ArtifactStore {
    /// Deletes `file` if, once renamed aside, its modification time still passes
    /// `stillCollectible`; otherwise puts it back. Returns the bytes freed, nil if kept or gone.
    func remove(_ file: StoredFile, if stillCollectible: (Date) -> Bool) throws -> Int64? {
        let aside = file.url.path + Self.setAsideSuffix
        guard rename(file.url.path, aside) == 0 else {
            if errno == ENOENT { return nil }
            throw StorageIOError(operation: "set aside \(file.url.path)", errno: errno)
        }
        let setAside = StoredFile(url: URL(fileURLWithPath: aside), sha256: file.sha256, setAside: true,
                                  size: file.size, modified: file.modified)
        guard let (size, modified) = Self.regularFile(aside), stillCollectible(modified) else {
            restore(setAside)
            return nil
        }
        guard unlink(aside) == 0 else {
            if errno == ENOENT { return nil }
            let error = StorageIOError(operation: "delete \(aside)", errno: errno)
            restore(setAside)
            throw error
        }
        usage.removed(size)
        return size
    }
}

// MARK: - Report

/// What a collection freed, or in a dry run would free.
public struct GarbageReport: Sendable, CustomStringConvertible {
    /// A number of files and their bytes.
    public struct Tally: Sendable, Equatable {
        public var files = 0
        public var bytes: Int64 = 0
        mutating func add(_ size: Int64) { files += 1; bytes += size }
    }

    public var dryRun: Bool
    /// Checkpoint rows deleted by retention.
    public var checkpointRowsDropped: Int
    /// Files of the checkpoints retention dropped.
    public var prunedCheckpoints = Tally()
    /// Other files no row references: previews superseded by a newer one, models of attempts
    /// that never completed, style images of no job, checkpoints replaced by a re-upload.
    public var unreferenced = Tally()
    /// Abandoned uploads in `tmp/`.
    public var temporary = Tally()
    /// Unreferenced files kept because they are younger than the grace age.
    public var young = Tally()
    /// Files that could not be deleted (the collection goes on without them).
    public var errors: [String] = []

    /// Everything freed.
    public var freed: Tally {
        Tally(files: prunedCheckpoints.files + unreferenced.files + temporary.files,
              bytes: prunedCheckpoints.bytes + unreferenced.bytes + temporary.bytes)
    }

    /// One line, e.g. "freed 3 files, 40.2 MiB (2 pruned checkpoints 40.0 MiB, 1 unreferenced
    /// artifact 212 KiB); 2 checkpoint rows dropped".
    public var description: String {
        let parts = [(prunedCheckpoints, "pruned checkpoint"), (unreferenced, "unreferenced artifact"),
                     (temporary, "abandoned upload")]
            .filter { $0.0.files > 0 }
            .map { "\(Self.count($0.0.files, $0.1)) \(Self.bytes($0.0.bytes))" }
        var text = "\(dryRun ? "would free" : "freed") \(Self.count(freed.files, "file")), \(Self.bytes(freed.bytes))"
        if !parts.isEmpty { text += " (" + parts.joined(separator: ", ") + ")" }
        text += "; \(Self.count(checkpointRowsDropped, "checkpoint row")) \(dryRun ? "to drop" : "dropped")"
        if young.files > 0 {
            text += "; kept \(Self.count(young.files, "unreferenced file")) younger than the grace age (\(Self.bytes(young.bytes)))"
        }
        if !errors.isEmpty { text += "; \(Self.count(errors.count, "error"))" }
        return text
    }

    static func count(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

    /// `512 bytes`, `212 KiB`, `40.2 MiB`, `1.5 GiB`.
    static func bytes(_ n: Int64) -> String {
        if n < 1024 { return "\(n) bytes" }
        let units = ["KiB", "MiB", "GiB", "TiB"]
        var value = Double(n) / 1024
        var unit = 0
        while value >= 1024, unit < units.count - 1 { value /= 1024; unit += 1 }
        return value >= 100 ? "\(Int(value.rounded())) \(units[unit])" : String(format: "%.1f %@", value, units[unit])
    }
}

// MARK: - Service

/// Collects garbage every `interval` in the coordinator, beside the lease reaper, and logs
/// what it freed.
struct GarbageCollectorService: Service {
    let collector: GarbageCollector
    let interval: Duration
    let logger: Logger

    func run() async throws {
        let (collector, logger) = (collector, logger)
        await repeatEvery(interval) {
            do {
                let report = try await collector.collect()
                if report.freed.files > 0 || report.checkpointRowsDropped > 0 {
                    logger.info("gc: \(report)")
                } else {
                    logger.debug("gc: \(report)")
                }
                for error in report.errors { logger.error("gc: \(error)") }
            } catch {
                logger.error("gc: \(error)")
            }
        }
    }
}
