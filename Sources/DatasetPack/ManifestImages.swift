import CoordinatorAPI
import Foundation
import NSTModel

extension DatasetManifest {
    /// The training order as `PackedImage`s: each file read from its shard in `store`, or from
    /// the local file `inPlace` gives for its index; each excluded file skipped with its reason.
    /// Every image carries its SHA-256, checked on each read.
    public func packedImages(store: ContentStore, inPlace: [Int: URL] = [:]) -> [PackedImage] {
        trainingOrder.map { entry in
            switch entry {
            case .file(let i):
                let f = files[i]
                if let local = inPlace[i] {
                    return PackedImage(path: f.path, source: .bytes(url: local, offset: 0, length: f.length, sha256: f.sha256))
                }
                return PackedImage(path: f.path, source: .bytes(url: store.url(for: shards[f.shard].sha256), offset: f.offset,
                                                               length: f.length, sha256: f.sha256))
            case .excluded(let j):
                return PackedImage(path: excluded[j].path, source: .excluded(reason: excluded[j].reason))
            }
        }
    }
}

extension PackedImages {
    /// Training images of the manifest `digest`: shards from `store` (waiting for missing ones
    /// through `waitUntilAvailable`), local files from `inPlace`, each image's SHA-256 checked.
    public convenience init(manifest: DatasetManifest, digest: String, store: ContentStore, inPlace: [Int: URL] = [:],
                            maxImages: Int? = nil, waitUntilAvailable: @escaping Availability = { _ in }) {
        self.init(images: manifest.packedImages(store: store, inPlace: inPlace),
                  description: "dataset \(manifest.name) (manifest \(digest.prefix(12)))",
                  maxImages: maxImages, digest: { FileDigest.sha256(of: $0) }, waitUntilAvailable: waitUntilAvailable)
    }
}
