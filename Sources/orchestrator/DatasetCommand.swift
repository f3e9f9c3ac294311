import ArgumentParser
import CoordinatorAPI
import DatasetPack
import Foundation

/// `orchestrator dataset pack`: a folder's manifest and shards, as the coordinator will build
/// them for `serve --dataset NAME=DIR` (docs/datasets.md).
struct DatasetCommands: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dataset",
        abstract: "Dataset manifests and shards.",
        subcommands: [DatasetPackCommand.self])
}

struct DatasetPackCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pack",
        abstract: "Build a folder's manifest and pack its images into content-addressed shards.",
        discussion: """
            Lists DIR as `train` does (recursively, .jpg/.jpeg/.png, sorted), hashes every file and \
            checks that it decodes (files that do not are listed as excluded, with the reason), packs \
            the others in that order into shards of about --shard-mib MiB, and writes shards and \
            manifest into STOREDIR/ab/abcdef… named by their SHA-256. A scan cache (by path, size and \
            mtime) makes a second run over an unchanged folder hash nothing. Prints the manifest digest.
            """)

    @Argument(help: "The folder of images.") var dir: String
    @Option(help: "The content-addressed store to write shards and the manifest into.") var out: String
    @Option(help: "The dataset's name (default: the folder's name).") var name: String?
    @Option(name: .customLong("shard-mib"), help: "Target shard size in MiB (a larger file gets a shard of its own).")
    var shardMiB = 64
    @Option(name: .customLong("cache-dir"), help: "Where the scan cache lives (default: STOREDIR/.scan-cache).")
    var cacheDir: String?
    @Option(help: "Threads hashing and decoding (default: all cores).") var threads: Int?

    var datasetName: String { name ?? URL(fileURLWithPath: dir).standardizedFileURL.lastPathComponent }

    func validate() throws {
        guard (1...Int(DatasetLimits.shardBytes >> 20)).contains(shardMiB) else {
            throw ValidationError("--shard-mib must be from 1 to \(DatasetLimits.shardBytes >> 20)")
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if let problem = JobConfig.nameProblem(datasetName) {
            throw ValidationError("dataset name \"\(Sanitize.oneLine(datasetName, limit: 200))\": \(problem)\(name == nil ? " (give --name)" : "")")
        }
    }

    func run() throws {
        let storeURL = URL(fileURLWithPath: out)
        var builder = DatasetBuilder(store: ContentStore(root: storeURL),
                                     cacheDirectory: cacheDir.map { URL(fileURLWithPath: $0) } ?? storeURL.appendingPathComponent(".scan-cache"))
        builder.shardBytes = Int64(shardMiB) << 20
        if let threads { builder.threads = threads }
        let build: TimedBuild
        do { build = try builder.buildShowingProgress(root: URL(fileURLWithPath: dir), name: datasetName) } catch {
            throw CLIError(error)
        }
        let (result, scanSeconds, seconds) = (build.result, build.scanSeconds, build.seconds)
        let m = result.manifest
        print("digest: \(result.digest)")
        print("manifest: \(result.manifestURL.path)\(result.manifestWritten ? "" : " (already stored)")")
        print(String(format: "name %@: %d files (%.1f MB), %d excluded, %d shards (%d written, %d reused)",
                     m.name, m.totals.files, Double(m.totals.bytes) / 1e6, m.totals.excluded, m.totals.shards,
                     result.shardsWritten, result.shardsReused))
        print(String(format: "scan: %d files hashed (%.1f MB), %d from the cache, %.2f s; packed %.1f MB, %.2f s; total %.2f s",
                     result.scan.hashed, Double(result.scan.bytesHashed) / 1e6, result.scan.fromCache, scanSeconds,
                     Double(result.bytesPacked) / 1e6, seconds - scanSeconds, seconds))
        for e in m.excluded.prefix(20) { printErr("excluded \(Sanitize.oneLine(e.path)): \(Sanitize.oneLine(e.reason))") }
        if m.excluded.count > 20 { printErr("… and \(m.excluded.count - 20) more excluded (listed in the manifest)") }
    }

}

// MARK: - Building with a progress line

/// A build's result and how long its scan and the whole build took.
struct TimedBuild {
    var result: BuildResult
    var scanSeconds: Double
    var seconds: Double
}

extension DatasetBuilder {
    /// Builds `root` as `name` (`build(root:name:)`) with a progress line on standard error
    /// (`dataset pack`, `serve --dataset`), each line starting with `prefix`.
    func buildShowingProgress(root: URL, name: String, prefix: String = "") throws(DatasetPackError) -> TimedBuild {
        let started = Date()
        var line = StatusLine()
        var packingStarted: Date?
        let result: BuildResult
        do {
            result = try build(root: root, name: name) { p in
                if p.phase == .packing && packingStarted == nil { packingStarted = Date() }
                let done = p.phase == .packing && p.shardsDone == p.totalShards
                line.show(prefix + DatasetBuildProgress.describe(p, seconds: Date().timeIntervalSince(started)), force: done)
            }
        } catch {
            line.finish()
            throw error
        }
        line.finish()
        return TimedBuild(result: result, scanSeconds: (packingStarted ?? Date()).timeIntervalSince(started),
                          seconds: Date().timeIntervalSince(started))
    }
}

/// The text of a build's progress line.
enum DatasetBuildProgress {
    static func describe(_ p: BuildProgress, seconds: Double) -> String {
        switch p.phase {
        case .scanning:
            let rate = seconds > 0 ? Double(p.filesScanned) / seconds : 0
            let eta = rate > 0 ? Double(p.totalFiles - p.filesScanned) / rate : .infinity
            return String(format: "scanning %d/%d files  %d hashed (%.1f MB)  %d cached  %.0f files/s  ETA %@",
                          p.filesScanned, p.totalFiles, p.scan.hashed, Double(p.scan.bytesHashed) / 1e6, p.scan.fromCache,
                          rate, formatDuration(eta))
        case .packing:
            return String(format: "packing shard %d/%d  %.1f MB written", min(p.shardsDone + 1, p.totalShards), p.totalShards,
                          Double(p.bytesPacked) / 1e6)
        }
    }
}
