@testable import Coordinator
import CoordinatorTestSupport
import Foundation
import XCTest

/// The try-it page's and `POST /v1/stylize`'s concurrency bound: at most `concurrency`
/// stylizing at once, at most `queue` waiting, the rest refused at once (503).
final class StylizeGateTests: XCTestCase {
    func testAtMostTheLimitRunAndTheQueueIsBounded() async throws {
        let gate = StylizeGate(limit: 1, queue: 1)
        let first = await gate.enter()
        XCTAssertTrue(first)
        let waiter = Task { await gate.enter() }  // waits in the queue
        try await Task.sleep(for: .milliseconds(100))
        let third = await gate.enter()
        XCTAssertFalse(third, "the queue is full: refused at once")
        await gate.leave()  // hands the place to the waiter
        let second = await waiter.value
        XCTAssertTrue(second)
        let fourth = Task { await gate.enter() }
        try await Task.sleep(for: .milliseconds(100))
        await gate.leave()
        let fourthIn = await fourth.value
        XCTAssertTrue(fourthIn)
        await gate.leave()
        let free = await gate.enter()
        XCTAssertTrue(free, "every place was given back")
    }

    func testTheDeskRefusesWhenBusyAndReleasesItsPlaceOnErrors() async throws {
        let release = AsyncSignal()
        let h = try Harness {
            $0.stylizeLimits.concurrency = 1
            $0.stylizeLimits.queue = 0
            $0.stylize = { request in
                await release.wait()
                return try await fakeStylize(request)
            }
        }
        defer { h.cleanUp() }
        let core = CoordinatorCore(store: h.store, artifacts: ArtifactStore(config: h.config), config: h.config,
                                   logger: .init(label: "test"), metrics: CoordinatorMetrics())
        let desk = StylizeDesk(core: core)
        let model = h.dir.appendingPathComponent("model.bin")
        try Data([7]).write(to: model)
        let style = StylizeDesk.Style(name: "wave", jobID: 1, model: model)
        let running = Task { try await desk.run(makePNG(width: 8, height: 8), [style]) }
        try await Task.sleep(for: .milliseconds(100))
        do {
            _ = try await desk.run(makePNG(width: 8, height: 8), [style])
            XCTFail("a second request while one runs and no queue must be refused")
        } catch let error as APIError {
            XCTAssertEqual(error.status, .serviceUnavailable)
            XCTAssertTrue(error.message.contains("busy"), error.message)
        }
        await release.signal()
        let output = try await running.value
        XCTAssertEqual(output.images, [.success(makePNG(width: 8, height: 8, seed: 7))])
        // A photo the stylizer refuses is a 400, and gives its place back
        await release.signal()
        do {
            _ = try await desk.run(Data("not a png".utf8), [style])
            XCTFail("accepted a non-image")
        } catch let error as APIError {
            XCTAssertEqual(error.status, .badRequest)
        }
        await release.signal()
        let again = try await desk.run(makePNG(width: 8, height: 8), [style])
        XCTAssertEqual(again.images.count, 1)
    }
}

/// Lets waiters through one `signal` each (a signal before a wait is kept).
actor AsyncSignal {
    private var permits = 0
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func wait() async {
        if permits > 0 { permits -= 1; return }
        await withCheckedContinuation { waiters.append($0) }
    }

    func signal() {
        if waiters.isEmpty { permits += 1 } else { waiters.removeFirst().resume() }
    }
}
