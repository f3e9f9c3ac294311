import Foundation
import ZIPFoundation

// MARK: - The zip format (torch.save since PyTorch 1.6)

/// Records: `<archive>/data.pkl` (the pickled state dict), `<archive>/data/<key>` (one per storage, raw
/// little-endian elements, stored uncompressed), `<archive>/byteorder` ("little"; absent before 1.10),
/// `<archive>/version` and a few more we do not need. `<archive>` is any one folder name (torch uses the
/// file's stem or "archive").
extension TorchFile {
    static func readZip(url: URL, file: String, keys: Set<String>? = nil) throws(WeightsError) -> TorchFile {
        func bad(_ reason: String) -> WeightsError { .badTorchFile(file: file, reason: reason) }
        let archive: Archive
        do {
            archive = try Archive(url: url, accessMode: .read)
        } catch {
            throw bad("not a readable zip archive (\(error); truncated?)")
        }
        var records: [String: Entry] = [:]
        for entry in archive { records[entry.path] = entry }
        let pickles = records.keys.filter { $0.hasSuffix("/data.pkl") && $0.split(separator: "/").count == 2 }
        guard pickles.count == 1, let picklePath = pickles.first else {
            throw bad(pickles.isEmpty
                ? "no <archive>/data.pkl record: a zip, but not a state dict written by torch.save"
                : "several data.pkl records: \(pickles.sorted().joined(separator: ", "))")
        }
        let prefix = String(picklePath.dropLast("/data.pkl".count))
        let fileBytes = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
        let reader = ZipRecords(archive: archive, file: file, fileBytes: fileBytes)

        if let entry = records["\(prefix)/byteorder"] {
            let order = String(decoding: try reader.bytes(of: entry, keeping: 16), as: UTF8.self)
            guard order == "little" else {
                throw bad("the storages are stored \(order)-endian; only little-endian files are supported "
                          + "(load and re-save the file with torch.save on a little-endian machine)")
            }
        }
        let pickleEntry = records[picklePath]!
        guard pickleEntry.uncompressedSize <= UInt64(maxPickleBytes) else {
            throw bad("\(picklePath) is \(pickleEntry.uncompressedSize) bytes, over the \(maxPickleBytes)-byte limit")
        }
        let pickle = try reader.bytes(of: pickleEntry, keeping: maxPickleBytes)
        var unpickler = Unpickler(data: pickle, file: file, source: picklePath)
        let root = try unpickler.load()
        return try assemble(root, format: .zip, file: file, keys: keys) { (storage, needed) throws(WeightsError) -> Data in
            let path = "\(prefix)/data/\(storage.key)"
            guard let entry = records[path] else { throw bad("record \(path) of storage \(storage.key) is missing") }
            return try reader.bytes(of: entry, keeping: needed)
        }
    }
}

/// Reads records of an archive with every failure as a `WeightsError` naming the record.
private struct ZipRecords {
    let archive: Archive
    let file: String
    /// The archive's own size: memory is reserved for at most this much before bytes actually arrive,
    /// whatever size the zip directory claims.
    let fileBytes: Int

    private struct Overrun: Error {}

    /// The first `keeping` bytes of the record (all of it if shorter). The whole record is read, so
    /// its CRC-32 is checked, and it must have exactly the size the directory gives.
    func bytes(of entry: Entry, keeping limit: Int) throws(WeightsError) -> Data {
        func bad(_ reason: String) -> WeightsError { .badTorchFile(file: file, reason: "record \(entry.path): \(reason)") }
        guard entry.type == .file else { throw bad("not a file") }
        let size = entry.uncompressedSize
        var data = Data()
        data.reserveCapacity(Int(min(UInt64(limit), size, UInt64(fileBytes))))
        var total: UInt64 = 0
        do {
            _ = try archive.extract(entry, bufferSize: 1 << 20, skipCRC32: false) { chunk in
                total += UInt64(chunk.count)
                guard total <= size else { throw Overrun() }
                let room = limit - data.count
                if room > 0 { data.append(chunk.prefix(room)) }
            }
        } catch Archive.ArchiveError.invalidCRC32 {
            throw bad("corrupt (CRC-32 mismatch)")
        } catch is Overrun {
            throw bad("holds more than the \(size) bytes the zip directory announces")
        } catch {
            throw bad("cannot be read (\(error))")
        }
        guard total == size else { throw bad("truncated: \(total) of \(size) bytes") }
        return data
    }
}
