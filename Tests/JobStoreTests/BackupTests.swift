import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

/// `JobStore.backup`: an online copy through SQLite's backup API.
final class BackupTests: XCTestCase {
    func testBackupHoldsEveryCommitStillInTheWALAndOpensAsAStore() async throws {
        // Given a live store (still open, as a running coordinator's) with a finished job and a
        // running one with losses and a checkpoint, every commit of it still in jobs.sqlite-wal
        let (store, clock, path) = try makeStore(self)
        let ids = try await store.submitJobs([config("done"), config("running", priority: -1), config("waiting", priority: -2)]).created
        let l1 = try await lease(store, worker: "w1")
        try await store.completeJob(jobID: ids[0], token: l1.token, modelSHA256: digest(1), modelSize: 11,
                                    lossPoints: [loss(1, 3.5)])
        let l2 = try await lease(store, worker: "w2")
        _ = try await store.heartbeat(jobID: ids[1], token: l2.token, progress: JobProgress(step: 4, imagesDone: 16),
                                      lossPoints: (1...4).map { loss($0, 10 - Double($0)) })
        try await store.recordCheckpoint(jobID: ids[1], token: l2.token, step: 4, imagesSeen: 16,
                                         sha256: digest(4), size: 40, path: "artifacts/00/\(digest(4))")
        XCTAssertGreaterThan(BackupTests.size(path + "-wal"), 0, "the commits should still be in the WAL")
        let mainFileBefore = try Data(contentsOf: URL(fileURLWithPath: path))

        // When it is backed up
        let out = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("backup.sqlite").path
        let summary = try JobStore.backup(databaseAt: path, to: out)

        // Then the summary counts what it holds, the live file is unchanged, and the copy is one
        // self-contained file
        XCTAssertEqual(summary.path, out)
        XCTAssertEqual(summary.jobs, [.queued: 1, .running: 1, .succeeded: 1, .failed: 0, .cancelled: 0])
        XCTAssertEqual(summary.jobCount, 3)
        XCTAssertEqual(summary.checkpoints, 1)
        XCTAssertEqual(summary.lossPoints, 5)
        XCTAssertEqual(summary.bytes, BackupTests.size(out))
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), mainFileBefore)
        XCTAssertFalse(FileManager.default.fileExists(atPath: out + "-wal"))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: URL(fileURLWithPath: out).deletingLastPathComponent().path)
            .filter { $0.contains("partial") }
        XCTAssertEqual(leftovers, [])

        // And it opens as a store holding everything, where the running job's lease still works
        let restored = try JobStore(path: out, clock: clock)
        let jobsBackedUp = try await restored.jobs()
        let jobsLive = try await store.jobs()
        XCTAssertEqual(jobsBackedUp, jobsLive)
        for id in ids {
            let copy = try await JobSnapshot(restored, id)
            let live = try await JobSnapshot(store, id)
            XCTAssertEqual(copy, live, "job \(id)")
        }
        let migrations = try await restored.appliedMigrations()
        XCTAssertEqual(migrations, ["v1", "v2", "v3", "v4", "v5", "v6", "v7"])
        let beat = try await restored.heartbeat(jobID: ids[1], token: l2.token, progress: JobProgress(step: 5, imagesDone: 20))
        XCTAssertEqual(beat, .continue(leaseExpiresAt: clock.now().addingTimeInterval(60)))
        try restored.close()
        try store.close()
    }

    func testBackupOfAStoppedCoordinatorsDatabaseLeavesItAsItWas() async throws {
        // Given a store closed by its coordinator (the WAL folded into the main file)
        let (store, _, path) = try makeStore(self)
        _ = try await submitOne(store, "one")
        try store.close()
        let dir = URL(fileURLWithPath: path).deletingLastPathComponent()
        let filesBefore = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        let bytesBefore = try Data(contentsOf: URL(fileURLWithPath: path))

        // When it is backed up
        let out = dir.appendingPathComponent("backup.sqlite").path
        let summary = try JobStore.backup(databaseAt: path, to: out)

        // Then the database is as it was: the same bytes, an empty WAL (SQLite's read-only WAL
        // access leaves the -wal and -shm it needs, which the next coordinator uses), and it
        // opens as before
        XCTAssertEqual(summary.jobCount, 1)
        XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: path)), bytesBefore)
        let filesAfter = Set(try FileManager.default.contentsOfDirectory(atPath: dir.path))
        XCTAssertEqual(filesAfter.subtracting(filesBefore),
                       filesAfter.intersection(["backup.sqlite", "jobs.sqlite-wal", "jobs.sqlite-shm"]))
        XCTAssertTrue(filesAfter.contains("backup.sqlite"))
        XCTAssertLessThanOrEqual(BackupTests.size(path + "-wal"), 0, "nothing was written to the WAL")
        let reopened = try JobStore(path: path)
        let names = try await reopened.jobs().map(\.job.name)
        XCTAssertEqual(names, ["one"])
        try reopened.close()
    }

    func testBackupTakenWhileAnotherConnectionWritesHoldsEveryCommitBeforeIt() async throws {
        // Given a live store on a file and a job leased on it
        let (store, _, path) = try makeStore(self)
        let id = try await submitOne(store, "busy")
        let held = try await lease(store, worker: "w1")
        let out = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("backup.sqlite").path

        // When one task commits step after step (a heartbeat with its loss point, and a
        // checkpoint every 2 steps, as a worker does) while the backup runs on another thread
        let committed = Counter(), stop = Counter()
        let writer = Task {
            for step in 1...400 {
                if stop.value != 0 { break }
                _ = try await store.heartbeat(jobID: id, token: held.token, progress: JobProgress(step: step, imagesDone: step * 4),
                                              lossPoints: [loss(step, 100 / Double(step))])
                if step % 2 == 0 {
                    try await store.recordCheckpoint(jobID: id, token: held.token, step: step, imagesSeen: step * 4,
                                                     sha256: digest(step), size: Int64(step), path: "ck/\(step)")
                }
                committed.set(step)
            }
        }
        let started = await waitUntil { committed.value >= 20 }
        XCTAssertTrue(started, "the writer made no progress")
        let before = committed.value
        let summary = try await Self.offThread { try JobStore.backup(databaseAt: path, to: out) }
        let after = committed.value
        stop.set(1)
        try await writer.value

        // Then the backup is the store as of one commit at or after the last step committed
        // before it began: every step up to there, each with its loss point, nothing torn
        let restored = try JobStore(path: out)
        let job = try await require { try await restored.job(id: id) }
        let steps = try await restored.lossPoints(jobID: id).map(\.step)
        let checkpoints = try await restored.checkpoints(jobID: id).map(\.step)
        print("backup began after step \(before), holds step \(job.step); the writer was at step \(after) when it returned")
        XCTAssertGreaterThanOrEqual(job.step, before, "a step committed before the backup began is missing")
        XCTAssertLessThanOrEqual(job.step, after + 1)
        XCTAssertEqual(steps, Array(1...job.step), "one loss point per committed step")
        let lastCheckpoint = job.step - job.step % 2
        let expected = Array(stride(from: 2, through: lastCheckpoint, by: 2))
        // The backup may fall between a step's heartbeat and its checkpoint.
        XCTAssertTrue(checkpoints == expected || checkpoints == expected.dropLast(), "\(checkpoints) at step \(job.step)")
        let latest = try await restored.latestCheckpoint(jobID: id)
        XCTAssertEqual(latest?.step, checkpoints.last)
        XCTAssertEqual(summary.lossPoints, job.step)
        XCTAssertEqual(summary.checkpoints, checkpoints.count)
        try restored.close()
        try store.close()
    }

    func testRefusesToOverwriteUnlessAskedAndNeverTheDatabaseItself() async throws {
        let (store, _, path) = try makeStore(self)
        _ = try await submitOne(store, "one")
        let out = URL(fileURLWithPath: path).deletingLastPathComponent().appendingPathComponent("old-backup.sqlite").path
        try Data("an earlier backup".utf8).write(to: URL(fileURLWithPath: out))

        XCTAssertThrowsError(try JobStore.backup(databaseAt: path, to: out)) { error in
            XCTAssertEqual(error as? BackupError, .destinationExists(path: out))
            XCTAssertEqual(String(describing: error), "\(out) already exists; not overwriting it")
        }
        XCTAssertEqual(try String(contentsOf: URL(fileURLWithPath: out), encoding: .utf8), "an earlier backup")

        let summary = try JobStore.backup(databaseAt: path, to: out, replacing: true)
        XCTAssertEqual(summary.jobCount, 1)
        let restored = try JobStore(path: out)
        let names = try await restored.jobs().map(\.job.name)
        XCTAssertEqual(names, ["one"])
        try restored.close()

        for replacing in [false, true] {
            XCTAssertThrowsError(try JobStore.backup(databaseAt: path, to: path, replacing: replacing)) { error in
                XCTAssertEqual(error as? BackupError,
                               .unwritableDestination(path: path, reason: "it is the database being backed up"))
            }
        }
        let stillThere = try await store.jobs().map(\.job.name)
        XCTAssertEqual(stillThere, ["one"])
        try store.close()
    }

    func testClearErrorsForABadSourceOrAnUnwritableOutput() throws {
        let dir = try makeTemporaryDirectory(self)
        let out = dir.appendingPathComponent("backup.sqlite").path

        // A file that is not a database
        let garbage = dir.appendingPathComponent("jobs.sqlite").path
        try Data(repeating: 0x5a, count: 8192).write(to: URL(fileURLWithPath: garbage))
        XCTAssertThrowsError(try JobStore.backup(databaseAt: garbage, to: out)) { error in
            XCTAssertEqual(String(describing: error), "cannot back up \(garbage): file is not a database")
        }

        // A missing state directory, a missing file, a directory
        let missingDir = dir.appendingPathComponent("no-such-state").path
        XCTAssertThrowsError(try JobStore.backup(databaseAt: missingDir + "/jobs.sqlite", to: out)) { error in
            XCTAssertEqual(String(describing: error),
                           "cannot back up \(missingDir)/jobs.sqlite: no such file (directory \(missingDir) does not exist)")
        }
        XCTAssertThrowsError(try JobStore.backup(databaseAt: dir.appendingPathComponent("nope.sqlite").path, to: out)) { error in
            XCTAssertEqual(String(describing: error),
                           "cannot back up \(dir.appendingPathComponent("nope.sqlite").path): no such file or directory")
        }
        XCTAssertThrowsError(try JobStore.backup(databaseAt: dir.path, to: out)) { error in
            XCTAssertEqual(String(describing: error), "cannot back up \(dir.path): not a regular file")
        }

        // An output in a directory that does not exist, or that is a directory
        let store = try JobStore(path: dir.appendingPathComponent("state/jobs.sqlite").path)
        let source = dir.appendingPathComponent("state/jobs.sqlite").path
        XCTAssertThrowsError(try JobStore.backup(databaseAt: source, to: missingDir + "/b.sqlite")) { error in
            XCTAssertEqual(String(describing: error),
                           "cannot write \(missingDir)/b.sqlite: directory \(missingDir) does not exist")
        }
        XCTAssertThrowsError(try JobStore.backup(databaseAt: source, to: dir.path, replacing: true)) { error in
            XCTAssertEqual(String(describing: error), "cannot write \(dir.path): it is a directory")
        }
        try store.close()

        // Nothing was written
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted()
        XCTAssertEqual(names, ["jobs.sqlite", "state"])
    }

    // MARK: - Helpers

    static func size(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? -1
    }

    /// Runs a blocking call on a thread of its own, so that the cooperative pool stays free
    /// for the writer task.
    static func offThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try body() }) }
        }
    }

    /// Polls `condition` for up to 30 s.
    func waitUntil(_ condition: () -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(30)
        while Date() < deadline {
            if condition() { return true }
            try? await Task.sleep(nanoseconds: 2_000_000)
        }
        return condition()
    }
}

/// A thread-safe integer the writer task publishes its progress through.
final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var current = 0
    var value: Int { lock.lock(); defer { lock.unlock() }; return current }
    func set(_ n: Int) { lock.lock(); current = n; lock.unlock() }
}
