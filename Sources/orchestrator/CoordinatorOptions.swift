import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation

/// `--coordinator HOST:PORT` and `--token-file FILE`, shared by the commands that talk to a
/// coordinator.
struct CoordinatorOptions: ParsableArguments {
    @Option(name: .customLong("coordinator"),
            help: "The coordinator as HOST:PORT or https://HOST:PORT (default: $ORCHESTRATOR_COORDINATOR, else 127.0.0.1:7000).")
    var coordinator: String?

    @Option(name: .customLong("token-file"), help: "File holding the bearer token (default: $ORCHESTRATOR_TOKEN).")
    var tokenFile: String?

    @Option(name: .customLong("ca-file"), help: "PEM CA certificate(s) to trust for https:// (default: $ORCHESTRATOR_CA_FILE).")
    var caFile: String?

    /// The CA file to use, if any.
    var resolvedCAFile: String? { caFile ?? CoordinatorDefaults.caFile() }

    /// The address to use.
    var address: String { coordinator ?? CoordinatorDefaults.address() }

    func validate() throws {
        do { _ = try CoordinatorAddress(parsing: address) } catch { throw ValidationError("\(error)") }
    }

    /// Runs `body` with a client, always shutting it down; every error becomes a `CLIError`.
    func withClient<T>(_ body: (CoordinatorClient) async throws -> T) async throws -> T {
        let token: String?
        do { token = try CoordinatorDefaults.token(file: tokenFile) } catch { throw CLIError(error) }
        let client: CoordinatorClient
        do { client = try CoordinatorClient(address: address, token: token, caFile: resolvedCAFile) } catch { throw CLIError(error) }
        do {
            let value = try await body(client)
            try? await client.shutdown()
            return value
        } catch let error as CLIError {
            try? await client.shutdown()
            throw error
        } catch {
            try? await client.shutdown()
            throw CLIError(error)
        }
    }
}

// MARK: - Job arguments

/// Resolves `JOB` arguments (an id or a name; a name means its most recent job) against the
/// coordinator's job list.
func resolveJobs(_ specs: [String], in jobs: [JobStatus]) throws -> [JobStatus] {
    var result: [JobStatus] = []
    var unknown: [String] = []
    for spec in specs {
        if let id = Int64(spec), let job = jobs.first(where: { $0.id == id }) {
            result.append(job)
        } else if let job = jobs.filter({ $0.name == spec }).max(by: { $0.id < $1.id }) {
            result.append(job)
        } else {
            unknown.append(spec)
        }
    }
    if !unknown.isEmpty {
        throw CLIError("no job with id or name " + unknown.map { "\"\($0)\"" }.joined(separator: ", "))
    }
    return result
}

/// Writes `text` to standard output at once (and flushes, for pipes).
func printOut(_ text: String) {
    FileHandle.standardOutput.write(Data((text.hasSuffix("\n") ? text : text + "\n").utf8))
}
