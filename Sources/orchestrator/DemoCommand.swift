import APIClient
import ArgumentParser
import ConfigFile
import CoordinatorAPI
import Foundation
import NSTModel

/// The whole system on one machine: a coordinator on loopback, the eight styles of
/// configs/styles.json at demo size, N local worker processes, the live status table, and at the
/// end the fetched models, loss curves and a contact sheet.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run the distributed trainer end to end on this machine (coordinator + local workers, demo-sized).")

    @Option(help: "Local worker processes.") var workers = 2
    @Option(help: "Content images (default: a small synthetic set made in the state folder).") var dataset: String?
    @Option(name: .customLong("state-dir"), help: "Coordinator state, logs and results.") var stateDir = "demo-state"
    @Option(help: "The styles config.") var config = "configs/styles.json"
    @Option(name: .customLong("image-size"), help: "Default: sized to the time budget (64, 48 or 32).") var imageSize: Int?
    @Option(name: .customLong("style-size")) var styleSize = 128
    @Option(name: .customLong("batch-size")) var batchSize = 2
    @Option(help: "Training steps per style (default: as many as fit the time budget).") var steps: Int?
    @Option(name: .customLong("time-budget"), help: "Seconds the whole demo should take; it times a few steps first and sizes the run to fit.")
    var timeBudget = 180.0
    @Flag(help: "Only time the steps and print the chosen size and steps.") var plan = false
    @Option(help: "Adam learning rate (the demo's default is 5× the seed's, so that a few steps show a style).") var lr = 5e-3
    @Option(name: .customLong("checkpoint-every")) var checkpointEvery = 20
    @Option(name: .customLong("content-weight"), help: "Default: the config's.") var contentWeight: Double?
    @Option(name: .customLong("style-weight"),
            help: "A number, or auto: each style's weight chosen on its first batch so that the style term is 1.5× the content term, whatever the VGG16 (docs/tuning.md). Default: the config's.")
    var styleWeight: String?
    @Option(help: "Coordinator port (default: a free one).") var port: Int?
    @Option(name: .customLong("sheet-size"), help: "Side of each contact-sheet tile.") var sheetSize = 192
    @OptionGroup var vgg: VGGOptions

    func validate() throws {
        guard (1...16).contains(workers) else { throw ValidationError("--workers must be 1…16") }
        if let imageSize, imageSize < 16 || imageSize % 4 != 0 { throw ValidationError("--image-size must be a multiple of 4, at least 16") }
        guard timeBudget.isFinite, timeBudget >= 30 else { throw ValidationError("--time-budget must be at least 30 seconds") }
        if let styleWeight, styleWeight != "auto", !(Double(styleWeight).map { $0.isFinite && $0 >= 0 } ?? false) {
            throw ValidationError("--style-weight must be a non-negative number or auto, got \(Sanitize.oneLine(styleWeight, limit: 40))")
        }
        guard (steps ?? 1) >= 1, batchSize >= 1, lr > 0, checkpointEvery >= 1, styleSize >= 16 else {
            throw ValidationError("--steps, --batch-size, --checkpoint-every must be positive and --style-size at least 16")
        }
    }

    func run() async throws {
        let started = Date()
        let state = URL(fileURLWithPath: stateDir, isDirectory: true).standardizedFileURL
        let styleCount = try loadStyles(size: 64, steps: 1).count
        let sizing = choosePlan(jobs: styleCount)
        if styleWeight == "auto" {
            printOut("style weight: auto, chosen by each job on its first batch (style ratio \(String(format: "%g", StylesConfig.defaultStyleRatio)))")
        }
        if plan { return }
        try DemoFolder.prepare(state)
        let vggArgs = resolveVGG()
        let data = try makeDataset(state, size: sizing.imageSize)
        let styles = try loadStyles(size: sizing.imageSize, steps: sizing.steps)

        // A random admin token, in a file only this user can read: the dashboard's login.
        let token = UUID().uuidString
        let tokenFile = state.appendingPathComponent("admin.token")
        guard FileManager.default.createFile(atPath: tokenFile.path, contents: Data((token + "\n").utf8),
                                             attributes: [.posixPermissions: 0o600]) else {
            throw CLIError("cannot write \(tokenFile.path)")
        }
        let port = try port ?? freeLoopbackPort()
        let address = "127.0.0.1:\(port)"
        let children = ChildProcesses(logs: state.appendingPathComponent("logs"))
        children.stopOnSignals()
        defer { children.stopAll() }
        try children.start("coordinator", ["serve", "--host", "127.0.0.1", "--port", String(port),
                                           "--state-dir", state.path, "--lease-timeout", "30"], token: token)
        let client: CoordinatorClient
        do { client = try CoordinatorClient(address: address, token: token) } catch { throw CLIError(error) }
        defer { Task { try? await client.shutdown() } }
        try await waitForHealth(client, children)

        do {
            var seen = Set<String>()
            for s in styles where seen.insert(s.imageSHA256).inserted {
                if try await !client.hasArtifact(sha256: s.imageSHA256) { _ = try await client.uploadArtifact(file: s.image) }
            }
            let result = try await client.submit(styles.map(\.config), force: true)
            printOut("submitted \(result.created.count) styles to the coordinator; dashboard at http://\(address)/ "
                     + "(log in with the token in \(tokenFile.path))")
        } catch { throw CLIError(error) }

        for i in 1...workers {
            try children.start("worker-\(i)", ["--coordinator", address, "--dataset", data.path, "--name", "demo-worker-\(i)",
                                               "--threads", String(threads), "--work-dir", state.appendingPathComponent("work-\(i)").path]
                                   + vggArgs, token: token, executable: "worker")
        }
        let final = try await watch(client, children)
        let results = state.appendingPathComponent("results")
        let models = try await fetchResults(client, final, into: results)
        children.stopAll()
        let sheet = state.appendingPathComponent("contact-sheet.png")
        try writeContactSheet(models, to: sheet)

        let failed = final.jobs.filter { $0.state != .succeeded }
        printOut("")
        printOut(String(format: "demo finished in %@: %d of %d styles trained", formatDuration(Date().timeIntervalSince(started)),
                        final.jobs.count - failed.count, final.jobs.count))
        printOut("models and loss curves: \(results.path)/NAME.safetensors, NAME.losses.csv")
        printOut("contact sheet:          \(sheet.path)")
        printOut("logs:                   \(state.appendingPathComponent("logs").path)")
        if !failed.isEmpty {
            throw CLIError("not trained: " + failed.map { "\($0.name) (\($0.state.rawValue)\($0.failureReason.map { ": " + $0 } ?? ""))" }.joined(separator: ", "))
        }
    }

    // MARK: - Steps

    func resolveVGG() -> [String] {
        do {
            switch try vgg.resolve() {
            case .file(let path):
                printOut("VGG16 weights: \(path)")
                return ["--vgg-weights", path]
            case .random:
                printOut("VGG16: seeded random weights (--random-vgg): the system runs, but the styles will not look like their images")
                return ["--random-vgg"]
            }
        } catch {
            let hub = VGGSource.defaultFile()?.path ?? "the torch hub cache (no HOME)"
            printOut("VGG16: no weights (none from --vgg-weights or NST_VGG16_WEIGHTS, none at \(hub); `orchestrator vgg fetch` puts them there),")
            printOut("       so this demo falls back to a seeded random VGG16:")
            printOut("       the whole system runs, but the pictures will not look like the styles. See README, \"VGG16 weights\".")
            return ["--random-vgg"]
        }
    }

    /// Threads per worker: the machine's cores shared out.
    var threads: Int { max(1, Threads.available / workers) }

    /// Times a few steps and sizes the run to the time budget (unless --image-size and --steps
    /// are both given), and says what it chose.
    func choosePlan(jobs: Int) -> DemoPlan {
        let chosen = DemoPlan.choose(jobs: jobs, workers: workers, budget: timeBudget, fixedSize: imageSize, fixedSteps: steps) {
            DemoPlan.measureStep(size: $0, batch: batchSize, styleSize: styleSize, threads: threads, workers: workers)
        }
        let how = imageSize != nil && steps != nil ? "as given" : "sized to a \(formatDuration(timeBudget)) demo"
        printOut(String(format: "plan (%@): %d styles × %d steps at %d×%d, batch %d, on %d worker%@ × %d thread%@; "
                        + "a step takes %.3f s here, so training should take about %@",
                        how, jobs, chosen.steps, chosen.imageSize, chosen.imageSize, batchSize, workers, workers == 1 ? "" : "s",
                        threads, threads == 1 ? "" : "s", chosen.stepSeconds, formatDuration(chosen.expectedTrainingSeconds)))
        return chosen
    }

    func makeDataset(_ state: URL, size imageSize: Int) throws -> URL {
        if let dataset { return URL(fileURLWithPath: dataset) }
        let dir = state.appendingPathComponent("dataset")
        let files = (try? ImageFolder(root: dir).files.count) ?? 0
        if files < 24 {
            do { _ = try SyntheticImages.writeDataset(to: dir, count: 24, size: max(imageSize, 96)) } catch { throw CLIError(error) }
            printOut("made 24 synthetic content images in \(dir.path)")
        }
        return dir
    }

    func loadStyles(size imageSize: Int, steps: Int) throws -> [StylesConfig.Style] {
        let loaded: StylesConfig
        do { loaded = try StylesConfig.load(contentsOf: URL(fileURLWithPath: config)) } catch let e as StylesConfigError {
            for p in e.problems { printErr(p) }
            throw CLIError("\(config): \(e.problems.count) problem(s)")
        } catch { throw CLIError(error) }
        return loaded.styles.map { s in
            var s = s
            s.config.imageSize = imageSize
            s.config.styleSize = styleSize
            s.config.batchSize = batchSize
            s.config.steps = steps
            s.config.maxImages = nil
            s.config.checkpointEvery = checkpointEvery
            s.config.lr = lr
            s.config.dataset = nil  // the demo's coordinator serves none: its workers use --dataset
            s.config.validationImages = 0  // its 24 images all train (the plan timed steps without validation)
            if let contentWeight { s.config.contentWeight = contentWeight }
            if styleWeight == "auto" {
                s.config.styleRatio = StylesConfig.defaultStyleRatio
            } else if let weight = styleWeight.flatMap(Double.init) {
                s.config.styleWeight = weight
                s.config.styleRatio = nil
            }
            return s
        }
    }

    func waitForHealth(_ client: CoordinatorClient, _ children: ChildProcesses) async throws {
        for _ in 0..<200 {
            if (try? await client.health()) == true { return }
            if let dead = children.exited() { throw CLIError("the \(dead) stopped; see \(children.logs.path)/\(dead).log") }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        throw CLIError("the coordinator did not come up; see \(children.logs.path)/coordinator.log")
    }

    /// Redraws the status table until every job has finished.
    func watch(_ client: CoordinatorClient, _ children: ChildProcesses) async throws -> JobsResponse {
        let tty = isatty(STDOUT_FILENO) != 0
        var lastPrint = Date.distantPast
        while true {
            let r: JobsResponse
            do { r = try await client.jobs() } catch { throw CLIError(error) }
            let done = r.jobs.allSatisfy { [.succeeded, .failed, .cancelled].contains($0.state) }
            if tty {
                print("\u{1B}[H\u{1B}[2J" + StatusTable.render(r), terminator: "")
                fflush(stdout)
            } else if done || Date().timeIntervalSince(lastPrint) >= 15 {
                lastPrint = Date()
                printOut(StatusTable.render(r))
            }
            if done { return r }
            if children.workersAllExited() { throw CLIError("every worker has stopped; see \(children.logs.path)") }
            try await Task.sleep(nanoseconds: 1_000_000_000)
        }
    }

    func fetchResults(_ client: CoordinatorClient, _ r: JobsResponse, into dir: URL) async throws -> [(String, URL)] {
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        var models: [(String, URL)] = []
        do {
            for job in r.jobs where job.state == .succeeded {
                let model = dir.appendingPathComponent("\(try CoordinatorClient.fileStem(for: job)).safetensors")
                _ = try await client.downloadModel(id: job.id, to: model)
                try Data(try await client.lossesCSV(id: job.id).utf8).write(to: dir.appendingPathComponent("\(try CoordinatorClient.fileStem(for: job)).losses.csv"))
                models.append((job.name, model))
            }
        } catch { throw CLIError(error) }
        return models
    }

    /// One content image beside its stylisation by every trained style.
    func writeContactSheet(_ models: [(String, URL)], to url: URL) throws {
        let content = SyntheticImages.contentImage(index: 1000, width: sheetSize, height: sheetSize, seed: 7)
        var tiles: [(label: String, image: RGBImage)] = [("content", content)]
        do {
            for (name, file) in models {
                tiles.append((name, try TransformerNet(contentsOf: file).stylize(content)))
            }
            try ContactSheet.make(tiles, tileSize: sheetSize, columns: min(tiles.count, 5)).write(to: url)
        } catch { throw CLIError(error) }
    }
}
