import Coordinator
import CoordinatorAPI
import Foundation
import JobStore

// MARK: - Served datasets for tests

/// Writes a dataset as `serve --dataset` would store it into `artifactsDir` (`ab/abcdef…`): one
/// shard per element of `shards`, each the concatenation of its files, and a real manifest
/// (`DatasetManifest`, files named `img_NNN.png` in order) naming them. Returns what
/// `CoordinatorConfig.datasets` takes.
public func writeServedDataset(name: String, shards: [[Data]], into artifactsDir: URL) throws -> ServedDataset {
    var files: [DatasetManifest.File] = []
    var shardList: [DatasetManifest.Shard] = []
    for (index, members) in shards.enumerated() {
        var bytes = Data()
        for data in members {
            files.append(DatasetManifest.File(path: String(format: "img_%03d.png", files.count), size: Int64(data.count),
                                              sha256: sha256Hex(data), shard: index, offset: Int64(bytes.count),
                                              length: Int64(data.count)))
            bytes += data
        }
        shardList.append(DatasetManifest.Shard(sha256: try storeArtifact(bytes, in: artifactsDir), size: Int64(bytes.count)))
    }
    let manifest = DatasetManifest(name: name, files: files, excluded: [], shards: shardList)
    precondition(manifest.problems().isEmpty, "test fixture made a bad manifest: \(manifest.problems())")
    let json = try manifest.canonicalJSON()
    let digest = try storeArtifact(json, in: artifactsDir)
    let ref = DatasetRef(name: name, sha256: digest, size: Int64(json.count), files: manifest.totals.files,
                         excluded: manifest.totals.excluded, bytes: manifest.totals.bytes, shards: manifest.totals.shards)
    return ServedDataset(ref: ref, shards: shardList)
}

/// Stores `data` under its SHA-256 in the artifact layout; returns the digest.
@discardableResult
public func storeArtifact(_ data: Data, in artifactsDir: URL) throws -> String {
    let sha = sha256Hex(data)
    let dir = artifactsDir.appendingPathComponent(String(sha.prefix(2)), isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    try data.write(to: dir.appendingPathComponent(sha))
    return sha
}

/// `count` distinct small "images" (bytes only: the coordinator never decodes them).
public func fakeImages(_ count: Int, seed: UInt8) -> [Data] {
    (0..<count).map { i -> Data in
        let length = 100 + i * 7
        var bytes = [UInt8](repeating: 0, count: length)
        for j in 0..<length {
            let value: Int = j &* 31 &+ Int(seed) &* 17 &+ i
            bytes[j] = UInt8(truncatingIfNeeded: value)
        }
        return Data(bytes)
    }
}

extension Harness {
    /// A harness whose coordinator serves datasets `served(config.artifactsDir)` makes (the
    /// first is the default), registered in its store as `runCoordinator` does.
    public static func serving(token: String? = Harness.token, maxUploadBytes: Int64 = 1 << 20,
                               _ served: @escaping (URL) throws -> [ServedDataset]) async throws -> Harness {
        var made: Result<[ServedDataset], any Error> = .success([])
        let h = try Harness(token: token, maxUploadBytes: maxUploadBytes) { config in
            made = Result { try served(config.artifactsDir) }
            config.datasets = (try? made.get()) ?? []
        }
        do {
            _ = try made.get()
            try await registerServedDatasets(h.config, store: h.store)
        } catch {
            h.cleanUp()
            throw error
        }
        return h
    }
}
