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

    func cleanUp() {
        try? store.close()
        harness.cleanUp()
    }

    func artifactExists(_ sha: String) -> Bool { FileManager.default.fileExists(atPath: harness.artifactURL(sha).path) }

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
