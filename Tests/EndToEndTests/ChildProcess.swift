import Foundation
import XCTest

// MARK: - Child processes

/// A real process started by a test, its standard output and error going to files (no pipes,
/// so a chatty child can never block). `kill()` in tearDown leaves no orphans.
final class ChildProcess: @unchecked Sendable {
    let label: String
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    /// Starts `executable` with `arguments`; with `namespace`, inside that network namespace
    /// (`ip netns exec NS executable …`, which execs, so the pid is the child's own).
    init(label: String, executable: URL, arguments: [String], environment: [String: String],
         logDir: URL, namespace: String? = nil) throws {
        self.label = label
        stdoutURL = logDir.appendingPathComponent("\(label).stdout")
        stderrURL = logDir.appendingPathComponent("\(label).stderr")
        guard FileManager.default.createFile(atPath: stdoutURL.path, contents: nil),
              FileManager.default.createFile(atPath: stderrURL.path, contents: nil) else {
            throw HarnessError("cannot create log files in \(logDir.path)")
        }
        if let namespace {
            process.executableURL = URL(fileURLWithPath: "/usr/sbin/ip")
            process.arguments = ["netns", "exec", namespace, executable.path] + arguments
        } else {
            process.executableURL = executable
            process.arguments = arguments
        }
        process.environment = environment
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        try process.run()
    }

    var pid: Int32 { process.processIdentifier }
    var isRunning: Bool { process.isRunning }
    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// Sends `signal` (SIGKILL by default) if the process still runs.
    func kill(_ signal: Int32 = SIGKILL) {
        if process.isRunning { _ = Foundation.kill(process.processIdentifier, signal) }
    }

    /// Waits for the exit; nil on timeout.
    @discardableResult
    func waitForExit(timeout: TimeInterval) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning {
            if Date() > deadline { return nil }
            usleep(20_000)
        }
        return process.terminationStatus
    }

    /// Kills and reaps the process.
    func killAndReap() {
        kill(SIGKILL)
        waitForExit(timeout: 10)
    }
}

// MARK: - One-shot commands

struct CommandResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a command to completion (killed after `timeout`), capturing its output.
func runCommand(_ executable: URL, _ arguments: [String], environment: [String: String],
                logDir: URL, namespace: String? = nil, timeout: TimeInterval = 60,
                file: StaticString = #filePath, line: UInt = #line) throws -> CommandResult {
    let label = "cmd-\(UUID().uuidString.prefix(8))"
    let child = try ChildProcess(label: label, executable: executable, arguments: arguments,
                                 environment: environment, logDir: logDir, namespace: namespace)
    guard let status = child.waitForExit(timeout: timeout) else {
        child.killAndReap()
        XCTFail("\(executable.lastPathComponent) \(arguments.joined(separator: " ")) did not finish in \(timeout) s",
                file: file, line: line)
        return CommandResult(status: -1, stdout: child.stdout, stderr: child.stderr)
    }
    let result = CommandResult(status: status, stdout: child.stdout, stderr: child.stderr)
    try? FileManager.default.removeItem(at: child.stdoutURL)
    try? FileManager.default.removeItem(at: child.stderrURL)
    return result
}

/// Polls `condition` every 50 ms until it holds; false on timeout.
func waitUntil(timeout: TimeInterval, _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if try condition() { return true }
        usleep(50_000)
    }
    return try condition()
}

/// A TCP port that was free a moment ago (bound to port 0 on loopback, read back, closed).
func freeTCPPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw HarnessError("socket() failed: errno \(errno)") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = 0
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    let bound = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
    guard bound == 0 else { throw HarnessError("bind() failed: errno \(errno)") }
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let named = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &len) }
    }
    guard named == 0 else { throw HarnessError("getsockname() failed: errno \(errno)") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
