@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

// MARK: - A coordinator for the storage tests

/// A `Harness` state directory served with a configurable `StoragePolicy`, and a store on the
/// system clock: row times and file times then agree, as in production (the collector compares
/// them). Remove with `cleanUp()`.
final class StorageFixture: @unchecked Sendable {
    let harness: Harness
    let store: JobStore
    var config: CoordinatorConfig

    init(maxUploadBytes: Int64 = 1 << 20, _ configure: (inout CoordinatorConfig) -> Void = { _ in }) throws {
        harness = try Harness(maxUploadBytes: maxUploadBytes)
        store = try JobStore(path: harness.config.databasePath, leaseDuration: 60)
        config = harness.config
        configure(&config)
    }

    func app() throws -> some ApplicationProtocol { try buildCoordinator(config, store: store) }

    /// A collector like `orchestrator gc`'s.
    func collect(dryRun: Bool = false, hoursLater: Double = 0) async throws -> GarbageReport {
        try await GarbageCollector(config: config, store: store)
            .collect(dryRun: dryRun, now: Date().addingTimeInterval(hoursLater * 3600))
    }

    func cleanUp() {
        try? store.close()
        harness.cleanUp()
    }

    func artifactExists(_ sha: String) -> Bool { FileManager.default.fileExists(atPath: harness.artifactURL(sha).path) }

    /// Sets a file's modification time `hours` in the past.
    func age(_ url: URL, hours: Double) throws {
        try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(-hours * 3600)],
                                              ofItemAtPath: url.path)
    }

    func ageArtifact(_ sha: String, hours: Double = 2) throws { try age(harness.artifactURL(sha), hours: hours) }

    /// Seconds since the artifact's file was modified.
    func artifactAge(_ sha: String) throws -> TimeInterval {
        let attributes = try FileManager.default.attributesOfItem(atPath: harness.artifactURL(sha).path)
        return Date().timeIntervalSince(try XCTUnwrap(attributes[.modificationDate] as? Date))
    }

    /// Fails the test for every digest a row references whose file is missing.
    func assertEveryReferencedFileExists(file: StaticString = #filePath, line: UInt = #line) async throws {
        for sha in try await store.referencedArtifacts() where !artifactExists(sha) {
            XCTFail("a row references \(sha) but its file is gone", file: file, line: line)
        }
    }
}

// MARK: - Requests

extension TestClientProtocol {
    /// Uploads a final model under `leaseToken`.
    func putModel(job: Int64, data: Data, leaseToken: String) async throws -> TestResponse {
        try await execute(uri: "/v1/jobs/\(job)/model", method: .put,
                          headers: headers(token: Harness.token, [.init("X-Lease-Token")!: leaseToken,
                                                                  .init("X-Content-SHA256")!: sha256Hex(data)]),
                          body: ByteBuffer(bytes: data))
    }

    /// Uploads `data` as an artifact and answers the response, whatever its status.
    func tryPutArtifact(_ data: Data) async throws -> TestResponse {
        try await execute(uri: "/v1/artifacts/\(sha256Hex(data))", method: .put, headers: headers(),
                          body: ByteBuffer(bytes: data))
    }
}

/// `n` bytes that differ with `seed`.
func bytes(_ n: Int, seed: Int) -> Data {
    Data((0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ seed &* 7 &+ ($0 >> 8)) })
}

// MARK: - Bodies for ArtifactStore.ingest

/// A request body fed by the test: `send` buffers, then `finish`.
struct TestBody: Sendable {
    let stream: AsyncStream<ByteBuffer>
    let continuation: AsyncStream<ByteBuffer>.Continuation

    init() { (stream, continuation) = AsyncStream.makeStream(of: ByteBuffer.self) }

    func send(_ data: Data) { continuation.yield(ByteBuffer(bytes: data)) }
    func finish() { continuation.finish() }
}
