import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

/// Artifacts the coordinator serves itself (VGG16 weights) count as referenced, so the garbage
/// collector keeps them; pinning other weights lets the old ones go.
final class PinTests: XCTestCase {
    func testAPinnedArtifactIsReferencedUntilReplaced() async throws {
        let (store, _, _) = try makeStore(self)
        let before = try await store.referencedArtifacts()
        XCTAssertFalse(before.contains(digest(1)))
        try await store.pinArtifact(digest(1), as: "VGG16 weights")
        let pinned = try await store.referencedArtifacts()
        XCTAssertTrue(pinned.contains(digest(1)))
        let retention = try await store.pruneCheckpoints(keepLatest: 2, dryRun: true)
        XCTAssertTrue(retention.referenced.contains(digest(1)), "what the collector is given")

        try await store.pinArtifact(digest(2), as: "VGG16 weights")
        let replaced = try await store.referencedArtifacts()
        XCTAssertFalse(replaced.contains(digest(1)), "a restart with other weights lets the old ones go")
        XCTAssertTrue(replaced.contains(digest(2)))
        let all = try await store.pinnedArtifacts()
        XCTAssertEqual(all, [digest(2): "VGG16 weights"])
        do {
            try await store.pinArtifact("not-a-digest", as: "x")
            XCTFail("pinned a non-digest")
        } catch StoreError.invalidConfig {}
    }
}
