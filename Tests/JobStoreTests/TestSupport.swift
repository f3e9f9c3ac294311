import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

// MARK: - Fixtures

/// A temporary directory removed when the test case ends.
func makeTemporaryDirectory(_ testCase: XCTestCase) throws -> URL {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("JobStoreTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    testCase.addTeardownBlock { try? FileManager.default.removeItem(at: dir) }
    return dir
}

/// A store in a fresh temporary SQLite file, on a manual clock.
func makeStore(_ testCase: XCTestCase, clock: ManualClock = ManualClock(),
               leaseDuration: TimeInterval = 60) throws -> (JobStore, ManualClock, String) {
    let path = try makeTemporaryDirectory(testCase).appendingPathComponent("jobs.sqlite").path
    return (try JobStore(path: path, clock: clock, leaseDuration: leaseDuration), clock, path)
}

/// A 64-hex-digit digest that differs for each `n`.
func digest(_ n: Int) -> String {
    let hex = String(n, radix: 16)
    return String(repeating: "0", count: 64 - hex.count) + hex
}

func config(_ name: String, priority: Int = 0, maxAttempts: Int = 3, steps: Int? = nil) -> JobConfig {
    JobConfig(name: name, styleSHA256: digest(name.utf8.reduce(7) { ($0 &* 31 &+ Int($1)) & 0xffffff }), steps: steps,
              priority: priority, maxAttempts: maxAttempts)
}

/// Submits one job and returns its id.
func submitOne(_ store: JobStore, _ name: String, priority: Int = 0, maxAttempts: Int = 3) async throws -> Int64 {
    let result = try await store.submitJobs([config(name, priority: priority, maxAttempts: maxAttempts)])
    guard let id = result.created.first else {
        throw StoreError.invalidConfig(reason: "test fixture: \(name) was not created")
    }
    return id
}

/// Leases the next job or fails the test.
func lease(_ store: JobStore, worker: String, file: StaticString = #filePath, line: UInt = #line) async throws -> Lease {
    let lease = try await store.leaseNextJob(worker: worker, host: "\(worker).local", threads: 2)
    return try XCTUnwrap(lease, "no job to lease for \(worker)", file: file, line: line)
}

func loss(_ step: Int, _ total: Double) -> LossPoint {
    LossPoint(step: step, images: step * 4, content: total / 2, style: total / 2, total: total)
}

// MARK: - Snapshots

/// Everything the store holds about one job, to assert that a refused verb changed nothing.
struct JobSnapshot: Equatable {
    var job: Job?
    var lossPoints: [LossPoint]
    var checkpoints: [CheckpointRecord]
    var events: [JobEvent]

    init(_ store: JobStore, _ id: Int64) async throws {
        job = try await store.job(id: id)
        lossPoints = try await store.lossPoints(jobID: id)
        checkpoints = try await store.checkpoints(jobID: id)
        events = try await store.events(jobID: id)
    }
}

// MARK: - Assertions

/// Asserts that `body` throws a `StoreError` for which `matches` is true.
func assertStoreError<T>(_ body: @autoclosure () async throws -> T, file: StaticString = #filePath,
                         line: UInt = #line, _ matches: (StoreError) -> Bool) async {
    do {
        let value = try await body()
        XCTFail("expected a StoreError, got \(value)", file: file, line: line)
    } catch let error as StoreError {
        XCTAssertTrue(matches(error), "unexpected error: \(error)", file: file, line: line)
    } catch {
        XCTFail("expected a StoreError, got \(error)", file: file, line: line)
    }
}

func isStaleLease(_ jobID: Int64) -> (StoreError) -> Bool {
    { if case .staleLease(jobID, _) = $0 { return true } else { return false } }
}

func isInvalidTransition(_ jobID: Int64, from: JobState, to: JobState) -> (StoreError) -> Bool {
    { error in
        if case .invalidTransition(jobID, from, to) = error { return true } else { return false }
    }
}

/// The value `body` returns, failing the test if it is nil (`XCTUnwrap` for async calls).
func require<T>(_ body: () async throws -> T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    let value = try await body()
    return try XCTUnwrap(value, file: file, line: line)
}
