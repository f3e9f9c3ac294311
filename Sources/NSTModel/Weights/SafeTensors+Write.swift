import Foundation
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

// MARK: - Writing

extension SafeTensors {
    /// Writes `tensors` as F32 with `metadata`, atomically: a temporary file in the same folder,
    /// fsync, rename over `url`, fsync of the folder. On failure `url` is left as it was.
    public static func write(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String] = [:],
                             to url: URL) throws(WeightsError) {
        let path = url.path
        let plan = try layOut(tensors, metadata: metadata, file: path)
        try writeAtomically(plan, path: path)
    }

    /// Writes this value's tensors and metadata to `url` (see the static `write`).
    public func write(to url: URL) throws(WeightsError) {
        try Self.write(tensors.map { (name: $0.key, tensor: $0.value) }, metadata: metadata, to: url)
    }

    /// The whole file image in memory (for small files and tests; `write` streams instead).
    public func data() throws(WeightsError) -> Data {
        let plan = try Self.layOut(tensors.map { (name: $0.key, tensor: $0.value) }, metadata: metadata, file: file)
        var out = Data(capacity: plan.totalBytes)
        out.append(contentsOf: plan.prefix)
        for (_, tensor) in plan.ordered { out.append(UnsafeBufferPointer(start: tensor.data, count: tensor.count)) }
        return out
    }

    /// Orders the tensors by the UTF-8 bytes of their names (as the reference does) and builds the
    /// length prefix and padded JSON header.
    private static func layOut(_ tensors: [(name: String, tensor: Tensor)], metadata: [String: String],
                               file: String) throws(WeightsError) -> WritePlan {
        let ordered = tensors.sorted { $0.name.utf8.lexicographicallyPrecedes($1.name.utf8) }
        for (a, b) in zip(ordered, ordered.dropFirst()) where a.name == b.name {
            throw .writeFailed(file: file, reason: "duplicate tensor name \(a.name)")
        }
        if ordered.contains(where: { $0.name == "__metadata__" }) {
            throw .writeFailed(file: file, reason: "the tensor name __metadata__ is reserved")
        }
        var fields: [String] = []
        if !metadata.isEmpty {
            let pairs = metadata.sorted { $0.key < $1.key }.map { jsonString($0.key) + ":" + jsonString($0.value) }
            fields.append("\"__metadata__\":{" + pairs.joined(separator: ",") + "}")
        }
        var offset = 0
        for (name, tensor) in ordered {
            let end = offset + tensor.count * MemoryLayout<Float>.size
            let shape = tensor.shape.map(String.init).joined(separator: ",")
            fields.append(jsonString(name) + ":{\"dtype\":\"F32\",\"shape\":[\(shape)],\"data_offsets\":[\(offset),\(end)]}")
            offset = end
        }
        var header = Array(("{" + fields.joined(separator: ",") + "}").utf8)
        while header.count % 8 != 0 { header.append(0x20) }
        let prefix = withUnsafeBytes(of: UInt64(header.count).littleEndian) { Array($0) } + header
        return WritePlan(prefix: prefix, ordered: ordered, totalBytes: prefix.count + offset)
    }

    private static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    private static func writeAtomically(_ plan: WritePlan, path: String) throws(WeightsError) {
        let target = URL(fileURLWithPath: path)
        let folder = target.deletingLastPathComponent().path
        let temporary = folder + "/." + target.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: .min ... .max))"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw .writeFailed(file: path, reason: "cannot create \(temporary): \(String(cString: strerror(errno)))")
        }
        var failure: String?
        let wroteAll = writeAll(fd, plan.prefix, count: plan.prefix.count)
            && plan.ordered.allSatisfy { writeAll(fd, $0.tensor.data, count: $0.tensor.count * MemoryLayout<Float>.size) }
        if !wroteAll {
            failure = "writing \(temporary): \(String(cString: strerror(errno)))"
        } else if fsync(fd) != 0 {
            failure = "fsync of \(temporary): \(String(cString: strerror(errno)))"
        }
        if close(fd) != 0, failure == nil { failure = "closing \(temporary): \(String(cString: strerror(errno)))" }
        if failure == nil, rename(temporary, path) != 0 {
            failure = "renaming \(temporary) to \(path): \(String(cString: strerror(errno)))"
        }
        if let failure {
            unlink(temporary)
            throw .writeFailed(file: path, reason: failure)
        }
        let folderFD = open(folder, O_RDONLY | O_DIRECTORY)  // make the rename itself durable
        if folderFD >= 0 { _ = fsync(folderFD); close(folderFD) }
    }
}


/// Writes all `count` bytes at `bytes`, retrying short writes and EINTR; false (errno set) on failure.
private func writeAll(_ fd: Int32, _ bytes: UnsafeRawPointer, count: Int) -> Bool {
    var done = 0
    while done < count {
        let n = write(fd, bytes + done, min(count - done, 1 << 30))
        if n < 0 && errno == EINTR { continue }
        guard n > 0 else { return false }
        done += n
    }
    return true
}

struct WritePlan { var prefix: [UInt8]; var ordered: [(name: String, tensor: Tensor)]; var totalBytes: Int }
