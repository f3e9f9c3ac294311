import Foundation
import XCTest

/// A worker SIGKILLed in the middle of a job: its job waits for the lease to expire, then
/// another worker resumes it from the last uploaded checkpoint, and the loss curve is the one
/// an uninterrupted run gives.
final class WorkerFaultTests: XCTestCase {
    var cluster: Cluster?

    override func tearDown() {
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        super.tearDown()
    }

    func testKilledWorkersJobResumesFromItsCheckpointOnTheOtherWorker() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        let steps = 30
        let config = try cluster.writeConfig(
            styles: [("alpha", 11, [:]), ("beta", 12, [:])], steps: steps)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        let w1 = try cluster.startWorker("w1")
        let w2 = try cluster.startWorker("w2")

        let id = try leasedJobID(cluster.waitForLog(w1, containing: "leased job "))
        _ = try cluster.waitForLog(w1, containing: "job \(id): checkpoint step ")
        w1.kill(SIGKILL)
        let killedAt = Date()
        XCTAssertNotNil(w1.waitForExit(timeout: 10))
        XCTAssertFalse(w1.stderr.contains("completed"), "w1 was killed in the middle of its job")
        let checkpointStep = try XCTUnwrap(lastUploadedCheckpoint(in: w1.stderr, job: id), w1.stderr)

        let resumed = try cluster.waitForLog(w2, containing: "resuming job \(id) from step", timeout: 60)
        let latency = Date().timeIntervalSince(killedAt)
        print(String(format: "job %lld resumed on w2 %.2f s after w1 was SIGKILLed (lease timeout %.0f s)",
                     id, latency, cluster.leaseTimeout))
        XCTAssertTrue(resumed.contains("resuming job \(id) from step \(checkpointStep) (next step \(checkpointStep + 1))"),
                      resumed)
        // Fencing: nobody may take the job before the dead worker's lease ran out (its last
        // heartbeat was at most lease/4 before the kill).
        XCTAssertGreaterThan(latency, cluster.leaseTimeout * 0.75 - 0.2)
        // Promptness, measured from when w2 could take the job: the lease's end, or the end of
        // w2's own job if that came later (its length depends on the machine's speed, so it is
        // read from w2's log rather than assumed).
        let w2Log = w2.stderr
        let resumedAt = try XCTUnwrap(logTime(of: "resuming job \(id) from step", in: w2Log), w2Log)
        let ownJobDone = logTime(of: "completed: ", in: w2Log).map { secondsBetween(secondsOfDay(killedAt), $0) }
        let freeAfterKill = max(cluster.leaseTimeout, ownJobDone ?? 0)
        let resumeAfterKill = secondsBetween(secondsOfDay(killedAt), resumedAt)
        print(String(format: "w2 was free %.2f s after the kill and resumed the job %.2f s after it", freeAfterKill, resumeAfterKill))
        // Promptness is the wait for the lease (w2 polls every second), not the preparation
        // after it (downloads, session setup: the machine's speed), which is measured apart.
        let leasedAt = try XCTUnwrap(logTime(of: "leased job \(id) ", in: w2Log), w2Log)
        let leaseAfterKill = secondsBetween(secondsOfDay(killedAt), leasedAt)
        XCTAssertLessThanOrEqual(leaseAfterKill, resumeAfterKill)
        XCTAssertLessThan(leaseAfterKill - freeAfterKill, 10, "w2 took the expired job promptly once it was free")

        let rows = try cluster.waitForAllFinished(timeout: 120)
        print("orchestrator status after the worker kill:\n\(try cluster.statusText())")
        XCTAssertEqual(rows.count, 2)
        let job = try XCTUnwrap(rows.first { $0.id == id })
        XCTAssertEqual(job.state, "succeeded")
        XCTAssertEqual(job.attempt, 2, "the expired lease counted as an attempt")
        XCTAssertEqual(job.resumedFromStep, checkpointStep)
        XCTAssertEqual(job.worker, "w2")
        let out = try cluster.fetchAll()
        for row in rows { _ = try checkFetched(row, in: out, steps: steps, logDir: cluster.logDir) }
    }

    func testLossesAfterAResumeEqualAnUninterruptedRun() throws {
        let cluster = try Cluster(leaseTimeout: 3)
        self.cluster = cluster
        let steps = 30
        // The same style and seed twice; "straight" goes first (higher priority).
        let config = try cluster.writeConfig(
            styles: [("straight", 21, ["priority": 1]), ("resumed", 21, ["priority": 0])], steps: steps)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)

        let solo = try cluster.startWorker("solo", extra: ["--once"])
        XCTAssertEqual(solo.waitForExit(timeout: 120), 0, "--once exits 0 after one job: \(solo.stderr)")
        let afterFirst = try cluster.status()
        XCTAssertEqual(afterFirst.first { $0.name == "straight" }?.state, "succeeded")
        XCTAssertEqual(afterFirst.first { $0.name == "resumed" }?.state, "queued", "--once took one job only")

        let victim = try cluster.startWorker("victim")
        let id = try leasedJobID(cluster.waitForLog(victim, containing: "leased job "))
        _ = try cluster.waitForLog(victim, containing: "job \(id): checkpoint step ")
        victim.kill(SIGKILL)
        XCTAssertNotNil(victim.waitForExit(timeout: 10))
        let checkpointStep = try XCTUnwrap(lastUploadedCheckpoint(in: victim.stderr, job: id), victim.stderr)
        XCTAssertLessThan(checkpointStep, steps)

        let rescuer = try cluster.startWorker("rescuer")
        let rows = try cluster.waitForAllFinished(timeout: 120)
        XCTAssertTrue(rescuer.stderr.contains("resuming job \(id) from step \(checkpointStep)"), rescuer.stderr)
        let job = try XCTUnwrap(rows.first { $0.name == "resumed" })
        XCTAssertEqual(job.resumedFromStep, checkpointStep)
        XCTAssertEqual(job.attempt, 2)

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
}

// MARK: - Reading worker logs

/// The job id in a `leased job N "name" attempt A` line.
func leasedJobID(_ line: String) throws -> Int64 {
    guard let range = line.range(of: "leased job "),
          let id = Int64(line[range.upperBound...].prefix { $0.isNumber }) else {
        throw HarnessError("no job id in \"\(line)\"")
    }
    return id
}

/// The step of the last `job N: checkpoint step S uploaded` line.
func lastUploadedCheckpoint(in log: String, job: Int64) -> Int? {
    let prefix = "job \(job): checkpoint step "
    return log.split(separator: "\n").compactMap { line -> Int? in
        guard line.hasSuffix(" uploaded"), let r = line.range(of: prefix) else { return nil }
        return Int(line[r.upperBound...].prefix { $0.isNumber })
    }.last
}

/// The time of day (seconds since local midnight) of the first worker log line containing
/// `text`; worker lines start with `HH:MM:SS.mmm`.
func logTime(of text: String, in log: String) -> Double? {
    guard let line = log.split(separator: "\n").first(where: { $0.contains(text) }) else { return nil }
    let parts = line.prefix(12).split(whereSeparator: { $0 == ":" || $0 == "." }).compactMap { Double($0) }
    guard parts.count == 4 else { return nil }
    return parts[0] * 3600 + parts[1] * 60 + parts[2] + parts[3] / 1000
}

/// `date` as seconds since local midnight, the clock of the worker's log lines.
func secondsOfDay(_ date: Date) -> Double {
    var seconds = time_t(date.timeIntervalSince1970)
    var parts = tm()
    localtime_r(&seconds, &parts)
    let t = date.timeIntervalSince1970
    let fraction = t - t.rounded(.down)
    let whole = Int(parts.tm_hour) * 3600 + Int(parts.tm_min) * 60 + Int(parts.tm_sec)
    return Double(whole) + fraction
}

/// `to - from` for two times of day, across midnight if need be (both within 12 hours).
func secondsBetween(_ from: Double, _ to: Double) -> Double {
    var d = to - from
    if d < -43_200 { d += 86_400 }
    if d > 43_200 { d -= 86_400 }
    return d
}


/// Issue 11, finding 5: a checkpoint or model upload sent no heartbeat, so on a slow link (an
/// upload longer than the lease) the worker lost its lease, an attempt was charged, and this
/// repeated until the job failed.
final class SlowLinkTests: XCTestCase {
    var cluster: Cluster?
    var proxy: ThrottledProxy?

    override func tearDown() {
        proxy?.stop()
        cluster?.shutdown(printLogs: (testRun?.failureCount ?? 0) > 0)
        cluster = nil
        super.tearDown()
    }

    func testUploadsLongerThanTheLeaseKeepTheLease() throws {
        let cluster = try Cluster(leaseTimeout: 2)
        self.cluster = cluster
        let config = try cluster.writeConfig(styles: [("slow", 21, [:])], steps: 4, checkpointEvery: 2)
        try cluster.startCoordinator()
        try cluster.waitForCoordinator()
        try cluster.submit(config)
        // About 6.7 MB of weights per model and three times that per checkpoint (Adam's
        // moments), at 4 MB/s: each upload takes several lease periods.
        let proxy = try ThrottledProxy(targetPort: cluster.port, bytesPerSecond: 4 << 20)
        self.proxy = proxy
        let worker = try cluster.startWorker("w1", via: "127.0.0.1:\(proxy.port)")
        let rows = try cluster.waitForAllFinished(timeout: 240)
        let log = worker.stderr
        XCTAssertEqual(rows.first?.state, "succeeded", log)
        XCTAssertEqual(rows.first?.attempt, 1, "no attempt was charged for slow uploads: \(log)")
        XCTAssertFalse(log.contains("stale lease"), log)
        XCTAssertTrue(log.contains("checkpoint step 2 uploaded"), log)
    }
}
