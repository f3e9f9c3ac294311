import Foundation
import XCTest

#if canImport(Glibc)
import Glibc
#endif

// MARK: - Headless Chromium over the DevTools protocol

/// Debian's headless Chromium driven through the Chrome DevTools Protocol on a pipe
/// (`--remote-debugging-pipe`: commands in on fd 3, answers out on fd 4, each JSON message
/// ended by a NUL byte), so that a test can type into a form, click and read cookies like a
/// user, without a WebSocket library. One page per instance.
public final class Chromium: @unchecked Sendable {
    public struct ProtocolError: Error, CustomStringConvertible {
        public let description: String
    }

    private let pid: pid_t
    private let toBrowser: Int32
    private let fromBrowser: Int32
    private let lock = NSCondition()
    private var answers: [Int: [String: Any]] = [:]
    /// The browser closed its end of the pipe.
    private var closed = false
    private var quitting = false
    private var nextID = 0
    private var session = ""
    private let profile: URL

    /// The `chromium` executable, or an `XCTSkip` saying how to get it.
    public static func executable() throws -> URL {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin").split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent("chromium")
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        throw XCTSkip("chromium is not installed (apt-get install chromium): the real-browser check is skipped")
    }

    /// Starts Chromium with a fresh profile in `work` and opens one blank page.
    public init(work: URL, windowSize: (Int, Int) = (1200, 1000)) throws {
        let chromium = try Self.executable()
        profile = work.appendingPathComponent("chromium-profile-\(UUID().uuidString)")
        var commands: [Int32] = [0, 0], answers: [Int32] = [0, 0]
        guard pipe(&commands) == 0, pipe(&answers) == 0 else {
            throw ProtocolError(description: "pipe failed: errno \(errno)")
        }
        // Only fds 3 and 4 (dup2'd below) reach the browser.
        for fd in commands + answers { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, commands[0], 3)
        posix_spawn_file_actions_adddup2(&actions, answers[1], 4)
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0)
        let arguments = [chromium.path, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                         "--remote-debugging-pipe", "--no-first-run", "--user-data-dir=\(profile.path)",
                         "--window-size=\(windowSize.0),\(windowSize.1)", "about:blank"]
        var argv = arguments.map { strdup($0) } + [nil]
        defer { for p in argv { free(p) } }
        var child: pid_t = 0
        let rc = posix_spawn(&child, chromium.path, &actions, nil, &argv, environ)
        close(commands[0])
        close(answers[1])
        guard rc == 0 else {
            close(commands[1]); close(answers[0])
            throw ProtocolError(description: "cannot start chromium: posix_spawn \(rc)")
        }
        pid = child
        toBrowser = commands[1]
        fromBrowser = answers[0]
        Thread.detachNewThread { [self] in readLoop() }
        let target = try call("Target.createTarget", ["url": "about:blank"], inSession: false)
        guard let targetID = target["targetId"] as? String else { throw ProtocolError(description: "no targetId: \(target)") }
        let attached = try call("Target.attachToTarget", ["targetId": targetID, "flatten": true], inSession: false)
        guard let id = attached["sessionId"] as? String else { throw ProtocolError(description: "no sessionId: \(attached)") }
        session = id
    }

    deinit { quit() }

    /// Stops the browser and removes its profile.
    public func quit() {
        lock.lock()
        let again = quitting
        quitting = true
        lock.unlock()
        if again { return }
        kill(pid, SIGKILL)
        var status: Int32 = 0
        waitpid(pid, &status, 0)
        close(toBrowser)
        close(fromBrowser)
        try? FileManager.default.removeItem(at: profile)
    }

    // MARK: - Commands

    /// Sends a DevTools command (to the page unless `inSession` is false) and returns its result.
    @discardableResult
    public func call(_ method: String, _ params: [String: Any] = [:], inSession: Bool = true,
                     timeout: TimeInterval = 30) throws -> [String: Any] {
        lock.lock()
        nextID += 1
        let id = nextID
        lock.unlock()
        var message: [String: Any] = ["id": id, "method": method, "params": params]
        if inSession { message["sessionId"] = session }
        var data = try JSONSerialization.data(withJSONObject: message)
        data.append(0)
        try data.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(toBrowser, raw.baseAddress! + offset, raw.count - offset)
                guard n > 0 else { throw ProtocolError(description: "chromium closed its pipe (write: errno \(errno))") }
                offset += n
            }
        }
        let deadline = Date().addingTimeInterval(timeout)
        lock.lock()
        defer { lock.unlock() }
        while answers[id] == nil {
            if closed { throw ProtocolError(description: "chromium exited during \(method)") }
            guard lock.wait(until: deadline) else { throw ProtocolError(description: "no answer to \(method) within \(timeout) s") }
        }
        let answer = answers.removeValue(forKey: id)!
        if let error = answer["error"] { throw ProtocolError(description: "\(method): \(error)") }
        return answer["result"] as? [String: Any] ?? [:]
    }

    /// Evaluates `expression` in the page and returns its value (JSON-compatible).
    public func evaluate(_ expression: String) throws -> Any? {
        let result = try call("Runtime.evaluate", ["expression": expression, "returnByValue": true, "awaitPromise": true])
        if let exception = result["exceptionDetails"] { throw ProtocolError(description: "\(expression): \(exception)") }
        return (result["result"] as? [String: Any])?["value"]
    }

    /// Opens `url` and waits until the page has loaded.
    public func navigate(_ url: String) throws {
        try call("Page.navigate", ["url": url])
        try waitFor("the page at \(url) to load") { try self.evaluate("document.readyState") as? String == "complete" }
    }

    /// Polls `condition` every 100 ms for at most `timeout` seconds.
    public func waitFor(_ what: String, timeout: TimeInterval = 20, _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if (try? condition()) == true { return }
            usleep(100_000)
        }
        throw ProtocolError(description: "timed out waiting for \(what)")
    }

    /// The page's path (`location.pathname`) once loaded.
    public func path() throws -> String? {
        guard try evaluate("document.readyState") as? String == "complete" else { return nil }
        return try evaluate("location.pathname") as? String
    }

    /// The page's HTML.
    public func html() throws -> String { try evaluate("document.documentElement.outerHTML") as? String ?? "" }

    /// Every cookie the browser holds.
    public func cookies() throws -> [[String: Any]] {
        try call("Storage.getCookies", inSession: false)["cookies"] as? [[String: Any]] ?? []
    }

    /// Types `text` into the focused element, as a keyboard would.
    public func type(_ text: String) throws { try call("Input.insertText", ["text": text]) }

    /// Chooses `paths` in the file input matching `selector`, as a user picking files would.
    public func setFiles(_ selector: String, _ paths: [String]) throws {
        let document = try call("DOM.getDocument")
        guard let root = (document["root"] as? [String: Any])?["nodeId"] as? Int else {
            throw ProtocolError(description: "no document node")
        }
        let found = try call("DOM.querySelector", ["nodeId": root, "selector": selector])
        guard let node = found["nodeId"] as? Int, node != 0 else { throw ProtocolError(description: "no element \(selector)") }
        try call("DOM.setFileInputFiles", ["files": paths, "nodeId": node])
    }

    /// A PNG of the page.
    public func screenshot() throws -> Data {
        let result = try call("Page.captureScreenshot", ["format": "png"])
        guard let base64 = result["data"] as? String, let data = Data(base64Encoded: base64) else {
            throw ProtocolError(description: "no screenshot data")
        }
        return data
    }

    // MARK: - Reading

    private func readLoop() {
        var pending = Data()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = read(fromBrowser, &buffer, buffer.count)
            if n <= 0 { break }
            pending.append(contentsOf: buffer[0..<n])
            while let end = pending.firstIndex(of: 0) {
                let message = pending[pending.startIndex..<end]
                pending = Data(pending[(end + 1)...])
                guard let object = try? JSONSerialization.jsonObject(with: message) as? [String: Any],
                      let id = object["id"] as? Int else { continue }  // events are not needed
                lock.lock()
                answers[id] = object
                lock.broadcast()
                lock.unlock()
            }
        }
        lock.lock()
        closed = true
        lock.broadcast()
        lock.unlock()
    }
}
