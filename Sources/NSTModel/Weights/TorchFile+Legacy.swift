import Foundation

// MARK: - The legacy format (torch.save before 1.6, or _use_new_zipfile_serialization=False)

/// One stream of five pickles, then the storages:
///   1. the magic number 0x1950a86a20f9469cfc6c (a LONG1)
///   2. the protocol version 1001
///   3. sys_info: {"protocol_version": 1001, "little_endian": True, "type_sizes": {…}}
///   4. the state dict, whose storages are persistent ids ('storage', torch.FloatStorage, key,
///      location, numel, None)
///   5. the list of storage keys, in the order their data follows
/// and for each listed key: its element count as a little-endian int64, then its raw elements.
extension TorchFile {
    /// LONG1's little-endian bytes of torch's MAGIC_NUMBER.
    static let legacyMagic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let legacyProtocolVersion = 1001

    static func readLegacy(data: Data, file: String, keys: Set<String>? = nil) throws(WeightsError) -> TorchFile {
        func bad(_ reason: String) -> WeightsError { .badTorchFile(file: file, reason: reason) }
        var unpickler = Unpickler(data: data, file: file, source: "the legacy header")
        guard case .bigInt(let magic) = try unpickler.load(), magic == legacyMagic else {
            throw bad("a pickle without torch.save's magic number: not a PyTorch file")
        }
        guard case .int(legacyProtocolVersion) = try unpickler.load() else {
            throw bad("legacy protocol version is not \(legacyProtocolVersion)")
        }
        guard case .dict(let sysInfo) = try unpickler.load() else { throw bad("the legacy sys_info is not a dict") }
        if case .bool(false)? = sysInfo["little_endian"] {
            throw bad("written on a big-endian machine; only little-endian files are supported "
                      + "(load and re-save the file with torch.save on a little-endian machine)")
        }
        unpickler.source = "the pickled state dict"
        let root = try unpickler.load()
        unpickler.source = "the legacy storage key list"
        guard case .list(let keyList) = try unpickler.load() else { throw bad("the legacy storage key list is not a list") }

        // Walk the storages in the listed order; each one's element size comes from its persistent id.
        var ranges: [String: Range<Int>] = [:]
        var position = unpickler.position
        for item in keyList.items {
            guard case .string(let key) = item else { throw bad("storage key \(item.kind) is not a string") }
            guard ranges[key] == nil else { throw bad("storage \(key) is listed twice") }
            guard let storage = unpickler.storages[key] else { throw bad("storage \(key) is listed but nothing uses it") }
            guard data.endIndex - position >= 8 else { throw bad("truncated: the size of storage \(key) is missing") }
            let count = data[position ..< position + 8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            guard count == UInt64(storage.count) else {
                throw bad("storage \(key) holds \(count) elements, its tensors say \(storage.count)")
            }
            position += 8
            let (bytes, overflow) = storage.count.multipliedReportingOverflow(by: storage.dtype.elementBytes)
            guard !overflow, bytes <= data.endIndex - position else {
                throw bad("truncated: storage \(key) needs \(storage.count) \(storage.dtype) elements, "
                          + "\(data.endIndex - position) bytes are left")
            }
            ranges[key] = position ..< position + bytes
            position += bytes
        }
        return try assemble(root, format: .legacy, file: file, keys: keys) { (storage, _) throws(WeightsError) -> Data in
            guard let range = ranges[storage.key] else { throw bad("storage \(storage.key) is not in the storage list") }
            return data[range]
        }
    }
}
