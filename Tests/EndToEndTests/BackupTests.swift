import Foundation
import XCTest

#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// `orchestrator backup` taken while a worker trains, then the README's restore: the backup as
/// NEWSTATE/jobs.sqlite, the artifacts copied, a coordinator on NEWSTATE. The job resumes from
/// the latest checkpoint the backup holds and ends with the losses of an uninterrupted run.
final class BackupTests: XCTestCase {
    var cluster: Cluster?
    var restoredCoordinator: ChildProcess?

    override func tearDown() {
        let failed = (testRun?.failureCount ?? 0) > 0
        if let restored = restoredCoordinator {
            restored.killAndReap()
            if failed { print("----- \(restored.label) (stderr, last 4000 chars) -----\n\(restored.stderr.suffix(4000))") }
        }
        restoredCoordinator = nil
        cluster?.shutdown(printLogs: failed)
        cluster = nil
        super.tearDown()
    }

    func testBackupTakenWhileTrainingRestoresIntoANewStateDirAndTheJobResumes() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        let steps = 60
        // The same style and seed twice; "straight" trains first, uninterrupted (higher priority).
        let config = try cluster.writeConfig(
            styles: [("straight", 41, ["priority": 1]), ("restored", 41, ["priority": 0])], steps: steps,
            checkpointEvery: 2)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let solo = try cluster.startWorker("solo", extra: ["--once"])
        XCTAssertEqual(solo.waitForExit(timeout: 300), 0, "--once exits 0 after one job: \(solo.stderr)")

        // A worker trains "restored"; once it has uploaded a checkpoint, back up while it trains
        let victim = try cluster.startWorker("victim")
        let id = try leasedJobID(cluster.waitForLog(victim, containing: "leased job "))
        _ = try cluster.waitForLog(victim, containing: "job \(id): checkpoint step ", timeout: 120)
        let uploadedBeforeBackup = try XCTUnwrap(lastUploadedCheckpoint(in: victim.stderr, job: id))
        let backupFile = cluster.root.appendingPathComponent("backup.sqlite")
        let backup = ["backup", backupFile.path, "--state-dir", cluster.stateDir.path]
        let made = try runCommand(cluster.orchestrator, backup, environment: cluster.environment, logDir: cluster.logDir)
        XCTAssertEqual(made.status, 0, "backup failed: \(made.stderr)")
        print("orchestrator backup:\n\(made.stdout)")
        XCTAssertTrue(made.stdout.hasPrefix("wrote \(backupFile.path): "), made.stdout)
        XCTAssertTrue(made.stdout.contains("2 jobs (1 running, 1 succeeded)"), made.stdout)
        XCTAssertTrue(made.stdout.contains("orchestrator serve --state-dir NEWSTATE"), made.stdout)
        let again = try runCommand(cluster.orchestrator, backup, environment: cluster.environment, logDir: cluster.logDir)
        XCTAssertNotEqual(again.status, 0, "a second backup to the same file must be refused")
        XCTAssertTrue(again.stderr.contains("\(backupFile.path) already exists; pass --force to replace it"), again.stderr)

        // The restore, its artifacts copied while the old coordinator still runs
        let newState = cluster.root.appendingPathComponent("restored-state")
        try FileManager.default.createDirectory(at: newState, withIntermediateDirectories: true)
        try copy(cluster.stateDir.appendingPathComponent("artifacts").path, into: newState.path, cluster)
        try copy(backupFile.path, into: newState.appendingPathComponent("jobs.sqlite").path, cluster)
        let midRun = try XCTUnwrap(try cluster.status().first { $0.id == id })
        XCTAssertEqual(midRun.state, "running", "the backup was taken while the job trained")
        XCTAssertLessThan(midRun.step, steps)

        // The old cluster dies
        victim.kill(SIGKILL)
        XCTAssertNotNil(victim.waitForExit(timeout: 10))
        let coordinator = try XCTUnwrap(cluster.coordinator)
        coordinator.kill(SIGKILL)
        XCTAssertNotNil(coordinator.waitForExit(timeout: 10))
        let uploadedAtKill = try XCTUnwrap(lastUploadedCheckpoint(in: victim.stderr, job: id))

        // A coordinator on the restored state dir (same address, so the CLI helpers reach it)
        let restored = try ChildProcess(
            label: "coordinator-restored", executable: cluster.orchestrator,
            arguments: ["serve", "--host", cluster.host, "--port", String(cluster.port), "--state-dir", newState.path,
                        "--lease-timeout", String(cluster.leaseTimeout)],
            environment: cluster.environment, logDir: cluster.logDir)
        restoredCoordinator = restored
        let up = try waitUntil(timeout: 30) {
            if !restored.isRunning { throw HarnessError("restored coordinator exited: \(restored.stderr)") }
            return cluster.healthz()
        }
        XCTAssertTrue(up, "restored coordinator not healthy: \(restored.stderr)")

        // It holds the checkpoints of the backup: at least the one uploaded before it was taken
        let backedUp = try XCTUnwrap(checkpointSteps(of: id, cluster).max(), "no checkpoint in the backup")
        XCTAssertGreaterThanOrEqual(backedUp, uploadedBeforeBackup)
        XCTAssertLessThanOrEqual(backedUp, uploadedAtKill + 2, "the backup cannot hold a checkpoint from after the kill")
        print("checkpoint steps: \(uploadedBeforeBackup) uploaded before the backup, \(backedUp) in it, \(uploadedAtKill) at the kill")

        // A worker resumes the job from there once the lease recorded in the backup expires
        let rescuer = try cluster.startWorker("rescuer")
        let rows = try cluster.waitForAllFinished(timeout: 300)
        print("orchestrator status on the restored coordinator:\n\(try cluster.statusText())")
        XCTAssertTrue(rescuer.stderr.contains("resuming job \(id) from step \(backedUp) (next step \(backedUp + 1))"),
                      rescuer.stderr)
        XCTAssertEqual(rows.count, 2)
        let job = try XCTUnwrap(rows.first { $0.id == id })
        XCTAssertEqual(job.state, "succeeded")
        XCTAssertEqual(job.resumedFromStep, backedUp)
        XCTAssertEqual(job.attempt, 2, "the lease of the backup expired: a second attempt")
        XCTAssertEqual(job.worker, "rescuer")

        // The fetched model and losses: those of the uninterrupted run of the same style and seed
        let out = try cluster.fetchAll()
        let straight = try checkFetched(try XCTUnwrap(rows.first { $0.name == "straight" }), in: out,
                                        steps: steps, logDir: cluster.logDir)
        let resumedCurve = try checkFetched(job, in: out, steps: steps, logDir: cluster.logDir)
        for (a, b) in zip(straight, resumedCurve) {
            XCTAssertEqual(b.total, a.total, accuracy: 1e-5 * abs(a.total), "total loss at step \(a.step)")
            XCTAssertEqual(b.content, a.content, accuracy: 1e-5 * abs(a.content), "content loss at step \(a.step)")
            XCTAssertEqual(b.style, a.style, accuracy: 1e-5 * abs(a.style), "style loss at step \(a.step)")
        }
        XCTAssertNotEqual(straight.first?.total, straight.last?.total, "the curve moves: training happened")
    }

    // MARK: - Helpers

    /// `cp -a SOURCE DESTINATION`, as the README's restore does.
    func copy(_ source: String, into destination: String, _ cluster: Cluster) throws {
        let r = try runCommand(URL(fileURLWithPath: "/bin/cp"), ["-a", source, destination], environment: [:],
                               logDir: cluster.logDir)
        guard r.status == 0 else { throw HarnessError("cp -a \(source) \(destination) failed: \(r.stderr)") }
    }

    /// The steps of job `id`'s checkpoints, from `GET /v1/jobs/{id}`.
    func checkpointSteps(of id: Int64, _ cluster: Cluster) throws -> [Int] {
        let url = try XCTUnwrap(URL(string: "http://\(cluster.address)/v1/jobs/\(id)"))
        var request = URLRequest(url: url)
        request.timeoutInterval = 10
        request.setValue("Bearer \(cluster.token)", forHTTPHeaderField: "Authorization")
        final class Answer: @unchecked Sendable { var status = 0; var body = Data() }
        let answer = Answer()
        let done = DispatchSemaphore(value: 0)
        URLSession.shared.dataTask(with: request) { data, response, _ in
            answer.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            answer.body = data ?? Data()
            done.signal()
        }.resume()
        done.wait()
        guard answer.status == 200,
              let detail = try JSONSerialization.jsonObject(with: answer.body) as? [String: Any],
              let checkpoints = detail["checkpoints"] as? [[String: Any]] else {
            throw HarnessError("GET /v1/jobs/\(id): \(answer.status) \(String(decoding: answer.body, as: UTF8.self))")
        }
        return checkpoints.compactMap { $0["step"] as? Int }
    }
}
