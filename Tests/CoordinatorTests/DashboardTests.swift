import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// `GET /`, `/login`, `/logout`: who may see the page, the session cookie, and what the page shows.
final class DashboardTests: XCTestCase {
    // MARK: - Login

    func testWithoutASessionTheBrowserIsSentToTheLoginFormAndTokenLinksAreRefused() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given no credential, or the old token cookie: a redirect to the form, no cookie set
            for fields: HTTPFields in [[:], [.cookie: "nst_token=\(Harness.token)"], [.cookie: "nst_session=0123"]] {
                let r = try await client.execute(uri: "/", method: .get, headers: fields)
                XCTAssertEqual(r.status, .seeOther, "\(fields)")
                XCTAssertEqual(r.headers[.location], "/login")
                XCTAssertNil(r.headers[.setCookie])
            }
            // A wrong header: a 401 page with the form, not revealing the token
            for fields: HTTPFields in [[.authorization: "Bearer nope"], [.authorization: "Basic czNjcmV0LXRva2Vu"]] {
                let r = try await client.execute(uri: "/", method: .get, headers: fields)
                XCTAssertEqual(r.status, .unauthorized, "\(fields)")
                XCTAssertEqual(r.headers[.contentType], "text/html; charset=utf-8")
                let page = String(buffer: r.body)
                XCTAssertTrue(page.contains("<form method=\"post\" action=\"/login\">"), page)
                XCTAssertFalse(page.contains(Harness.token))
            }
            // A token in a link, even the right one, is refused and sets nothing
            let link = try await client.execute(uri: "/?token=\(Harness.token)", method: .get)
            XCTAssertEqual(link.status, .badRequest)
            XCTAssertNil(link.headers[.setCookie])
            XCTAssertTrue(String(buffer: link.body).contains("no longer accepts"), String(buffer: link.body))
            // The form itself is open, and has no script
            let form = try await client.execute(uri: "/login", method: .get)
            XCTAssertEqual(form.status, .ok)
            let html = String(buffer: form.body)
            XCTAssertTrue(html.contains("type=\"password\""), html)
            XCTAssertFalse(html.contains("<script"))
            XCTAssertTrue(form.headers[.contentSecurityPolicy]?.contains("form-action 'self'") ?? false)
        }
    }

    func testLoginSetsARandomSessionCookieThatReadsButNeverWritesAndLogoutEndsIt() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // A wrong token and a worker token get no session
            let worker = try await h.store.createWorkerCredential(name: "gpu1").token
            for (token, status) in [("wrong", HTTPResponse.Status.unauthorized), (worker, .forbidden)] {
                let r = try await client.login(token)
                XCTAssertEqual(r.status, status, token)
                XCTAssertNil(r.headers[.setCookie], token)
            }
            let notForm = try await client.execute(uri: "/login", method: .post, headers: [.contentType: "application/json"],
                                                   body: ByteBuffer(string: #"{"token":"s3cret-token"}"#))
            XCTAssertEqual(notForm.status, .badRequest)
            XCTAssertNil(notForm.headers[.setCookie])

            // When the admin logs in with the form
            let r = try await client.login(Harness.token)

            // Then a strict, HttpOnly session cookie holds a random id, not the token
            XCTAssertEqual(r.status, .seeOther)
            XCTAssertEqual(r.headers[.location], "/")
            let cookie = try XCTUnwrap(r.headers[.setCookie])
            XCTAssertNotNil(cookie.range(of: #"^nst_session=[0-9a-f]{64}; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict$"#,
                                         options: .regularExpression), cookie)
            XCTAssertFalse(cookie.contains(Harness.token))
            let pair = String(cookie.prefix { $0 != ";" })
            let again = try await client.login(Harness.token)
            XCTAssertNotEqual(again.headers[.setCookie].map { String($0.prefix { $0 != ";" }) }, pair, "each login a new id")

            // And it opens the page (with a log-out button) and read-only API routes, never a change
            let page = try await client.execute(uri: "/", method: .get, headers: [.cookie: "theme=dark; " + pair])
            XCTAssertEqual(page.status, .ok)
            XCTAssertTrue(String(buffer: page.body).contains("<form class=\"logout\" method=\"post\" action=\"/logout\">"))
            let list = try await client.execute(uri: "/v1/jobs", method: .get, headers: [.cookie: pair])
            XCTAssertEqual(list.status, .ok)
            let post = try await client.execute(uri: "/v1/jobs/cancel-all", method: .post, headers: [.cookie: pair])
            XCTAssertEqual(post.status, .unauthorized)
            let tokens = try await client.execute(uri: "/v1/tokens", method: .get, headers: [.cookie: pair])
            XCTAssertEqual(tokens.status, .forbidden, "a session does not list worker tokens")

            // When it logs out, the cookie is cleared and the id is dead even if replayed
            let out = try await client.execute(uri: "/logout", method: .post, headers: [.cookie: pair])
            XCTAssertEqual(out.status, .seeOther)
            XCTAssertEqual(out.headers[.location], "/login")
            XCTAssertEqual(out.headers[.setCookie], "nst_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
            let replay = try await client.execute(uri: "/", method: .get, headers: [.cookie: pair])
            XCTAssertEqual(replay.status, .seeOther)
            let replayAPI = try await client.execute(uri: "/v1/jobs", method: .get, headers: [.cookie: pair])
            XCTAssertEqual(replayAPI.status, .unauthorized)
            XCTAssertTrue(errorText(replayAPI).contains("log in again"), errorText(replayAPI))
        }
    }

    func testASessionExpiresAfterItsLifetime() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let login = try await client.login(Harness.token)
            let cookie = try XCTUnwrap(login.headers[.setCookie])
            let pair = String(cookie.prefix { $0 != ";" })
            h.clock.advance(by: 12 * 3600 - 1)
            let before = try await client.execute(uri: "/", method: .get, headers: [.cookie: pair])
            XCTAssertEqual(before.status, .ok)
            h.clock.advance(by: 1)
            let after = try await client.execute(uri: "/", method: .get, headers: [.cookie: pair])
            XCTAssertEqual(after.status, .seeOther)
            XCTAssertEqual(after.headers[.location], "/login")
        }
    }

    func testWithoutConfiguredTokenThePageIsOpen() async throws {
        let h = try Harness(token: nil)
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let r = try await client.execute(uri: "/", method: .get)
            XCTAssertEqual(r.status, .ok)
            XCTAssertTrue(String(buffer: r.body).contains("No jobs yet"))
        }
    }

    // MARK: - Content

    func testPageListsEveryJobWithChartsBarsAndBadgesAndChangesNothing() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            // Given three jobs: one running with losses at step 3 of 10, one queued, one cancelled
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["mosaic", "wave-lines", "dots"], style: style, steps: 10)
            let lease = try await client.lease(worker: "w1")
            let points = (1...3).map { LossPoint(step: $0, images: $0, content: 100.0 / Double($0), style: 5000, total: 5100) }
            let hb = try await client.send(.post, "/v1/jobs/1/heartbeat", body: HeartbeatRequest(
                token: lease.token, step: 3, imagesDone: 3, imagesPerS: 1.5, lossPoints: points))
            XCTAssertEqual(hb.status, .ok)
            _ = try await client.send(.post, "/v1/jobs/3/cancel")
            let before = try await storeSnapshot(h)

            // When the page is fetched
            let r = try await client.execute(uri: "/", method: .get, headers: headers())
            XCTAssertEqual(r.status, .ok)
            XCTAssertEqual(r.headers[.contentType], "text/html; charset=utf-8")
            XCTAssertEqual(r.headers[.cacheControl], "no-store")
            let page = String(buffer: r.body)

            // Then every job is listed with its state badge and progress bar, and has a chart
            for name in ["mosaic", "wave-lines", "dots"] { XCTAssertTrue(page.contains(">\(name)</td>"), name) }
            XCTAssertEqual(count("<tr class=\"job\"", in: page), 3)
            XCTAssertTrue(page.contains("<tr class=\"job\" data-state=\"running\"><td class=\"num muted\">1</td>"))
            XCTAssertTrue(page.contains("<span class=\"badge running\">running</span>"))
            XCTAssertTrue(page.contains("<span class=\"badge queued\">queued</span>"))
            XCTAssertTrue(page.contains("<span class=\"badge cancelled\">cancelled</span>"))
            XCTAssertTrue(page.contains("<svg class=\"bar\" width=\"150\" height=\"10\" role=\"img\" aria-label=\"30%\">"))
            XCTAssertTrue(page.contains("<b>30%</b> <small>3/10</small>"))
            XCTAssertEqual(count("<svg class=\"bar\"", in: page), 4, "one per job and the overall bar")
            XCTAssertEqual(count("<svg class=\"loss\"", in: page), 3)
            // the running job's chart has the three lines, through its three points
            let chart = try XCTUnwrap(section(of: page, from: "id=\"chart-1\"", to: "</figure>"))
            for line in ["total", "content", "style"] {
                let pts = try XCTUnwrap(polyline(line, in: chart), line)
                XCTAssertEqual(pts.count, 3, line)
                XCTAssertEqual(pts.first?.x, 50.0, line)
                XCTAssertEqual(pts.last?.x, 430.0, line)
            }
            XCTAssertTrue(section(of: page, from: "id=\"chart-2\"", to: "</figure>")?.contains("no losses yet") ?? false)
            XCTAssertTrue(page.contains("<meta http-equiv=\"refresh\" content=\"5\">"))
            XCTAssertFalse(page.contains("<script"))
            // and the page changed nothing
            let after = try await storeSnapshot(h)
            XCTAssertEqual(after, before)
        }
    }

    /// Eight running jobs with `n` loss points each, in `h`'s store.
    private func seedEightJobs(_ h: Harness, points n: Int) async throws {
        let style = sha256Hex(makePNG(width: 8, height: 8))
        let configs = (1...8).map { JobConfig(name: "style-\($0)", styleSHA256: style, imageSize: 32, batchSize: 1, steps: 10_000) }
        _ = try await h.store.submitJobs(configs)
        for i in 1...8 {
            let lease = try await XCTUnwrapAsync(try await h.store.leaseNextJob(worker: "w\(i)", host: "h", threads: 1))
            let points = (1...n).map { s in
                LossPoint(step: s, images: s, content: 1e5 / Double(s), style: 1e6 * exp(-Double(s) / 3000) + 10, total: 0)
            }.map { LossPoint(step: $0.step, images: $0.images, content: $0.content, style: $0.style, total: $0.content + $0.style) }
            _ = try await h.store.heartbeat(jobID: lease.job.id, token: lease.token,
                                            progress: JobProgress(step: n, imagesDone: n), lossPoints: points)
        }
    }

    /// `GET /` from `h` and the seconds it took.
    private func timedPage(_ h: Harness) async throws -> (TestResponse, Double) {
        var result: (TestResponse, Double)?
        try await h.app().test(.router) { client in
            let start = Date()
            let r = try await client.execute(uri: "/", method: .get, headers: headers())
            result = (r, Date().timeIntervalSince(start))
        }
        return try XCTUnwrap(result)
    }

    func testEightJobsOfTenThousandPointsRenderFastWithAtMost400PointsPerLine() async throws {
        // The same page with 400 points a curve, what the charts draw, timed here on this
        // machine: the bound follows the machine's speed instead of assuming one.
        let reference = try Harness()
        defer { reference.cleanUp() }
        try await seedEightJobs(reference, points: 400)
        let (_, referenceSeconds) = try await timedPage(reference)

        // Given eight running jobs with 10,000 loss points each
        let h = try Harness()
        defer { h.cleanUp() }
        try await seedEightJobs(h, points: 10_000)
        do {
            // When the page is fetched
            let (r, seconds) = try await timedPage(h)

            // Then it comes about as fast as the page that holds only what it draws, with 24 lines
            // of at most 400 points from the first step to the last
            XCTAssertEqual(r.status, .ok)
            XCTAssertLessThan(seconds, 5 * referenceSeconds + 0.5,
                              "\(seconds) s against \(referenceSeconds) s for 400 points a curve")
            let page = String(buffer: r.body)
            XCTAssertLessThan(page.utf8.count, 400_000)
            XCTAssertEqual(count("<svg class=\"loss\"", in: page), 8)
            for id in 1...8 {
                let chart = try XCTUnwrap(section(of: page, from: "id=\"chart-\(id)\"", to: "</figure>"))
                for line in ["total", "content", "style"] {
                    let pts = try XCTUnwrap(polyline(line, in: chart))
                    XCTAssertEqual(pts.count, 400, "\(id) \(line)")
                    XCTAssertEqual(pts.first?.x, 50.0)
                    XCTAssertEqual(pts.last?.x, 430.0)
                    XCTAssertEqual(pts.map(\.x), pts.map(\.x).sorted())
                }
            }
        }
    }

    // MARK: - Renderer

    func testRendererEscapesHostileNamesWorkersAndReasons() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        var status = try await h.app().test(.router) { client -> JobStatus in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["plain"], style: style)
            return try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs")).jobs[0]
        }
        // Names are validated ([A-Za-z0-9._-]), so hostile ones can only reach the renderer directly.
        status.name = "<script>alert('x')</script>"
        status.worker = "\"><img src=x onerror=alert(1)>"
        status.state = .failed
        status.failureReason = "bad & <b>worse</b>"
        status.previewStep = 4
        let page = DashboardPage.render(.init(jobs: [status], losses: [status.id: []], now: Date(timeIntervalSince1970: 0)))

        XCTAssertFalse(page.contains("<script>"))
        XCTAssertFalse(page.contains("<img src=x"))
        XCTAssertFalse(page.contains("<b>worse</b>"))
        XCTAssertTrue(page.contains("<td class=\"name\">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</td>"))
        XCTAssertTrue(page.contains("alt=\"preview of &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; at step 4\""))
        XCTAssertTrue(page.contains("<td>&quot;&gt;&lt;img src=x onerror=alert(1)&gt;</td>"))
        XCTAssertTrue(page.contains("bad &amp; &lt;b&gt;worse&lt;/b&gt;"))
        XCTAssertTrue(page.contains("updated 1970-01-01 00:00:00 UTC"))
    }

    func testAJobsDatasetAndSweepParamsShowUnderItsName() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        var status = try await h.app().test(.router) { client -> JobStatus in
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            _ = try await client.submit(["wave-2"], style: style)
            return try decode(JobsResponse.self, try await client.send(.get, "/v1/jobs")).jobs[0]
        }
        let plain = DashboardPage.render(.init(jobs: [status], losses: [status.id: []], now: Date(timeIntervalSince1970: 0)))
        XCTAssertTrue(plain.contains("<td class=\"name\">wave-2</td>"), plain)
        status.dataset = "coco<x>"
        status.datasetSHA256 = String(repeating: "ab", count: 32)
        status.group = "wave"
        status.params = ["style_weight": 30000, "lr": 0.002]
        let page = DashboardPage.render(.init(jobs: [status], losses: [status.id: []], now: Date(timeIntervalSince1970: 0)))
        XCTAssertTrue(page.contains("<td class=\"name\">wave-2<br><small class=\"muted\">coco&lt;x&gt;@ababab · lr=0.002 style_weight=30000</small></td>"), page)
    }

    // MARK: - Sweep gallery

    /// A job status as `GET /v1/jobs` would show it.
    func trial(_ id: Int64, _ name: String, group: String?, params: [String: Double]? = nil,
               state: JobState = .running, step: Int = 10, preview: Int? = nil) -> JobStatus {
        JobStatus(id: id, name: name, state: state, attempt: 1, maxAttempts: 3, step: step, stepsTotal: 20, imagesDone: step,
                  imagesTotal: 20, worker: nil, resumedFromStep: 0, content: nil, style: nil, total: nil, imagesPerS: nil,
                  etaS: nil, recentTotals: [], failureReason: nil, modelSHA256: nil, previewStep: preview,
                  createdAt: Date(timeIntervalSince1970: 0), updatedAt: Date(timeIntervalSince1970: 0), group: group, params: params)
    }

    func point(_ step: Int, content: Double, style: Double) -> ValidationPoint {
        ValidationPoint(step: step, content: content, style: style, contentWeighted: content * 1e5, styleWeighted: style * 1e10)
    }

    func testASweepGetsAGalleryOfItsTrialsAndATradeOffPlotWithTheFrontMarked() throws {
        // Given a sweep of five trials beside a job of no sweep: two on the front, one behind
        // it, one not validated yet, one whose losses cannot be plotted
        let jobs = [
            trial(1, "solo", group: nil, preview: 3),
            trial(2, "wave-1", group: "wave", params: ["style_weight": 1e10], state: .succeeded, step: 20, preview: 20),
            trial(3, "wave-2", group: "wave", params: ["style_weight": 3e10], preview: 10),
            trial(4, "wave-3", group: "wave", params: ["style_weight": 1e11]),
            trial(5, "wave-4", group: "wave", params: ["style_weight": 3e11], state: .queued, step: 0),
            trial(6, "wave-5", group: "wave", params: ["style_weight": 1e12]),
        ]
        let validation: [Int64: [ValidationPoint]] = [
            1: [point(5, content: 1, style: 1)],
            2: [point(20, content: 2e5, style: 40), point(10, content: 9e9, style: 9e9)],  // the latest is step 20's
            3: [point(10, content: 5e5, style: 8)],
            4: [point(10, content: 9e5, style: 30)],                                       // behind wave-2
            6: [point(10, content: .nan, style: 3)],
        ]
        // When the page is rendered
        let page = DashboardPage.render(.init(jobs: jobs, losses: [:], validation: validation, now: Date(timeIntervalSince1970: 0)))

        // Then there is one gallery, for the sweep, with a figure per trial and none for the solo job
        XCTAssertEqual(count("<section class=\"gallery\"", in: page), 1)
        let gallery = try XCTUnwrap(section(of: page, from: "<section class=\"gallery\" id=\"gallery-1\" data-group=\"wave\">",
                                            to: "</section>"))
        XCTAssertEqual(count("<figure class=\"preview trial\"", in: gallery), 5)
        XCTAssertFalse(gallery.contains("solo"))
        // each labelled with its name, params, state and step, and its preview or a placeholder
        XCTAssertTrue(gallery.contains("<figure class=\"preview trial\" data-job=\"2\"><img src=\"/v1/jobs/2/preview?step=20\""), gallery)
        XCTAssertTrue(gallery.contains("<span class=\"name\">wave-1</span> <span class=\"badge succeeded\">succeeded</span> <small>step 20</small>"
                                       + "<small class=\"params\">style_weight=1e+10</small>"), gallery)
        XCTAssertEqual(count("<div class=\"placeholder\">no preview yet</div>", in: gallery), 3)
        XCTAssertTrue(gallery.contains("content 2e5 · style 40 at step 20"), gallery)
        // And one trade-off plot of the three plottable trials, the front marked and joined
        XCTAssertEqual(count("<svg class=\"tradeoff\"", in: gallery), 1)
        XCTAssertEqual(count("<circle class=\"trial", in: gallery), 3)
        XCTAssertEqual(count("<circle class=\"trial front\"", in: gallery), 2)
        XCTAssertTrue(gallery.contains("data-job=\"4\"><title>wave-3: content 9e+05, style 30 (unweighted) at step 10</title>"), gallery)
        XCTAssertTrue(gallery.contains("at step 20, on the Pareto front</title>"), gallery)
        let front = try XCTUnwrap(section(of: gallery, from: "<polyline class=\"front\" points=\"", to: "\">"))
            .dropFirst("<polyline class=\"front\" points=\"".count).dropLast(2).split(separator: " ")
            .map { $0.split(separator: ",").compactMap { Double($0) } }
        XCTAssertEqual(front.count, 2)
        XCTAssertLessThan(front[0][0], front[1][0], "left to right by content loss")
        XCTAssertLessThan(front[0][1], front[1][1], "the left point has the larger style loss (higher up)")
        for name in ["wave-1", "wave-2", "wave-3"] {
            XCTAssertTrue(gallery.contains("\">\(name)</text>"), "the point of \(name) is labelled")
        }
        // with log ticks on both axes
        XCTAssertGreaterThanOrEqual(count("class=\"axis\">", in: gallery), 4)
        XCTAssertTrue(gallery.contains("class=\"axis\">1e5</text>") || gallery.contains("class=\"axis\">1e6</text>"), gallery)
        // And the trials that cannot be plotted are listed as such
        let pending = try XCTUnwrap(section(of: gallery, from: "<figcaption class=\"pending\">", to: "</figcaption>"))
        XCTAssertTrue(pending.contains("<span class=\"name\">wave-4</span>"), pending)
        XCTAssertTrue(pending.contains("<span class=\"name\">wave-5</span> <small>(losses not plottable)</small>"), pending)
        XCTAssertFalse(page.contains("NaN") || page.contains("nan,"), "no NaN reaches the SVG")

        // A page without sweeps has no gallery; a sweep without validation has an empty plot
        let plain = DashboardPage.render(.init(jobs: [jobs[0]], losses: [:], now: Date(timeIntervalSince1970: 0)))
        XCTAssertFalse(plain.contains("class=\"gallery\""))
        let waiting = DashboardPage.render(.init(jobs: Array(jobs[1...2]), losses: [:], now: Date(timeIntervalSince1970: 0)))
        XCTAssertTrue(waiting.contains("no validation points yet"))
        XCTAssertEqual(count("<circle class=\"trial", in: waiting), 0)
    }

    func testAnEarlyStoppedTrialIsPlottedAtItsModelsStep() {
        // Given a trial that early stopping ended at step 350 with the model of step 250
        var stopped = trial(1, "wave-1", group: "wave", params: ["style_weight": 1], state: .succeeded, step: 350)
        stopped.stopReason = "early-stopped at step 350 (best step 250)"
        let running = trial(2, "wave-2", group: "wave", params: ["style_weight": 2])
        let points = [point(250, content: 1e5, style: 2e5), point(300, content: 1.1e5, style: 2.1e5), point(350, content: 1.2e5, style: 2.05e5)]
        let page = DashboardPage.render(.init(jobs: [stopped, running], losses: [:], validation: [1: points, 2: points],
                                              now: Date(timeIntervalSince1970: 0)))
        // Then its point is the best step's (its model), the running trial's its latest
        XCTAssertTrue(page.contains("<title>wave-1: content 1e+05, style 2e+05 (unweighted) at step 250"), page)
        XCTAssertTrue(page.contains("<title>wave-2: content 1.2e+05, style 2.05e+05 (unweighted) at step 350"), page)
    }

    func testLabelsOfNearbyPointsDoNotOverlap() throws {
        // Given three trials whose points nearly coincide (as the udnie sweep's lightest did)
        let jobs = (1...3).map { trial(Int64($0), "udnie-\($0)", group: "udnie", params: ["style_weight": Double($0)]) }
        let validation: [Int64: [ValidationPoint]] = [
            1: [point(10, content: 1.26e5, style: 2.91e5)],
            2: [point(10, content: 1.32e5, style: 2.82e5)],
            3: [point(10, content: 1.19e5, style: 2.18e5)],
        ]
        let page = DashboardPage.render(.init(jobs: jobs, losses: [:], validation: validation, now: Date(timeIntervalSince1970: 0)))

        // Then their labels sit in boxes that do not overlap (10 px text, about 6 px a character)
        let labels = page.components(separatedBy: "<text x=\"").dropFirst().compactMap { part -> (Double, Double, Bool, String)? in
            guard part.contains("class=\"point-label") else { return nil }
            let numbers = part.split(separator: "\"")
            guard let x = Double(numbers[0]), let y = Double(numbers[2]),
                  let name = part.split(separator: ">").dropFirst().first?.split(separator: "<").first else { return nil }
            return (x, y, part.contains("text-anchor=\"end\""), String(name))
        }
        XCTAssertEqual(labels.map(\.3).sorted(), ["udnie-1", "udnie-2", "udnie-3"])
        let boxes = labels.map { l -> (Double, Double, Double, Double) in
            let w = 6.0 * Double(l.3.count)
            return (l.2 ? l.0 - w : l.0, l.1 - 9, l.2 ? l.0 : l.0 + w, l.1 + 2)
        }
        for i in boxes.indices {
            for j in boxes.indices where j > i {
                let (a, b) = (boxes[i], boxes[j])
                XCTAssertFalse(a.0 < b.2 && b.0 < a.2 && a.1 < b.3 && b.1 < a.3, "\(labels[i].3) and \(labels[j].3) overlap: \(a) \(b)")
            }
        }
    }

    func testTheGalleryEscapesHostileGroupsNamesAndParams() {
        // Names and groups are validated on submit; hostile ones can only reach the renderer directly.
        let hostile = "<script>alert('x')</script>"
        let jobs = [
            trial(1, hostile, group: "\"><img src=x onerror=alert(1)>", params: ["a<b>": 1], preview: 2),
            trial(2, "b&c", group: "\"><img src=x onerror=alert(1)>"),
        ]
        let page = DashboardPage.render(.init(jobs: jobs, losses: [:], validation: [1: [point(2, content: 3, style: 4)], 2: [point(2, content: 1, style: 9)]],
                                              now: Date(timeIntervalSince1970: 0)))
        XCTAssertFalse(page.contains("<script>"))
        XCTAssertFalse(page.contains("<img src=x"))
        XCTAssertFalse(page.contains("a<b>"))
        XCTAssertTrue(page.contains("data-group=\"&quot;&gt;&lt;img src=x onerror=alert(1)&gt;\""), page)
        XCTAssertTrue(page.contains("<small class=\"params\">a&lt;b&gt;=1</small>"), page)
        XCTAssertTrue(page.contains(">&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;</text>"), page)
        XCTAssertTrue(page.contains("<title>b&amp;c: content 1, style 9 (unweighted) at step 2, on the Pareto front</title>"), page)
        XCTAssertEqual(count("<circle class=\"trial front\"", in: page), 2)
    }
}

// MARK: - Helpers

/// Occurrences of `needle` in `text`.
func count(_ needle: String, in text: String) -> Int {
    text.components(separatedBy: needle).count - 1
}

/// The text from the first `start` to the next `end` after it.
func section(of text: String, from start: String, to end: String) -> String? {
    guard let a = text.range(of: start), let b = text.range(of: end, range: a.upperBound..<text.endIndex) else { return nil }
    return String(text[a.lowerBound..<b.upperBound])
}

/// The points of `<polyline class="line NAME" points="…">` in `svg`.
func polyline(_ name: String, in svg: String) -> [(x: Double, y: Double)]? {
    guard let attr = section(of: svg, from: "<polyline class=\"line \(name)\" points=\"", to: "\"><title>") else { return nil }
    let list = attr.dropFirst("<polyline class=\"line \(name)\" points=\"".count).dropLast("\"><title>".count)
    return list.split(separator: " ").compactMap { pair in
        let xy = pair.split(separator: ",").compactMap { Double($0) }
        return xy.count == 2 ? (xy[0], xy[1]) : nil
    }
}

/// Everything the store holds, to check that a read changed nothing.
func storeSnapshot(_ h: Harness) async throws -> [String] {
    var out: [String] = []
    for summary in try await h.store.jobs() {
        let events = try await h.store.events(jobID: summary.job.id)
        out.append("\(summary.job) \(summary.latestLoss.map { "\($0)" } ?? "-") \(events.count)")
    }
    out.append("\(try await h.store.workers())")
    return out
}
