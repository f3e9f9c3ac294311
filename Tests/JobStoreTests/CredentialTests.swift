import CoordinatorAPI
import Foundation
@testable import JobStore
import XCTest

/// Worker credentials in the store: made with a hash only, found by token, revoked once, and
/// recorded in the leases they take.
final class CredentialTests: XCTestCase {
    func testATokenIsStoredOnlyAsItsHashAndFoundByIt() async throws {
        let (store, clock, path) = try makeStore(self)
        let (made, token) = try await store.createWorkerCredential(name: "gpu1")
        XCTAssertEqual(made.name, "gpu1")
        XCTAssertEqual(made.createdAt, clock.now())
        XCTAssertEqual(made.tokenSHA256, FileDigest.sha256(of: Data(token.utf8)))
        let found = try await store.credential(token: token)
        XCTAssertEqual(found, made)
        for other in [String(token.dropLast()), token + "0", "gpu1", "", JobStore.workerTokenPrefix] {
            let none = try await store.credential(token: other)
            XCTAssertNil(none, other)
        }
        try store.close()
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
            + ((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data())
        XCTAssertNil(bytes.range(of: Data(token.utf8)), "the token itself is nowhere in the database")
        XCTAssertNil(bytes.range(of: Data(token.dropFirst(5).prefix(20).utf8)))
    }

    func testNamesDefaultAndAreCheckedAndTokensDiffer() async throws {
        let (store, _, _) = try makeStore(self)
        let a = try await store.createWorkerCredential(name: nil)
        let b = try await store.createWorkerCredential(name: nil)
        XCTAssertEqual([a.credential.name, b.credential.name], ["worker-1", "worker-2"])
        XCTAssertNotEqual(a.token, b.token)
        for bad in ["", "a\nb", String(repeating: "x", count: 300)] {
            do {
                _ = try await store.createWorkerCredential(name: bad)
                XCTFail("accepted \(bad.debugDescription)")
            } catch StoreError.invalidConfig(let reason) {
                XCTAssertTrue(reason.hasPrefix("token name:"), reason)
            }
        }
        let all = try await store.credentials()
        XCTAssertEqual(all.count, 2)
    }

    func testRevokingKeepsTheFirstTimeAndAnUnknownIdIsNotFound() async throws {
        let (store, clock, _) = try makeStore(self)
        let (made, token) = try await store.createWorkerCredential(name: "gpu1")
        clock.advance(by: 10)
        let first = try await store.revokeCredential(id: made.id)
        XCTAssertEqual(first.revokedAt, clock.now())
        clock.advance(by: 10)
        let again = try await store.revokeCredential(id: made.id)
        XCTAssertEqual(again.revokedAt, first.revokedAt)
        let found = try await store.credential(token: token)
        XCTAssertTrue(found?.isRevoked ?? false, "a revoked credential is still found (to say it was revoked)")
        do {
            try await store.revokeCredential(id: 99)
            XCTFail("revoked an unknown id")
        } catch StoreError.credentialNotFound(let id) {
            XCTAssertEqual(id, 99)
        }
    }

    func testALeaseRecordsItsCredentialAndItsLastUse() async throws {
        let (store, clock, _) = try makeStore(self)
        let (made, _) = try await store.createWorkerCredential(name: "gpu1")
        _ = try await submitOne(store, "a")
        _ = try await submitOne(store, "b")
        clock.advance(by: 5)
        let first = try await store.leaseNextJob(worker: "w", host: "h", threads: 1, credentialID: made.id)
        let second = try await store.leaseNextJob(worker: "w2", host: "h", threads: 1)
        let byWorker = try XCTUnwrap(first), byAdmin = try XCTUnwrap(second)
        XCTAssertEqual(byWorker.job.leaseCredentialID, made.id)
        XCTAssertNil(byAdmin.job.leaseCredentialID)
        let holderA = try await store.leaseCredential(jobID: byWorker.job.id)
        let holderB = try await store.leaseCredential(jobID: byAdmin.job.id)
        let holderNone = try await store.leaseCredential(jobID: 99)
        XCTAssertEqual(holderA, .some(made.id))
        XCTAssertEqual(holderB, .some(nil))
        XCTAssertNil(holderNone)
        let listed = try await store.credentials()
        XCTAssertEqual(listed.first?.lastUsedAt, clock.now())
        let needed = try await store.artifactNeeded(sha256: byWorker.job.config.styleSHA256, byCredential: made.id)
        let notNeeded = try await store.artifactNeeded(sha256: byAdmin.job.config.styleSHA256, byCredential: made.id)
        XCTAssertTrue(needed)
        XCTAssertFalse(notNeeded)
    }
}
