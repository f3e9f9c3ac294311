import Foundation

/// A TCP proxy on 127.0.0.1 that forwards to `target` and slows what clients send to
/// `bytesPerSecond` per connection (answers go back at full speed): a slow uplink, such as a
/// worker uploading checkpoints over a few Mbit/s. Stop with `stop()`.
final class ThrottledProxy: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let targetPort: Int
    private let bytesPerSecond: Int
    private let lock = NSLock()
    private var sockets: [Int32] = []
    private var stopped = false

    init(targetPort: Int, bytesPerSecond: Int) throws {
        self.targetPort = targetPort
        self.bytesPerSecond = bytesPerSecond
        (listener, port) = try listenOnLoopback(backlog: 64, what: "proxy")
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    static func loopback(port: Int) -> sockaddr_in {
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = UInt16(port).bigEndian
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        return addr
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var addr = Self.loopback(port: targetPort)
            let ok = withUnsafePointer(to: &addr) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if ok != 0 { close(client); close(upstream); continue }
            lock.withLock { sockets += [client, upstream] }
            Thread.detachNewThread { [self] in pump(from: client, to: upstream, throttled: true) }
            Thread.detachNewThread { [self] in pump(from: upstream, to: client, throttled: false) }
        }
    }

    private func pump(from source: Int32, to sink: Int32, throttled: Bool) {
        let chunk = throttled ? max(1, min(16 << 10, bytesPerSecond / 20)) : 64 << 10
        var buffer = [UInt8](repeating: 0, count: chunk)
        while true {
            let n = read(source, &buffer, chunk)
            if n <= 0 { break }
            var sent = 0
            while sent < n {
                let m = buffer[sent..<n].withUnsafeBytes { send(sink, $0.baseAddress, n - sent, Int32(MSG_NOSIGNAL)) }
                if m <= 0 { break }
                sent += m
            }
            if sent < n { break }
            if throttled { usleep(UInt32(Double(n) / Double(bytesPerSecond) * 1e6)) }
        }
        shutdown(sink, Int32(SHUT_WR))
    }

    func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
            for s in sockets { shutdown(s, Int32(SHUT_RDWR)) }
        }
    }

    deinit { stop() }
}

/// A TCP socket listening on 127.0.0.1 at a free port: (socket, port).
func listenOnLoopback(backlog: Int32, what: String) throws -> (Int32, Int) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var one: Int32 = 1
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
    var addr = ThrottledProxy.loopback(port: 0)
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0, listen(fd, backlog) == 0 else {
        close(fd)
        throw HarnessError("\(what): cannot listen: \(errno)")
    }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    return (fd, Int(UInt16(bigEndian: addr.sin_port)))
}
