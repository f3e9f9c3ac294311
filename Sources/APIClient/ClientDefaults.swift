import CoordinatorAPI
import Foundation

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

    /// `$ORCHESTRATOR_CA_FILE` if set and not empty.
    public static func caFile(environment: [String: String] = ProcessInfo.processInfo.environment) -> String? {
        environment["ORCHESTRATOR_CA_FILE"].flatMap { $0.isEmpty ? nil : $0 }
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
