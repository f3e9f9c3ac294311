import APIClient
import ArgumentParser
import CCPU
import CoordinatorAPI
import DatasetPack
import Foundation
import NIOCore
import NSTModel

// MARK: - worker

/// `worker --coordinator HOST:PORT`: pulls jobs from the coordinator, trains them with NSTModel,
/// and reports progress, loss points, checkpoints and the final model. The training data and the
/// VGG16 weights come from the coordinator when it serves them (cached in `--cache-dir`); a local
/// `--dataset DIR` is used in place for every file it holds with the manifest's bytes.
@main
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Pull style-training jobs from an orchestrator coordinator, train them, report back.",
        discussion: """
            On SIGINT/SIGTERM the worker finishes the current step, uploads a checkpoint, hands \
            the job back and exits 0; a second signal exits at once.
            """)

    @Option(help: "The coordinator as HOST:PORT or https://HOST:PORT (default: $ORCHESTRATOR_COORDINATOR, else 127.0.0.1:7000).")
    var coordinator: String?
    @Option(help: "Folder of training images on this machine: used in place for every file whose path, size and SHA-256 match the job's dataset, the rest downloaded; required only when the coordinator serves no dataset.")
    var dataset: String?
    @Option(help: "Worker name shown by the coordinator (default: hostname-pid).")
    var name: String?
    @Option(help: "Threads for OpenBLAS and the vector loops (default: all cores).")
    var threads: Int?
    @Flag(help: "Train one job and exit (exit at once when nothing is queued).")
    var once = false
    @Option(name: .customLong("vgg-weights"), help: "VGG16 weights with torchvision's names: safetensors, or torchvision's own vgg16-397923af.pth from ~/.cache/torch/hub/checkpoints/ (default: $NST_VGG16_WEIGHTS, else the torch hub file, else the coordinator's weights when it serves them).")
    var vggWeights: String?
    @Flag(name: .customLong("random-vgg"), help: "Use a seeded random VGG16 instead of real weights (tests and demos only).")
    var randomVGG = false
    @Option(name: .customLong("token-file"), help: "File holding the coordinator's bearer token (default: $ORCHESTRATOR_TOKEN).")
    var tokenFile: String?
    @Option(name: .customLong("ca-file"), help: "PEM CA certificate(s) to trust for an https:// coordinator (default: $ORCHESTRATOR_CA_FILE).")
    var caFile: String?
    @Option(name: .customLong("cache-dir"), help: "Where downloads kept across jobs and restarts go: dataset shards and manifests, the coordinator's VGG16 weights (default: $XDG_CACHE_HOME/nst-orchestrator or ~/.cache/nst-orchestrator).")
    var cacheDir: String?
    @Option(name: .customLong("cache-max-bytes"), help: "Bound on the cache, e.g. 20G, 500M, 20GiB or a byte count; the least recently used files are evicted first, never the running job's shards.")
    var cacheMaxBytes: String = "20G"

    @Option(name: .customLong("work-dir"), help: "Where job files (style image, checkpoints, model) are kept while a job runs.")
    var workDir: String?

    func validate() throws {
        if let n = threads, n < 1 { throw ValidationError("--threads must be at least 1") }
        if let name, let problem = JobConfig.nameProblem(name) { throw ValidationError("--name \(problem)") }
        if ByteCount(cacheMaxBytes) == nil {
            throw ValidationError("--cache-max-bytes: expected a byte count such as 20G, 500M or 1000000, got \"\(Sanitize.oneLine(cacheMaxBytes, limit: 40))\"")
        }
    }

    func run() async throws {
        nst_require_supported_cpu()
        Threads.reexecWithShortBLASSpin()
        let env = ProcessInfo.processInfo.environment
        let worker = name ?? Self.defaultName()
        Log.setName(worker)
        let signals = ShutdownSignals()
        let address = coordinator ?? env["ORCHESTRATOR_COORDINATOR"].flatMap { $0.isEmpty ? nil : $0 } ?? "127.0.0.1:7000"
        let token = try readToken(env)
        let source: VGGSource?
        do { source = try VGGSource.resolve(path: vggWeights, random: randomVGG) } catch VGGSource.ResolveError.missing {
            source = nil  // the coordinator's, when a lease names them
        } catch { throw WorkerError(error) }
        if case .random? = source { Log.info("warning: using a \(source!.description)") }
        let cache = URL(fileURLWithPath: cacheDir ?? Self.defaultCacheDir(env).path, isDirectory: true)
        let datasetURL = dataset.map { URL(fileURLWithPath: $0) }
        var images = 0
        if let datasetURL {
            // An empty folder would fail (retryably) every job this worker leases: refuse to start.
            do { images = try ImageFolder(root: datasetURL).files.count } catch { throw WorkerError(error) }
            guard images > 0 else { throw WorkerError(TrainingError.emptyDataset(path: datasetURL.path)) }
        }
        let store = DownloadCache(root: cache.appendingPathComponent("store", isDirectory: true),
                                  maxBytes: ByteCount(cacheMaxBytes)!.bytes)
        do { try FileManager.default.createDirectory(at: store.root, withIntermediateDirectories: true) }
        catch { throw WorkerError("cannot create the cache \(store.root.path): \(error.localizedDescription)") }
        Threads.configure(threads ?? Threads.available)
        let vgg: VGG16?
        do { vgg = try source?.load() } catch { throw WorkerError(error) }
        if vgg == nil {
            Log.info("no VGG16 weights on this machine: the coordinator's are downloaded into \(store.root.path) when a job needs them")
        }
        let work = URL(fileURLWithPath: workDir ?? FileManager.default.temporaryDirectory
            .appendingPathComponent("nst-worker-\(worker)").path)
        do { try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true) }
        catch { throw WorkerError("cannot create the work dir \(work.path): \(error)") }

        let client: CoordinatorClient
        do { client = try CoordinatorClient(address: address, token: token, timeout: .seconds(5),
                                            caFile: caFile ?? CoordinatorDefaults.caFile()) }
        catch { throw WorkerError(error) }
        let localName = source.map { s -> String in
            switch s {
            case .file(let path): return "vgg16 \(URL(fileURLWithPath: path).lastPathComponent)"
            case .random(let seed): return "random-vgg seed \(seed)"
            }
        }
        let network = LossNetwork(local: vgg, localName: localName, cache: store)
        let context = WorkerContext(name: worker, client: client, dataset: datasetURL, workDir: work, cache: store,
                                    scanCacheDir: cache.appendingPathComponent("scan", isDirectory: true),
                                    lossNetwork: network, signals: signals)
        let used = Double(store.usage()) / Double(1 << 30)
        let data = dataset.map { "dataset \($0) (\(images) images; the coordinator's where it serves one)" } ?? "the coordinator's dataset"
        Log.info("worker \(worker) on \(ProcessInfo.processInfo.hostName): coordinator \(client.address), \(data), \(Threads.count) threads; "
                 + "cache \(store.root.path) (\(String(format: "%.2f", used)) GiB of \(cacheMaxBytes))")
        let result: Result<Void, Error>
        do { try await pullJobs(context); result = .success(()) } catch { result = .failure(error) }
        try? await client.shutdown()
        try result.get()
    }

    /// Leases jobs until `--once` is satisfied or a signal arrives.
    private func pullJobs(_ context: WorkerContext) async throws {
        var backoff = Backoff()
        var idleLogged = false
        while !context.signals.isRequested {
            let lease: LeaseResponse?
            do {
                lease = try await context.client.lease(worker: context.name, host: ProcessInfo.processInfo.hostName,
                                                       threads: Threads.count)
                if backoff.failures > 0 { Log.info("coordinator reachable again") }
                backoff.reset()
            } catch let error as ClientError where error.isTransient {
                let delay = backoff.nextDelay()
                Log.info("coordinator unreachable: retrying in \(String(format: "%.1f", delay)) s (\(error))")
                await sleep(delay, context.signals)
                continue
            } catch {
                throw WorkerError("cannot lease a job: \(error)")
            }
            guard let lease else {
                if once { Log.info("no job queued; exiting (--once)"); return }
                if !idleLogged { Log.info("no job queued; polling"); idleLogged = true }
                await sleep(1, context.signals)
                continue
            }
            idleLogged = false
            let end = await JobDriver(context: context, lease: lease).drive()
            if case .unfit(let why) = end { throw WorkerError(why) }
            if once { Log.info("one job done (\(end)); exiting (--once)"); return }
            if case .failed(_, retryable: true) = end {
                // Whatever failed may be this machine's: give other workers a chance at the job.
                Log.info("pausing 3 s after a retryable failure")
                await sleep(3, context.signals)
            }
        }
        Log.info("exiting on signal")
    }

    /// Sleeps `seconds`, waking early when a signal arrives.
    private func sleep(_ seconds: Double, _ signals: ShutdownSignals) async {
        let end = monotonicSeconds() + seconds
        while monotonicSeconds() < end && !signals.isRequested {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// `$XDG_CACHE_HOME/nst-orchestrator`, else `$HOME/.cache/nst-orchestrator` (the user
    /// database's home when `HOME` is unset).
    static func defaultCacheDir(_ env: [String: String]) -> URL {
        if let xdg = env["XDG_CACHE_HOME"], xdg.hasPrefix("/") {
            return URL(fileURLWithPath: xdg).appendingPathComponent("nst-orchestrator")
        }
        let home = env["HOME"].flatMap { $0.hasPrefix("/") ? URL(fileURLWithPath: $0) : nil }
            ?? FileManager.default.homeDirectoryForCurrentUser
        return home.appendingPathComponent(".cache/nst-orchestrator")
    }

    private func readToken(_ env: [String: String]) throws -> String? {
        if let tokenFile {
            do {
                let text = try String(contentsOfFile: tokenFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty else { throw WorkerError("token file \(tokenFile) is empty") }
                return text
            } catch let e as WorkerError { throw e } catch {
                throw WorkerError("cannot read the token file \(tokenFile): \(error.localizedDescription)")
            }
        }
        return env["ORCHESTRATOR_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// `hostname-pid`, with characters a job-store name does not allow replaced by `-`.
    static func defaultName() -> String {
        let raw = "\(ProcessInfo.processInfo.hostName)-\(ProcessInfo.processInfo.processIdentifier)"
        var name = String(raw.unicodeScalars.map { s -> Character in
            s.isASCII && (s.properties.isAlphabetic || ("0"..."9").contains(s) || s == "." || s == "_" || s == "-")
                ? Character(s) : "-"
        })
        while name.hasPrefix(".") { name.removeFirst() }
        return String(name.prefix(100))
    }
}

/// A one-line reason the worker cannot run; ArgumentParser prints it and exits non-zero.
struct WorkerError: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
    init(_ error: any Error) { description = String(describing: error) }
}
