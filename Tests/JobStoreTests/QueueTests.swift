import CoordinatorAPI
@testable import JobStore
import XCTest

/// Submission, queue order and concurrent leasing.
final class QueueTests: XCTestCase {
    // MARK: - Order

    func testHigherPriorityFirstThenFIFO() async throws {
        // Given jobs submitted as low, high-1, normal, high-2, normal-2
        let (store, _, _) = try makeStore(self)
        let result = try await store.submitJobs([
            config("low", priority: -1), config("high1", priority: 5), config("normal1"),
            config("high2", priority: 5), config("normal2"),
        ])
        XCTAssertEqual(result.created.count, 5)
        XCTAssertEqual(result.skipped, [])

        // When workers lease them one by one
        var order: [String] = []
        while let lease = try await store.leaseNextJob(worker: "w", host: "h", threads: 1) {
            order.append(lease.job.name)
        }

        // Then priority wins, and within a priority the oldest goes first
        XCTAssertEqual(order, ["high1", "high2", "normal1", "normal2", "low"])
    }

    func testReleasedJobKeepsItsPlaceInTheQueue() async throws {
        let (store, _, _) = try makeStore(self)
        _ = try await store.submitJobs([config("first"), config("second")])
        let l = try await lease(store, worker: "w1")
        XCTAssertEqual(l.job.name, "first")
        try await store.releaseJob(jobID: l.job.id, token: l.token)
        let releasedName = try await lease(store, worker: "w2").job.name
        XCTAssertEqual(releasedName, "first")
    }

    // MARK: - Submission

    func testSubmitSkipsLiveDuplicatesUnlessForced() async throws {
        // Given "mosaic" queued, "wave" running and "candy" succeeded
        let (store, _, _) = try makeStore(self)
        _ = try await store.submitJobs([config("wave"), config("candy"), config("mosaic")])
        let wave = try await lease(store, worker: "w1")
        let candy = try await lease(store, worker: "w2")
        try await store.completeJob(jobID: candy.job.id, token: candy.token, modelSHA256: digest(1), modelSize: 1)

        // When the same config is submitted again, with a duplicate inside it
        let again = try await store.submitJobs([config("wave"), config("candy"), config("mosaic"),
                                                config("new"), config("new")])

        // Then live names are skipped, finished ones and new ones are created once
        XCTAssertEqual(again.skipped, ["wave", "mosaic", "new"])
        XCTAssertEqual(again.created.count, 2)
        let jobCount = try await store.jobs().count
        XCTAssertEqual(jobCount, 5)

        // When forced, a live name gets a second job, and the event says why
        let forced = try await store.submitJobs([config("wave")], force: true)
        XCTAssertEqual(forced.skipped, [])
        let newID = try XCTUnwrap(forced.created.first)
        let latestWaveID = try await store.job(named: "wave")?.id
        XCTAssertEqual(latestWaveID, newID)
        let forcedEvents = try await store.events(jobID: newID)
        XCTAssertEqual(forcedEvents.first?.reason,
                       "submitted with force while job \(wave.job.id) is running")
    }

    /// Issue 11, finding 1: `steps * batch_size` trapped on a huge `steps` and one request
    /// killed the coordinator. The store refuses the config, naming the value, and lives on.
    func testAHugeStepCountIsRefusedNotATrap() async throws {
        let (store, _, _) = try makeStore(self)
        var huge = config("huge")
        huge.steps = 4_611_686_018_427_387_904
        await assertStoreError(try await store.submitJobs([huge])) { error in
            guard case .invalidConfig(let reason) = error else { return false }
            return reason.contains("steps: must be from 1 to 100000000, got 4611686018427387904")
        }
        let jobs = try await store.jobs()
        XCTAssertEqual(jobs.count, 0)
        let ok = try await store.submitJobs([config("fine", steps: 10)])
        XCTAssertEqual(ok.created.count, 1, "the store keeps working")
    }

    func testInvalidConfigsCreateNothing() async throws {
        // Given one good config and two bad ones
        let (store, _, _) = try makeStore(self)
        var bad = config("ok-2")
        bad.imageSize = -3
        bad.lr = .nan
        let traversal = config("../etc/passwd")

        // When submitted together
        await assertStoreError(try await store.submitJobs([config("ok"), bad, traversal])) { error in
            guard case .invalidConfig(let reason) = error else { return false }
            // Then every problem is reported with its index and key
            return reason.contains("configs[1] (ok-2): image_size: must be from 8 to 2048, got -3")
                && reason.contains("configs[1] (ok-2): lr:")
                && reason.contains("configs[2] (../etc/passwd): name:")
        }
        // And nothing was created
        let jobCount = try await store.jobs().count
        XCTAssertEqual(jobCount, 0)
    }

    func testConfigDecodesSnakeCaseWithDefaults() throws {
        let json = #"{"name":"wave","style_sha256":"\#(digest(5))","steps":20,"batch_size":2}"#
        let decoded = try JSONDecoder().decode(JobConfig.self, from: Data(json.utf8))
        XCTAssertEqual(decoded, JobConfig(name: "wave", styleSHA256: digest(5), batchSize: 2, steps: 20))
        XCTAssertEqual(decoded.imageSize, 256)
        XCTAssertEqual(decoded.maxAttempts, 3)
        let encoded = String(decoding: try JSONEncoder().encode(decoded), as: UTF8.self)
        XCTAssertTrue(encoded.contains(#""checkpoint_every":100"#), encoded)
        XCTAssertTrue(encoded.contains(#""style_sha256":"#), encoded)
    }

    func testStepsConfigSetsTotals() async throws {
        let (store, _, _) = try makeStore(self)
        let id = try await require { try await store.submitJobs([config("s", steps: 50)]).created.first }
        let job = try await require { try await store.job(id: id) }
        XCTAssertEqual(job.stepsTotal, 50)
        XCTAssertEqual(job.imagesTotal, 200)
        XCTAssertEqual(job.config.steps, 50)
    }

    // MARK: - Concurrency

    func testConcurrentLeasesNeverShareAJob() async throws {
        // Given 8 queued jobs and two stores open on the same file (two connection pools)
        let (store, clock, path) = try makeStore(self)
        let other = try JobStore(path: path, clock: clock)
        let ids = try await store.submitJobs((0..<8).map { config("job\($0)") }).created

        // When 8 tasks lease at once, alternating between the stores
        let leases = try await withThrowingTaskGroup(of: Lease?.self) { group in
            for i in 0..<8 {
                let s = i.isMultiple(of: 2) ? store : other
                group.addTask { try await s.leaseNextJob(worker: "w\(i)", host: "h", threads: 1) }
            }
            return try await group.reduce(into: [Lease]()) { if let l = $1 { $0.append(l) } }
        }

        // Then each got a different job, and nothing is left
        XCTAssertEqual(leases.count, 8)
        XCTAssertEqual(Set(leases.map(\.job.id)), Set(ids))
        XCTAssertEqual(Set(leases.map(\.token)).count, 8)
        let leftOver = try await other.leaseNextJob(worker: "w9", host: "h", threads: 1)
        XCTAssertNil(leftOver)
        let owners = try await store.jobs().compactMap(\.job.leaseOwner)
        XCTAssertEqual(Set(owners).count, 8)
        let busyWorkers = try await store.workers().compactMap(\.currentJobID).count
        XCTAssertEqual(busyWorkers, 8)
    }
}
