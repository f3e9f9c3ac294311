import CoordinatorAPI
import Foundation
import HTTPTypes
import Hummingbird
import JobStore
import NIOCore

// MARK: - GET /

/// The web dashboard at `/`: read-only, protected by the token like the API, but usable from a
/// browser. It accepts the token from `Authorization: Bearer` or the `nst_token` cookie;
/// `/?token=<token>` with the right token sets that cookie and redirects (303) to `/`. Without
/// a valid token the answer is a small 401 HTML page saying how to open the dashboard.
struct DashboardController: Sendable {
    let core: CoordinatorCore
    /// nil when the coordinator has no token (loopback only): the page is open.
    let check: TokenCheck?

    init(core: CoordinatorCore) {
        self.core = core
        check = core.config.token.map(TokenCheck.init)
    }

    func addRoutes(to router: Router<BasicRequestContext>) {
        router.get("/", use: page)
    }

    @Sendable func page(_ request: Request, context: BasicRequestContext) async throws -> Response {
        if let check {
            if let link = request.uri.queryParameters.get("token") {
                guard check.matches(link) else { return Self.unauthorized("The token in this link is wrong.") }
                return Response(status: .seeOther, headers: [
                    .location: "/", .setCookie: TokenCheck.setCookie(token: link),
                    .cacheControl: "no-store", .contentLength: "0",
                ])
            }
            let presented: String?
            do { presented = try TokenCheck.bearer(request) ?? TokenCheck.cookie(request) } catch {
                return Self.unauthorized("The Authorization header must be \"Bearer <token>\".")
            }
            guard let presented else { return Self.unauthorized("This browser has no token for the dashboard yet.") }
            guard check.matches(presented) else { return Self.unauthorized("The token this browser sent is wrong.") }
        }
        let html = DashboardPage.render(try await input())
        return Self.html(html, status: .ok)
    }

    // MARK: - Data

    /// Every job as `GET /v1/jobs` shows it, with the points of its loss curve the page draws
    /// (at most `DashboardPage.maxChartPoints`, sampled in SQL as the page would sample the
    /// whole curve) and its preview step. Reads only.
    func input(now: Date = Date()) async throws -> DashboardPage.Input {
        let summaries = try await core.store.jobs()
        let totals = try await core.store.sampledLossPoints(count: JobStatus.recentTotalsCount)
        let losses = try await core.store.sampledLossPoints(count: DashboardPage.maxChartPoints)
        let statuses = summaries.map { summary in
            JobStatus(job: summary.job, latest: summary.latestLoss, totals: (totals[summary.job.id] ?? []).map(\.total))
        }
        return DashboardPage.Input(jobs: statuses, losses: losses, now: now)
    }

    // MARK: - Answers

    static func html(_ text: String, status: HTTPResponse.Status, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .contentLength: "\(text.utf8.count)",
            .cacheControl: "no-store",
            // The page has no scripts; images only from here; no framing by other sites.
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; frame-ancestors 'none'",
            .xContentTypeOptions: "nosniff",
        ]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// The 401 page: what is wrong, and how to open the dashboard.
    static func unauthorized(_ reason: String) -> Response {
        let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>nst-orchestrator — token needed</title>
        <style>body{font:15px/1.5 system-ui,sans-serif;background:#16181d;color:#e6e6e6;margin:12vh auto;max-width:36em;padding:0 20px}
        code{background:#262a33;padding:2px 6px;border-radius:4px}h1{font-size:20px}</style></head>
        <body><h1>Token needed</h1><p>\(DashboardPage.escape(reason))</p>
        <p>Open <code>/?token=…</code> on this address once, with the coordinator's token (the value of
        <code>ORCHESTRATOR_TOKEN</code> or of the <code>--token-file</code> given to
        <code>orchestrator serve</code>). The browser then keeps it in a cookie for this site only.</p></body></html>

        """
        return html(page, status: .unauthorized, extra: [.wwwAuthenticate: "Bearer realm=\"nst-orchestrator\""])
    }
}
