import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation

// MARK: - cancel

struct Cancel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cancel queued or running jobs (a running job's worker stops at its next heartbeat).")

    @Argument(help: "Job ids or names.") var jobs: [String] = []
    @Flag(help: "Cancel every queued and running job.") var all = false
    @OptionGroup var coordinator: CoordinatorOptions

    func validate() throws {
        if all == !jobs.isEmpty { throw ValidationError("give job ids or names, or --all (not both)") }
    }

    func run() async throws {
        try await coordinator.withClient { client in
            if all {
                let ids = try await client.cancelAll()
                printOut(ids.isEmpty ? "nothing to cancel" : "cancelled \(ids.count) job(s): " + ids.map(String.init).joined(separator: ", "))
                return
            }
            let targets = try resolveJobs(jobs, in: try await client.jobs().jobs)
            try await forEach(targets, verb: "cancel") { job in
                try await client.cancel(id: job.id)
                printOut("cancelled job \(job.id) (\(job.name))")
            }
        }
    }
}

// MARK: - retry

struct Retry: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Queue failed or cancelled jobs again (they resume from their latest checkpoint).")

    @Argument(help: "Job ids or names.") var jobs: [String]
    @OptionGroup var coordinator: CoordinatorOptions

    func run() async throws {
        try await coordinator.withClient { client in
            let targets = try resolveJobs(jobs, in: try await client.jobs().jobs)
            try await forEach(targets, verb: "retry") { job in
                try await client.retry(id: job.id)
                printOut("queued job \(job.id) (\(job.name)) again")
            }
        }
    }
}

struct Promote: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Queue a new job that continues a succeeded job's final weights and Adam state, with the same parameters, to a longer budget.",
        discussion: "E.g. short trials at 128², then the chosen one at full length. The new job's loss curve starts with the old one's.")

    @Argument(help: "The job's id or name.") var job: String
    @Option(help: "Train to this many steps in all (more than the job trained).") var steps: Int?
    @Option(help: "Train this many epochs in all instead.") var epochs: Int?
    @Option(help: "The new job's name (default: NAME-promoted).") var name: String?
    @OptionGroup var coordinator: CoordinatorOptions

    func validate() throws {
        guard (steps == nil) != (epochs == nil) else { throw ValidationError("give --steps or --epochs (one of them)") }
        if let name, let problem = JobConfig.nameProblem(name) { throw ValidationError("--name \(problem)") }
    }

    func run() async throws {
        try await coordinator.withClient { client in
            guard let target = try resolveJobs([job], in: try await client.jobs().jobs).first else { return }
            let created = try await client.promote(id: target.id, PromoteRequest(name: name, steps: steps, epochs: epochs))
            let budget = steps.map { "\($0) steps" } ?? "\(epochs ?? 0) epochs"
            printOut("created job \(created.id): \(created.name), continuing job \(target.id) (\(target.name)) from step \(created.step) to \(budget)")
        }
    }
}

/// Runs `body` for every job; a refusal is printed and the others still run; throws at the end
/// if any was refused.
func forEach(_ jobs: [JobStatus], verb: String, _ body: (JobStatus) async throws -> Void) async throws {
    var refused = 0
    for job in jobs {
        do {
            try await body(job)
        } catch let error as ClientError where !error.isTransient {
            printErr("cannot \(verb) job \(job.id) (\(job.name)): \(error)")
            refused += 1
        }
    }
    if refused > 0 { throw CLIError("\(refused) of \(jobs.count) job(s) could not be \(verb == "cancel" ? "cancelled" : "retried")") }
}

// MARK: - fetch

struct Fetch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Download the final models (NAME.safetensors, checksum verified) and loss curves (NAME.losses.csv) of succeeded jobs.")

    @Argument(help: "Job ids or names.") var jobs: [String] = []
    @Flag(help: "Every succeeded job (the latest job of each name).") var all = false
    @Option(help: "Directory to write into (created if needed).") var out: String
    @OptionGroup var coordinator: CoordinatorOptions

    func validate() throws {
        if all == !jobs.isEmpty { throw ValidationError("give job ids or names, or --all (not both)") }
    }

    func run() async throws {
        let dir = URL(fileURLWithPath: out, isDirectory: true)
        do { try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true) } catch {
            throw CLIError("cannot create \(out): \((error as NSError).localizedDescription)")
        }
        try await coordinator.withClient { client in
            let list = try await client.jobs().jobs
            var targets: [JobStatus]
            if all {
                // The latest job of each name: resubmitted styles would otherwise overwrite each other.
                var latest: [String: JobStatus] = [:]
                for job in list where latest[job.name].map({ $0.id < job.id }) ?? true { latest[job.name] = job }
                targets = latest.values.sorted { $0.id < $1.id }
            } else {
                targets = try resolveJobs(jobs, in: list)
            }
            let unfinished = targets.filter { $0.state != .succeeded }
            for job in targets where job.state == .succeeded {
                let stem = try CoordinatorClient.fileStem(for: job)
                let model = dir.appendingPathComponent("\(stem).safetensors")
                let sha = try await client.downloadModel(id: job.id, to: model)
                let csv = try await client.lossesCSV(id: job.id)
                let csvURL = dir.appendingPathComponent("\(stem).losses.csv")
                do { try Data(csv.utf8).write(to: csvURL, options: .atomic) } catch {
                    throw CLIError("cannot write \(csvURL.path): \((error as NSError).localizedDescription)")
                }
                let rows = csv.split(separator: "\n").count - 1
                printOut("fetched job \(job.id) (\(job.name)): \(model.path) (sha256 \(sha.prefix(12)) verified), \(csvURL.path) (\(rows) steps)")
            }
            if !unfinished.isEmpty {
                let names = unfinished.map { "\($0.name) (\($0.state.rawValue))" }.joined(separator: ", ")
                if all {
                    printErr("skipped \(unfinished.count) job(s) not finished: \(names)")
                } else {
                    throw CLIError("not fetched, not finished: \(names)")
                }
            }
            if targets.isEmpty { printOut("no jobs to fetch") }
        }
    }
}
