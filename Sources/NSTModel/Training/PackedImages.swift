import Foundation

// MARK: - PackedImage

/// One image of a packed dataset, in training order: `length` bytes at `offset` of `url` (a
/// shard, or with offset 0 a local file used in place), or a listed file that does not decode.
public struct PackedImage: Sendable, Equatable {
    public enum Source: Sendable, Equatable {
        /// The encoded image (JPEG or PNG) is `length` bytes at `offset` in `url`; when `sha256`
        /// is given, the bytes are checked against it on every read.
        case bytes(url: URL, offset: Int64, length: Int64, sha256: String?)
        /// A file the dataset lists but could not decode when it was built; skipped with this
        /// reason, as `ImageFolder` skips an unreadable file, so that positions never shift.
        case excluded(reason: String)
    }

    /// The image's path relative to the dataset root, `/`-separated (for messages).
    public var path: String
    public var source: Source

    public init(path: String, source: Source) {
        self.path = path
        self.source = source
    }
}

/// Why a packed image's bytes could not be read. Training stops on these (a job must train on
/// exactly the data it pinned), unlike an image that does not decode, which is skipped.
public enum PackedImagesError: Error, CustomStringConvertible, Equatable {
    /// The file holding the image is not there and the availability hook did not provide it.
    case unavailable(path: String, file: String, reason: String)
    /// The file ends before `offset + length`.
    case shortRead(path: String, file: String, offset: Int64, expected: Int64, got: Int64)
    /// The file could not be opened or read.
    case unreadable(path: String, file: String, reason: String)
    /// The bytes do not have the SHA-256 the dataset promised.
    case digestMismatch(path: String, file: String, expected: String, actual: String)

    /// The file whose bytes were bad (short, unreadable, or not matching their digest): one a
    /// fetcher may fetch again. Nil for `unavailable` (the fetcher itself gave up).
    public var badFile: String? {
        switch self {
        case .unavailable: return nil
        case let .shortRead(_, file, _, _, _), let .unreadable(_, file, _), let .digestMismatch(_, file, _, _): return file
        }
    }

    public var description: String {
        switch self {
        case let .unavailable(path, file, reason):
            return "image \(path): \(file) is not available: \(reason)"
        case let .shortRead(path, file, offset, expected, got):
            return "image \(path): \(file) holds \(got) of the \(expected) bytes at offset \(offset)"
        case let .unreadable(path, file, reason):
            return "image \(path): cannot read \(file): \(reason)"
        case let .digestMismatch(path, file, expected, actual):
            return "image \(path) in \(file) has sha256 \(actual), expected \(expected)"
        }
    }
}

// MARK: - PackedImages

/// A dataset read from packed files (shards of concatenated JPEG/PNG files, see
/// docs/datasets.md) and local files used in place, decoded from memory.
///
/// Before reading an image whose file is not on disk yet, `loadBatch` calls the availability
/// hook with that file's URL on the loading thread; the hook returns once the file is there
/// (a downloader renames each verified shard into place) or throws. So training can start
/// after the first shard while the others are still arriving. A file seen once is not checked
/// again.
public final class PackedImages: TrainingImages, @unchecked Sendable {
    /// Blocks until the file at the URL exists, or throws.
    public typealias Availability = @Sendable (URL) throws -> Void
    /// Lowercase-hex SHA-256 of some bytes (NSTModel has no hash of its own; DatasetPack passes
    /// swift-crypto's).
    public typealias Digest = @Sendable (Data) -> String

    public let images: [PackedImage]
    public let description: String
    let waitUntilAvailable: Availability
    let digest: Digest?

    /// Guards `present` and `handle` (loads come from one thread; the lock keeps it honest).
    private let lock = NSLock()
    private var present: Set<String> = []
    private var handle: (path: String, file: FileHandle)?

    /// - Parameters:
    ///   - images: training order; cut to the first `maxImages` when given.
    ///   - description: for messages, e.g. `dataset coco (manifest 3f2a…)`.
    ///   - digest: when given, each image with a `sha256` is checked on every read.
    ///   - waitUntilAvailable: called before reading from a file that does not exist yet.
    public init(images: [PackedImage], description: String, maxImages: Int? = nil, digest: Digest? = nil,
                waitUntilAvailable: @escaping Availability = { _ in }) {
        for image in images {
            if case let .bytes(_, offset, length, _) = image.source {
                precondition(offset >= 0 && length >= 0, "image \(image.path) at offset \(offset), length \(length)")
            }
        }
        self.images = maxImages.map { Array(images.prefix(max($0, 0))) } ?? images
        self.description = description
        self.digest = digest
        self.waitUntilAvailable = waitUntilAvailable
    }

    deinit { try? handle?.file.close() }

    public var count: Int { images.count }

    public func loadBatch(start: Int, count: Int, size: Int, into: Tensor) throws
        -> (loaded: Int, skipped: [(path: String, reason: String)])
    {
        checkBatchArguments(start: start, count: count, size: size, into: into)
        let end = min(start + count, images.count)
        guard start < end else { return (0, []) }
        var loaded = 0
        var skipped: [(path: String, reason: String)] = []
        for image in images[start..<end] {
            switch image.source {
            case .excluded(let reason):
                skipped.append((path: image.path, reason: reason))
            case let .bytes(url, offset, length, sha256):
                let data = try read(image.path, url: url, offset: offset, length: length, sha256: sha256)
                do {
                    try RGBImage(decoding: data, name: image.path).writeTrainingRow(loaded, size: size, of: into)
                    loaded += 1
                } catch {
                    skipped.append((path: image.path, reason: error.description))
                }
            }
        }
        return (loaded, skipped)
    }

    public func image(at index: Int) throws -> RGBImage {
        precondition(images.indices.contains(index), "image \(index) of \(images.count)")
        let image = images[index]
        switch image.source {
        case .excluded(let reason):
            throw ImageError.unreadable(path: image.path, reason: reason)
        case let .bytes(url, offset, length, sha256):
            return try RGBImage(decoding: read(image.path, url: url, offset: offset, length: length, sha256: sha256),
                                name: image.path)
        }
    }

    // MARK: - Reading

    /// The `length` bytes at `offset` of `url`, after waiting for the file if need be.
    func read(_ path: String, url: URL, offset: Int64, length: Int64, sha256: String?) throws(PackedImagesError) -> Data {
        let file = url.path
        try ensureAvailable(path, file: file, url: url)
        let data: Data
        do {
            data = try lock.withLock {
                if handle?.path != file {
                    try? handle?.file.close()
                    handle = nil
                    handle = (file, try FileHandle(forReadingFrom: url))
                }
                let h = handle!.file
                try h.seek(toOffset: UInt64(offset))
                return try h.read(upToCount: Int(length)) ?? Data()
            }
        } catch {
            throw .unreadable(path: path, file: file, reason: (error as NSError).localizedDescription)
        }
        guard Int64(data.count) == length else {
            throw .shortRead(path: path, file: file, offset: offset, expected: length, got: Int64(data.count))
        }
        if let sha256, let digest {
            let actual = digest(data)
            guard actual == sha256 else { throw .digestMismatch(path: path, file: file, expected: sha256, actual: actual) }
        }
        return data
    }

    /// Forgets what is known of `file` (it was replaced: a bad shard fetched again), so the next
    /// read waits for it and opens it afresh.
    public func forget(_ file: String) {
        lock.withLock {
            present.remove(file)
            if handle?.path == file {
                try? handle?.file.close()
                handle = nil
            }
        }
    }

    private func ensureAvailable(_ path: String, file: String, url: URL) throws(PackedImagesError) {
        if lock.withLock({ present.contains(file) }) { return }
        if !FileManager.default.fileExists(atPath: file) {
            do {
                try waitUntilAvailable(url)
            } catch {
                throw .unavailable(path: path, file: file, reason: String(describing: error))
            }
            guard FileManager.default.fileExists(atPath: file) else {
                throw .unavailable(path: path, file: file, reason: "still missing after waiting for it")
            }
        }
        _ = lock.withLock { present.insert(file) }
    }
}
