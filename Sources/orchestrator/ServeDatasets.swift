import ArgumentParser
import Coordinator
import CoordinatorAPI
import DatasetPack
import Foundation
import JobStore

// MARK: - serve --dataset NAME=DIR

/// One `serve --dataset NAME=DIR`.
struct DatasetSpec: Equatable {
    var name: String
    var folder: URL

    /// `NAME=DIR`: a dataset name (the job-name rule) and a folder.
    static func parse(_ text: String) throws -> DatasetSpec {
        let shown = Sanitize.oneLine(text, limit: 300)
        guard let eq = text.firstIndex(of: "=") else {
            throw ValidationError("--dataset \"\(shown)\": expected NAME=DIR, e.g. --dataset coco=/data/coco/train2014")
        }
        let name = String(text[..<eq]), dir = String(text[text.index(after: eq)...])
        if let problem = JobConfig.nameProblem(name) {
            throw ValidationError("--dataset \"\(shown)\": the name \(problem)")
        }
        guard !dir.isEmpty else { throw ValidationError("--dataset \"\(shown)\": no folder after \"=\"") }
        return DatasetSpec(name: name, folder: URL(fileURLWithPath: dir).standardizedFileURL)
    }

    /// Every `--dataset` parsed; a name given twice is an error.
    static func parseAll(_ texts: [String]) throws -> [DatasetSpec] {
        var seen = Set<String>()
        return try texts.map { text in
            let spec = try parse(text)
            guard seen.insert(spec.name).inserted else {
                throw ValidationError("--dataset \(spec.name) is given twice; each dataset needs its own name")
            }
            return spec
        }
    }
}

/// Builds the datasets `serve` was given into the coordinator's artifact store, before it
/// listens: a progress line on standard error while each folder is scanned and packed, then
/// one summary line each on standard output. A folder that is missing, or in which no image
/// decodes, stops everything before anything is served.
enum ServeDatasets {
    static func build(_ specs: [DatasetSpec], config: CoordinatorConfig,
                      shardBytes: Int64 = DatasetBuilder.defaultShardBytes) throws -> [ServedDataset] {
        for spec in specs {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: spec.folder.path, isDirectory: &isDirectory), isDirectory.boolValue else {
                throw CLIError("--dataset \(spec.name): \(spec.folder.path) is not a folder")
            }
        }
        // Shards are written through the coordinator's tmp/ (same file system as artifacts/;
        // emptied only when the coordinator starts, after these builds).
        let store = ContentStore(root: config.artifactsDir, tmp: config.tmpDir)
        var builder = DatasetBuilder(store: store, cacheDirectory: config.datasetCacheDir)
        builder.shardBytes = shardBytes
        return try specs.map { spec in
            let build: TimedBuild
            do { build = try builder.buildShowingProgress(root: spec.folder, name: spec.name, prefix: "dataset \(spec.name): ") } catch {
                throw CLIError("--dataset \(spec.name): \(error)")
            }
            let r = build.result, m = r.manifest
            guard let size = store.size(of: r.digest) else { throw CLIError("--dataset \(spec.name): the manifest was not stored") }
            printOut(String(format: "dataset %@: %d files (%.1f MB), %d excluded, %d shards (%d written, %d reused), manifest %@; "
                            + "%d files hashed, %d from the cache; %.2f s",
                            m.name, m.totals.files, Double(m.totals.bytes) / 1e6, m.totals.excluded, m.totals.shards,
                            r.shardsWritten, r.shardsReused, String(r.digest.prefix(12)), r.scan.hashed, r.scan.fromCache,
                            build.seconds))
            for e in m.excluded.prefix(5) { printErr("dataset \(m.name): excluded \(Sanitize.oneLine(e.path)): \(Sanitize.oneLine(e.reason))") }
            if m.excluded.count > 5 { printErr("dataset \(m.name): … and \(m.excluded.count - 5) more excluded (listed in the manifest)") }
            let ref = DatasetRef(name: m.name, sha256: r.digest, size: size, files: m.totals.files, excluded: m.totals.excluded,
                                 bytes: m.totals.bytes, shards: m.totals.shards)
            return ServedDataset(ref: ref, shards: m.shards)
        }
    }
}
