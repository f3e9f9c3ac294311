import CoordinatorAPI
import Foundation
import NSTModel

/// Why a dataset could not be built, stored or matched. A file that does not decode is not an
/// error (it is listed as excluded); these are.
public enum DatasetPackError: Error, CustomStringConvertible, Equatable {
    /// The folder is missing or not a folder.
    case folder(ImageError)
    /// `name` breaks the dataset-name rule (that of job names).
    case badName(name: String, problem: String)
    /// No file of the folder decodes.
    case noImages(root: String, excluded: Int)
    /// A file's bytes changed between the scan and the packing: run again.
    case fileChanged(path: String)
    /// A file could not be read while packing.
    case unreadable(path: String, reason: String)
    /// The content-addressed store could not be written.
    case store(path: String, reason: String)
    /// The scan cache could not be written.
    case cache(path: String, reason: String)
    /// The shard size is out of range.
    case badShardSize(Int64)

    public var description: String {
        switch self {
        case .folder(let e): return e.description
        case let .badName(name, problem): return "dataset name \"\(Sanitize.oneLine(name, limit: 200))\": \(problem)"
        case let .noImages(root, excluded):
            return "no image under \(root) decodes (\(excluded) JPEG/PNG files excluded; looked for .jpg, .jpeg and .png, recursively)"
        case .fileChanged(let path): return "\(path) changed while the dataset was being packed; run again"
        case let .unreadable(path, reason): return "cannot read \(path): \(reason)"
        case let .store(path, reason): return "cannot write \(path): \(reason)"
        case let .cache(path, reason): return "cannot write the scan cache \(path): \(reason)"
        case .badShardSize(let n): return "the shard size must be from 1 byte to \(DatasetLimits.shardBytes) bytes, got \(n)"
        }
    }
}

// MARK: - POSIX file helpers

/// Size and modification time (nanoseconds since 1970) of the file at `path`, following
/// symbolic links; nil with the reason when it cannot be stat'ed or is not a regular file.
func fileStatus(_ path: String) -> Result<(size: Int64, mtime: Int64), LocalReason> {
    var st = stat()
    guard stat(path, &st) == 0 else { return .failure(LocalReason(errnoText())) }
    guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(LocalReason("not a regular file")) }
    #if canImport(Darwin)
    let t = st.st_mtimespec
    #else
    let t = st.st_mtim
    #endif
    return .success((Int64(st.st_size), Int64(t.tv_sec) &* 1_000_000_000 &+ Int64(t.tv_nsec)))
}

/// A file system error's one-line reason, without the path (it goes into manifests, which must
/// not depend on where the folder is).
struct LocalReason: Error, Equatable {
    let text: String
    init(_ text: String) { self.text = text }
}

/// The whole file at `path` (`expected` bytes, as stat'ed); a file that changed size meanwhile
/// gives what is there.
func readFile(_ path: String, expected: Int64) throws(LocalReason) -> Data {
    let fd = open(path, O_RDONLY)
    guard fd >= 0 else { throw LocalReason(errnoText()) }
    defer { close(fd) }
    var data = Data(count: Int(max(0, expected)))
    var got = 0
    let ok: Bool = data.withUnsafeMutableBytes { raw in
        while got < raw.count {
            let n = read(fd, raw.baseAddress! + got, raw.count - got)
            if n < 0 { if errno == EINTR { continue }; return false }
            if n == 0 { break }
            got += n
        }
        return true
    }
    guard ok else { throw LocalReason(errnoText()) }
    if got < data.count { data.removeSubrange(got...) }
    return data
}
