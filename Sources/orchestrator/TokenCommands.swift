import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation

// MARK: - orchestrator token

/// Worker tokens: each worker machine gets its own, which may only lease jobs and report on
/// them, and which the admin can revoke without touching the other machines.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Make, list and revoke worker tokens (needs the admin token).",
        subcommands: [TokenCreate.self, TokenList.self, TokenRevoke.self])
}

struct TokenCreate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "create",
        abstract: "Make a worker token and print it once (the coordinator keeps only its hash).",
        discussion: """
            The token goes to stdout alone, so that `orchestrator token create --worker > gpu1.token` \
            writes a file for `worker --token-file gpu1.token`. A worker token may lease jobs, report \
            on its own leases and download what they need; everything else answers 403.
            """)

    @Flag(help: "A worker token (the only kind there is; the admin token is the coordinator's own).") var worker = false
    @Option(help: "A name to recognise it by in `token list` (default worker-<id>).") var name: String?
    @OptionGroup var coordinator: CoordinatorOptions

    func validate() throws {
        if !worker { throw ValidationError("say --worker: worker tokens are the only tokens the coordinator makes") }
        if let name, let problem = JobConfig.nameProblem(name) { throw ValidationError("--name \(problem)") }
    }

    func run() async throws {
        try await coordinator.withClient { client in
            let made = try await client.createWorkerToken(name: name)
            printErr("worker token \(made.info.id) (\(made.info.name)); it is shown this once — store it now:")
            printOut(made.token)
        }
    }
}

struct TokenList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "List the worker tokens (never the tokens themselves).")

    @Flag(help: "Print {\"tokens\": [...]} for scripts.") var json = false
    @OptionGroup var coordinator: CoordinatorOptions

    func run() async throws {
        try await coordinator.withClient { client in
            let tokens = try await client.tokens()
            if json {
                let data = try APICoding.encoder(pretty: true).encode(TokensResponse(tokens: tokens))
                printOut(String(decoding: data, as: UTF8.self))
                return
            }
            printOut(Self.table(tokens))
        }
    }

    static func table(_ tokens: [TokenInfo]) -> String {
        if tokens.isEmpty { return "no worker tokens (orchestrator token create --worker makes one)" }
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withFullDate, .withTime, .withColonSeparatorInTime, .withSpaceBetweenDateAndTime]
        let rows = [["ID", "NAME", "ROLE", "CREATED", "LAST LEASE", "STATE"]] + tokens.map { t in
            [String(t.id), Sanitize.oneLine(t.name), t.role, f.string(from: t.createdAt), t.lastUsedAt.map(f.string) ?? "never",
             t.revokedAt.map { "revoked \(f.string(from: $0))" } ?? "active"]
        }
        let widths = (0..<rows[0].count).map { c in rows.map { $0[c].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padding(toLength: $1, withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }
}

struct TokenRevoke: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "revoke",
        abstract: "Revoke worker tokens: each is refused on its next request; a lease it holds runs out as usual.")

    @Argument(help: "Token ids (from `orchestrator token list`).") var ids: [Int64]
    @OptionGroup var coordinator: CoordinatorOptions

    func run() async throws {
        try await coordinator.withClient { client in
            for id in ids {
                let info = try await client.revokeToken(id: id)
                printOut("revoked worker token \(info.id) (\(info.name))")
            }
        }
    }
}
