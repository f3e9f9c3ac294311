import Foundation

// MARK: - CoordinatorConfig

/// How a coordinator runs: where it listens, where it keeps its state, and its limits.
///
/// The state directory holds `jobs.sqlite` (the JobStore), `artifacts/` (the content-addressed
/// store: `artifacts/ab/abcdef…`, named by SHA-256) and `tmp/` (uploads in progress, emptied
/// at start).
public struct CoordinatorConfig: Sendable {
    /// The address to bind (`127.0.0.1` by default).
    public var host: String
    /// The TCP port (7000 by default; 0 picks a free one).
    public var port: Int
    /// The state directory.
    public var stateDir: URL
    /// The shared bearer token every endpoint but `/healthz` requires; nil accepts any request.
    public var token: String?
    /// Lease length granted to workers.
    public var leaseSeconds: TimeInterval
    /// Largest artifact, checkpoint or model upload accepted (413 above).
    public var maxUploadBytes: Int64
    /// Largest JSON request body accepted (413 above).
    public var maxJSONBytes: Int
    /// How often the background reaper expires overdue leases.
    public var reapInterval: Duration
    /// Serve `GET /metrics` without the token (`orchestrator serve --metrics-public`), for a
    /// Prometheus that cannot send `Authorization: Bearer`. Off by default: the metrics name
    /// workers and jobs.
    public var metricsPublic: Bool

    public init(host: String = "127.0.0.1", port: Int = 7000, stateDir: URL, token: String? = nil,
                leaseSeconds: TimeInterval = 60, maxUploadBytes: Int64 = 1 << 30,
                maxJSONBytes: Int = 8 << 20, reapInterval: Duration = .seconds(1),
                metricsPublic: Bool = false) {
        self.host = host
        self.port = port
        self.stateDir = stateDir
        self.token = token
        self.leaseSeconds = leaseSeconds
        self.maxUploadBytes = maxUploadBytes
        self.maxJSONBytes = maxJSONBytes
        self.reapInterval = reapInterval
        self.metricsPublic = metricsPublic
    }

    /// `STATE/jobs.sqlite`, the file to open the JobStore on.
    public var databasePath: String { stateDir.appendingPathComponent("jobs.sqlite").path }
    /// `STATE/artifacts`.
    public var artifactsDir: URL { stateDir.appendingPathComponent("artifacts", isDirectory: true) }
    /// `STATE/tmp`.
    public var tmpDir: URL { stateDir.appendingPathComponent("tmp", isDirectory: true) }
}

// MARK: - Defaults shared by the CLI and the worker

/// Where clients find the coordinator and its token when not told explicitly.
public enum CoordinatorDefaults {
    /// The default port.
    public static let port = 7000

    /// `$ORCHESTRATOR_COORDINATOR` if set and not empty, else `127.0.0.1:7000`.
    public static func address(environment: [String: String] = ProcessInfo.processInfo.environment) -> String {
        if let env = environment["ORCHESTRATOR_COORDINATOR"], !env.isEmpty { return env }
        return "127.0.0.1:\(port)"
    }

    /// The token from `file` (its content without surrounding whitespace) when given, else
    /// `$ORCHESTRATOR_TOKEN` if set and not empty, else nil.
    /// - Throws: `TokenError` if the file cannot be read or is empty.
    public static func token(file: String?,
                             environment: [String: String] = ProcessInfo.processInfo.environment) throws -> String? {
        if let file {
            let text: String
            do {
                text = try String(contentsOfFile: file, encoding: .utf8)
            } catch {
                throw TokenError.unreadable(path: file, reason: (error as NSError).localizedDescription)
            }
            let token = text.trimmingCharacters(in: .whitespacesAndNewlines)
            if token.isEmpty { throw TokenError.empty(path: file) }
            return token
        }
        if let env = environment["ORCHESTRATOR_TOKEN"], !env.isEmpty { return env }
        return nil
    }
}

/// A token file that cannot be used.
public enum TokenError: Error, CustomStringConvertible, Equatable {
    case unreadable(path: String, reason: String)
    case empty(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read token file \(path): \(reason)"
        case let .empty(path): return "token file \(path) is empty"
        }
    }
}
