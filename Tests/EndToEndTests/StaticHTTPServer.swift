import Foundation

/// A minimal HTTP/1.1 server on 127.0.0.1 for download tests: answers every GET with `body`,
/// or, when `cutAfter` is set, announces the whole body but sends only that many bytes and
/// closes the connection (a download cut halfway). One connection at a time. Stop with `stop()`.
final class StaticHTTPServer: @unchecked Sendable {
    let port: Int
    private let listener: Int32
    private let lock = NSLock()
    private var body: Data
    private var cutAfter: Int?
    private var paths: [String] = []
    private var stopped = false

    init(body: Data, cutAfter: Int? = nil) throws {
        self.body = body
        self.cutAfter = cutAfter
        (listener, port) = try listenOnLoopback(backlog: 16, what: "http server")
        Thread.detachNewThread { [self] in acceptLoop() }
    }

    /// The paths requested so far.
    var requested: [String] { lock.withLock { paths } }

    func url(_ path: String) -> String { "http://127.0.0.1:\(port)\(path)" }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 { return }
            serve(client)
            close(client)
        }
    }

    private func serve(_ fd: Int32) {
        var request = [UInt8]()
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            let n = read(fd, &buffer, buffer.count)
            if n <= 0 { return }
            request += buffer[0..<n]
        }
        let firstLine = String(decoding: request, as: UTF8.self).split(separator: "\r\n").first ?? ""
        let parts = firstLine.split(separator: " ")
        let (body, cut) = lock.withLock { () -> (Data, Int?) in
            paths.append(parts.count > 1 ? String(parts[1]) : "")
            return (self.body, cutAfter)
        }
        let header = "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: \(body.count)\r\nConnection: close\r\n\r\n"
        sendAll(fd, Data(header.utf8))
        sendAll(fd, cut.map { body.prefix($0) } ?? body)
        shutdown(fd, Int32(SHUT_WR))
    }

    private func sendAll(_ fd: Int32, _ data: Data) {
        data.withUnsafeBytes { raw in
            var sent = 0
            while sent < raw.count {
                let m = send(fd, raw.baseAddress! + sent, raw.count - sent, Int32(MSG_NOSIGNAL))
                if m <= 0 { return }
                sent += m
            }
        }
    }

    func stop() {
        lock.withLock {
            guard !stopped else { return }
            stopped = true
            shutdown(listener, Int32(SHUT_RDWR))
            close(listener)
        }
    }

    deinit { stop() }
}
