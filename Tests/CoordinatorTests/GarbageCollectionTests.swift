@testable import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Retention and garbage collection of the artifact store (`GarbageCollector`).
final class GarbageCollectionTests: XCTestCase {
    /// What `givenAStoreWithHistory` uploaded.
    struct History {
        var style: String
        var done: [String]        // job 1's checkpoints at steps 1, 2, 3
        var broken: [String]      // job 2's checkpoints at steps 1, 2
        var oldPreview: String, newPreview: String, model: String
        var orphanOld: String, orphanYoung: String
        var tmpOld: URL, tmpYoung: URL
    }

    /// Job 1 ("done") succeeded after three checkpoints and two previews, job 2 ("broken")
    /// failed after two checkpoints; two style images no job uses (one uploaded two hours
    /// ago), a preview superseded two hours ago, and two uploads left in tmp/ (one two hours old).
    func givenAStoreWithHistory(_ f: StorageFixture, _ client: some TestClientProtocol) async throws -> History {
        let style = try await client.putArtifact(makePNG(width: 8, height: 8))
        _ = try await client.submit(["done", "broken"], style: style)
        let l1 = try await client.lease()
        var done: [String] = []
        for step in 1...3 {
            let data = bytes(3000 + step, seed: step)
            let r = try await client.putCheckpoint(job: 1, step: step, images: step, data: data, leaseToken: l1.token)
            XCTAssertEqual(r.status, .created, String(buffer: r.body))
            done.append(sha256Hex(data))
        }
        let previews = [makePNG(width: 8, height: 8, seed: 1), makePNG(width: 8, height: 8, seed: 2)]
        for (i, png) in previews.enumerated() {
            let r = try await client.putPreview(job: 1, step: 1 + 2 * i, data: png, leaseToken: l1.token)
            XCTAssertEqual(r.status, .created, String(buffer: r.body))
        }
        let model = bytes(2000, seed: 99)
        let got1 = try await client.putModel(job: 1, data: model, leaseToken: l1.token).status
        XCTAssertEqual(got1, .created)
        let complete = try await client.send(.post, "/v1/jobs/1/complete",
                                             json: #"{"token": "\#(l1.token)", "model_sha256": "\#(sha256Hex(model))"}"#)
        XCTAssertEqual(complete.status, .ok, String(buffer: complete.body))

        let l2 = try await client.lease()
        var broken: [String] = []
        for step in 1...2 {
            let data = bytes(4000 + step, seed: 10 + step)
            let r = try await client.putCheckpoint(job: 2, step: step, images: step, data: data, leaseToken: l2.token)
            XCTAssertEqual(r.status, .created, String(buffer: r.body))
            broken.append(sha256Hex(data))
        }
        let fail = try await client.send(.post, "/v1/jobs/2/fail",
                                         json: #"{"token": "\#(l2.token)", "reason": "loss is NaN", "retryable": false}"#)
        XCTAssertEqual(fail.status, .ok, String(buffer: fail.body))

        let orphanOld = try await client.putArtifact(makePNG(width: 4, height: 4, seed: 7))
        let orphanYoung = try await client.putArtifact(makePNG(width: 4, height: 4, seed: 8))
        try f.ageArtifact(orphanOld)
        try f.ageArtifact(sha256Hex(previews[0]))
        let tmpOld = f.config.tmpDir.appendingPathComponent("upload-old")
        let tmpYoung = f.config.tmpDir.appendingPathComponent("upload-young")
        try bytes(500, seed: 1).write(to: tmpOld)
        try bytes(700, seed: 2).write(to: tmpYoung)
        try f.age(tmpOld, hours: 2)
        return History(style: style, done: done, broken: broken, oldPreview: sha256Hex(previews[0]),
                       newPreview: sha256Hex(previews[1]), model: sha256Hex(model),
                       orphanOld: orphanOld, orphanYoung: orphanYoung, tmpOld: tmpOld, tmpYoung: tmpYoung)
    }

    func testCollectionFreesWhatNoRowNeedsAndKeepsEverythingReferenced() async throws {
        let f = try StorageFixture()
        defer { f.cleanUp() }
        try await f.app().test(.router) { client in
            let h = try await givenAStoreWithHistory(f, client)
            let before = f.harness.files()

            // When a dry run looks
            let dry = try await f.collect(dryRun: true)

            // Then it reports what it would free and changes nothing
            XCTAssertEqual(f.harness.files(), before)
            let rows = try await f.store.checkpoints(jobID: 1).count
            XCTAssertEqual(rows, 3)
            XCTAssertEqual(dry.prunedCheckpoints.files, 3)  // job 1's first two (its last is kept for promote), job 2's step 1
            XCTAssertEqual(dry.prunedCheckpoints.bytes, Int64(3001 + 3002 + 4001))
            XCTAssertEqual(dry.unreferenced.files, 2)       // the old orphan and the superseded preview
            XCTAssertEqual(dry.temporary, .init(files: 1, bytes: 500))
            XCTAssertEqual(dry.young.files, 1)              // the young orphan
            XCTAssertEqual(dry.checkpointRowsDropped, 3)
            XCTAssertTrue(dry.description.hasPrefix("would free 6 files"), dry.description)

            // When the collection runs
            let report = try await f.collect()

            // Then it freed the same
            XCTAssertEqual(report.freed, dry.freed)
            XCTAssertEqual(report.errors, [])
            XCTAssertTrue(report.description.hasPrefix("freed 6 files"), report.description)
            // the succeeded job keeps its model and its last checkpoint (what promote continues
            // from), the failed one its latest checkpoint
            for sha in h.done.dropLast() + [h.broken[0], h.orphanOld, h.oldPreview] {
                XCTAssertFalse(f.artifactExists(sha), sha)
            }
            for sha in [h.style, h.model, h.newPreview, h.broken[1], h.orphanYoung, h.done.last!] {
                XCTAssertTrue(f.artifactExists(sha), sha)
            }
            XCTAssertFalse(FileManager.default.fileExists(atPath: h.tmpOld.path))
            XCTAssertTrue(FileManager.default.fileExists(atPath: h.tmpYoung.path))
            let left1 = try await f.store.checkpoints(jobID: 1).map(\.step)
            let left2 = try await f.store.checkpoints(jobID: 2).map(\.step)
            XCTAssertEqual(left1, [3])
            XCTAssertEqual(left2, [2])
            try await f.assertEveryReferencedFileExists()

            // And what the rows name is still served
            let got2 = try await client.send(.get, "/v1/jobs/1/model").status
            XCTAssertEqual(got2, .ok)
            let got3 = try await client.send(.get, "/v1/jobs/1/preview").status
            XCTAssertEqual(got3, .ok)
            // and the failed job, retried, resumes from its kept checkpoint
            let got4 = try await client.send(.post, "/v1/jobs/2/retry").status
            XCTAssertEqual(got4, .ok)
            let again = try await client.lease()
            XCTAssertEqual(again.checkpoint?.step, 2)
            let got5 = try await client.send(.get, "/v1/artifacts/\(h.broken[1])").status
            XCTAssertEqual(got5, .ok)

            // And a second collection an hour later takes the young orphan and the young tmp file only
            let later = try await f.collect(hoursLater: 1.01)
            XCTAssertEqual(later.unreferenced.files, 1)
            XCTAssertEqual(later.temporary.files, 1)
            XCTAssertEqual(later.checkpointRowsDropped, 0)
            XCTAssertFalse(f.artifactExists(h.orphanYoung))
            try await f.assertEveryReferencedFileExists()
        }
    }

    func testChecksBeforeANewReferenceRefreshTheFileSoTheGraceAgeProtectsIt() async throws {
        let f = try StorageFixture()
        defer { f.cleanUp() }
        try await f.app().test(.router) { client in
            // Given a style image uploaded two hours ago that no job uses yet
            let png = makePNG(width: 8, height: 8)
            let style = try await client.putArtifact(png)
            try f.ageArtifact(style)

            // When a client asks whether the coordinator has it (HEAD), as submit does
            let head = try await client.execute(uri: "/v1/artifacts/\(style)", method: .head, headers: headers())
            XCTAssertEqual(head.status, .ok)

            // Then the file is young again, and a collection keeps it
            XCTAssertLessThan(try f.artifactAge(style), 60)
            let report = try await f.collect()
            XCTAssertEqual(report.young.files, 1)
            XCTAssertTrue(f.artifactExists(style))

            // And submitting a job that uses it refreshes it too
            try f.ageArtifact(style)
            _ = try await client.submit(["wave"], style: style)
            XCTAssertLessThan(try f.artifactAge(style), 60)

            // And so does completing with an uploaded model
            let lease = try await client.lease()
            let model = bytes(1500, seed: 3)
            let got6 = try await client.putModel(job: 1, data: model, leaseToken: lease.token).status
            XCTAssertEqual(got6, .created)
            try f.ageArtifact(sha256Hex(model))
            let done = try await client.send(.post, "/v1/jobs/1/complete",
                                             json: #"{"token": "\#(lease.token)", "model_sha256": "\#(sha256Hex(model))"}"#)
            XCTAssertEqual(done.status, .ok, String(buffer: done.body))
            XCTAssertLessThan(try f.artifactAge(sha256Hex(model)), 60)
        }
    }

    func testAFileChangedWhileSetAsideIsPutBackAndLeftoversAreRestored() async throws {
        let f = try StorageFixture()
        defer { f.cleanUp() }
        let artifacts = ArtifactStore(config: f.config)
        try artifacts.prepare()
        let data = bytes(1000, seed: 5), sha = sha256Hex(data)
        let url = try artifacts.url(for: sha)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try data.write(to: url)
        let file = try XCTUnwrap(try artifacts.storedFiles().first)

        // When the check on the set-aside file fails (an upload made it young meanwhile)
        let freed = try artifacts.remove(file) { _ in false }

        // Then it is back under its name, and nothing else is left
        XCTAssertNil(freed)
        XCTAssertEqual(try Data(contentsOf: url), data)
        XCTAssertEqual(try artifacts.storedFiles().map(\.url.lastPathComponent), [sha])

        // When a crash left it set aside (….gc), a collection puts it back under its name
        XCTAssertEqual(rename(url.path, url.path + ".gc"), 0)
        let report = try await f.collect(dryRun: false, hoursLater: 0)
        XCTAssertEqual(report.freed.files, 0)
        XCTAssertEqual(try Data(contentsOf: url), data)
        // and a set-aside copy beside a file of the same name goes
        try data.write(to: URL(fileURLWithPath: url.path + ".gc"))
        try artifacts.prepare()
        XCTAssertEqual(try artifacts.storedFiles().map(\.url.lastPathComponent), [sha])

        // When the check passes, the file is deleted
        let old = try XCTUnwrap(try artifacts.storedFiles().first)
        XCTAssertEqual(try artifacts.remove(old) { _ in true }, 1000)
        XCTAssertEqual(try artifacts.storedFiles().count, 0)
    }

    func testTheCoordinatorCollectsPeriodically() async throws {
        let f = try StorageFixture { $0.storage.gcInterval = .milliseconds(200) }
        defer { f.cleanUp() }
        try await f.app().test(.live) { client in
            // Given a style image no job uses, uploaded two hours ago
            let sha = try await client.putArtifact(makePNG(width: 8, height: 8, seed: 9))
            try f.ageArtifact(sha)

            // Then the coordinator's own collection deletes it within a few intervals
            var gone = false
            for _ in 0..<50 where !gone {
                try await Task.sleep(for: .milliseconds(100))
                gone = !f.artifactExists(sha)
            }
            XCTAssertTrue(gone, "the periodic collection did not run")
        }
    }

    func testReportLineNamesFilesAndBytes() {
        var report = GarbageReport(dryRun: false, checkpointRowsDropped: 2)
        report.prunedCheckpoints = .init(files: 2, bytes: 42_152_345)
        report.unreferenced = .init(files: 1, bytes: 217_088)
        XCTAssertEqual(report.description,
                       "freed 3 files, 40.4 MiB (2 pruned checkpoints 40.2 MiB, 1 unreferenced artifact 212 KiB); 2 checkpoint rows dropped")
        XCTAssertEqual(GarbageReport.bytes(512), "512 bytes")
        XCTAssertEqual(GarbageReport.bytes(3 << 30), "3.0 GiB")
    }
}
