import Foundation

/// The demo's state folder: created on first use, and emptied of the previous demo's job table
/// and artifacts on the next (marked by `.nst-demo`, so an unrelated folder is never touched).
enum DemoFolder {
    static let marker = ".nst-demo"

    static func prepare(_ dir: URL) throws {
        let fm = FileManager.default
        let markerURL = dir.appendingPathComponent(marker)
        if fm.fileExists(atPath: dir.path) {
            let contents = (try? fm.contentsOfDirectory(atPath: dir.path)) ?? []
            if !contents.isEmpty && !fm.fileExists(atPath: markerURL.path) {
                throw CLIError("\(dir.path) exists and was not made by `orchestrator demo`; choose another --state-dir")
            }
            // Keep the generated dataset; start the rest afresh.
            for name in contents where name != "dataset" && name != marker {
                try? fm.removeItem(at: dir.appendingPathComponent(name))
            }
        }
        do {
            try fm.createDirectory(at: dir, withIntermediateDirectories: true)
            try Data("made by orchestrator demo; its contents are replaced on the next run\n".utf8).write(to: markerURL)
        } catch { throw CLIError("cannot create \(dir.path): \((error as NSError).localizedDescription)") }
    }
}

/// A free TCP port on 127.0.0.1 (bound and released; the coordinator binds it next).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw CLIError("cannot open a socket to find a free port") }
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    addr.sin_port = 0
    var len = socklen_t(MemoryLayout<sockaddr_in>.size)
    let ok = withUnsafeMutablePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, len) == 0 && getsockname(fd, $0, &len) == 0 }
    }
    guard ok else { throw CLIError("cannot find a free loopback port") }
    return Int(UInt16(bigEndian: addr.sin_port))
}

/// The demo's child processes (the coordinator and the workers), each logging to its own file,
/// all stopped on exit, on error and on Ctrl-C.
final class ChildProcesses: @unchecked Sendable {
    let logs: URL
    private let lock = NSLock()
    private var running: [(name: String, process: Process)] = []
    private var signalSources: [DispatchSourceSignal] = []

    init(logs: URL) {
        self.logs = logs
        try? FileManager.default.createDirectory(at: logs, withIntermediateDirectories: true)
    }

    /// Starts `executable` (a sibling of this program: "orchestrator" or "worker") with `args`.
    func start(_ name: String, _ args: [String], token: String, executable: String = "orchestrator") throws {
        let me = Bundle.main.executableURL ?? URL(fileURLWithPath: CommandLine.arguments[0])
        let exe = me.deletingLastPathComponent().appendingPathComponent(executable)
        guard FileManager.default.isExecutableFile(atPath: exe.path) else {
            throw CLIError("\(exe.path) not found: build it with `swift build -c release`")
        }
        let log = logs.appendingPathComponent("\(name).log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)  // FileHandle below reports failure
        let handle = try FileHandle(forWritingTo: log)
        let p = Process()
        p.executableURL = exe
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["ORCHESTRATOR_TOKEN"] = token
        p.environment = env
        p.standardOutput = handle
        p.standardError = handle
        p.standardInput = FileHandle.nullDevice
        do { try p.run() } catch { throw CLIError("cannot start \(exe.path): \(error)") }
        lock.withLock { running.append((name, p)) }
    }

    /// The name of a child that has exited, if any.
    func exited() -> String? { lock.withLock { running.first { !$0.process.isRunning }?.name } }

    func workersAllExited() -> Bool {
        lock.withLock {
            let workers = running.filter { $0.name.hasPrefix("worker") }
            return !workers.isEmpty && workers.allSatisfy { !$0.process.isRunning }
        }
    }

    /// SIGTERM to every child (workers first, so they can hand their jobs back), then SIGKILL
    /// to whatever is still running after 10 s.
    func stopAll() {
        let all = lock.withLock { () -> [(name: String, process: Process)] in
            let r = running
            running = []
            return r
        }
        let ordered = all.filter { $0.name != "coordinator" } + all.filter { $0.name == "coordinator" }
        for (_, p) in ordered where p.isRunning {
            p.terminate()
            let deadline = Date().addingTimeInterval(10)
            while p.isRunning && Date() < deadline { usleep(20_000) }
            if p.isRunning { kill(p.processIdentifier, SIGKILL) }
        }
    }

    /// Ctrl-C or SIGTERM: stop the children, then exit 130.
    func stopOnSignals() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in
                FileHandle.standardError.write(Data("\nstopping the demo's workers and coordinator…\n".utf8))
                self?.stopAll()
                exit(130)
            }
            source.resume()
            signalSources.append(source)
        }
    }
}
