import Foundation

/// Fixed-size slots of floats in a temporary file, written and read with pwrite/pread: the
/// tiles' activations between the passes of `inferTiled`. The file is unlinked as soon as it is
/// open, so it disappears with the process however that ends; its pages live in the page cache
/// (or on disk), not in the process's resident memory.
final class SpillFile {
    let path: String
    let slotFloats: Int
    private let fd: Int32

    init(directory: URL, slotFloats: Int) throws(StylizeError) {
        var template = Array(directory.appendingPathComponent("nst-tiles-XXXXXX").path.utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        let path = String(cString: template)
        guard fd >= 0 else { throw .spill(path: path, reason: String(cString: strerror(errno))) }
        unlink(path)
        self.fd = fd
        self.path = path
        self.slotFloats = slotFloats
    }

    deinit { close(fd) }

    func write(slot: Int, from p: UnsafePointer<Float>, count: Int) throws(StylizeError) {
        precondition(count <= slotFloats, "\(count) floats in a slot of \(slotFloats)")
        var done = 0
        let total = count * 4, raw = UnsafeRawPointer(p), base = off_t(slot) * off_t(slotFloats * 4)
        while done < total {
            let n = pwrite(fd, raw + done, total - done, base + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .spill(path: path, reason: n < 0 ? String(cString: strerror(errno)) : "short write") }
            done += n
        }
    }

    func read(slot: Int, into p: UnsafeMutablePointer<Float>, count: Int) throws(StylizeError) {
        precondition(count <= slotFloats, "\(count) floats in a slot of \(slotFloats)")
        var done = 0
        let total = count * 4, raw = UnsafeMutableRawPointer(p), base = off_t(slot) * off_t(slotFloats * 4)
        while done < total {
            let n = pread(fd, raw + done, total - done, base + off_t(done))
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { throw .spill(path: path, reason: n < 0 ? String(cString: strerror(errno)) : "unexpected end of file") }
            done += n
        }
    }
}
