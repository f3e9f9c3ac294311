import CoordinatorAPI
import Foundation
import HTTPTypes
import Hummingbird
import JobStore
import NIOCore

// MARK: - GET /, /login, /logout

/// The web dashboard at `/`: read-only, for the admin. A browser logs in with a small form
/// (`GET /login`, `POST /login` with the admin token), which sets a session cookie holding a
/// random session id — never the token — with an expiry; `POST /logout` ends it. Scripts may
/// send the admin token as `Authorization: Bearer` instead. Without a credential `/` redirects
/// to the form; a worker token gets 403. A coordinator without a token (loopback only) shows
/// the page to anyone.
struct DashboardController: Sendable {
    let core: CoordinatorCore
    /// nil when the coordinator has no token.
    let auth: Authenticator?

    /// Largest login form body accepted.
    static let maxFormBytes = 4096

    func addRoutes(to router: Router<CoordinatorContext>) {
        router.get("/", use: page)
        router.get("/login", use: loginForm)
        router.post("/login", use: login)
        router.post("/logout", use: logout)
    }

    var secure: Bool { core.config.tls != nil }

    @Sendable func page(_ request: Request, context: CoordinatorContext) async throws -> Response {
        if request.uri.queryParameters.get("token") != nil, auth != nil {
            return Self.message("Token links are gone", """
                A token in a link stays in browser history, proxy logs and shell history, so this \
                coordinator no longer accepts <code>/?token=…</code>. Log in with the form instead.
                """, status: .badRequest, form: false)
        }
        switch await Self.access(request, auth: auth) {
        case .refused(let response): return response
        case .allowed(let session):
            var input = try await input()
            input.logout = session
            return Self.html(DashboardPage.render(input), status: .ok)
        }
    }

    /// Who may see an admin page: an admin bearer token, a live session cookie, anyone on a
    /// coordinator without a token. Otherwise a redirect to the login form (no credential), the
    /// form with the reason (a wrong token), or 403 (a worker token).
    enum PageAccess {
        case allowed(session: Bool)
        case refused(Response)
    }

    static func access(_ request: Request, auth: Authenticator?) async -> PageAccess {
        guard let auth else { return .allowed(session: false) }
        let presented: String?
        do { presented = try TokenCheck.bearer(request) } catch {
            return .refused(message("Token needed", "The Authorization header must be \"Bearer &lt;token&gt;\".",
                                    status: .unauthorized))
        }
        if let presented {
            do {
                guard try await auth.caller(bearer: presented) == .admin else {
                    return .refused(message("Not for workers", "A worker token cannot open the dashboard.",
                                            status: .forbidden, form: false))
                }
                return .allowed(session: false)
            } catch let error as APIError {
                return .refused(message("Token needed", DashboardPage.escape(error.message), status: .unauthorized))
            } catch {
                return .refused(message("Token needed", "The token could not be checked.", status: .internalServerError))
            }
        }
        if let id = SessionStore.cookie(request), await auth.sessions.isValid(id) { return .allowed(session: true) }
        return .refused(Response(status: .seeOther, headers: [.location: "/login", .cacheControl: "no-store", .contentLength: "0"]))
    }

    // MARK: - Login and logout

    @Sendable func loginForm(_ request: Request, context: CoordinatorContext) async throws -> Response {
        guard auth != nil else { return Response(status: .seeOther, headers: [.location: "/", .contentLength: "0"]) }
        return Self.message("Log in", "Paste the coordinator's admin token (the value of <code>ORCHESTRATOR_TOKEN</code> or of the <code>--token-file</code> given to <code>orchestrator serve</code>).",
                            status: .ok)
    }

    @Sendable func login(_ request: Request, context: CoordinatorContext) async throws -> Response {
        guard let auth else { return Response(status: .seeOther, headers: [.location: "/", .contentLength: "0"]) }
        guard let token = try await Self.formField("token", of: request), !token.isEmpty else {
            return Self.message("Log in", "The form needs the token.", status: .badRequest)
        }
        let caller: Caller
        do { caller = try await auth.caller(bearer: token) } catch let error as APIError {
            core.logger.warning("dashboard login refused: \(error.message)")
            return Self.message("Log in", "That token is wrong.", status: .unauthorized)
        }
        guard caller == .admin else {
            return Self.message("Log in", "A worker token cannot open the dashboard: use the admin token.", status: .forbidden)
        }
        let session = await auth.sessions.create()
        return Response(status: .seeOther, headers: [
            .location: "/", .cacheControl: "no-store", .contentLength: "0",
            .setCookie: SessionStore.setCookie(id: session.id, maxAge: Int(auth.sessions.lifetime), secure: secure),
        ])
    }

    @Sendable func logout(_ request: Request, context: CoordinatorContext) async throws -> Response {
        if let auth, let id = SessionStore.cookie(request) { await auth.sessions.remove(id) }
        return Response(status: .seeOther, headers: [
            .location: auth == nil ? "/" : "/login", .cacheControl: "no-store", .contentLength: "0",
            .setCookie: SessionStore.clearCookie(secure: secure),
        ])
    }

    /// The value of `name` in an `application/x-www-form-urlencoded` body (at most
    /// `maxFormBytes`); nil when absent. 400 for another content type, 413 when too large.
    static func formField(_ name: String, of request: Request) async throws -> String? {
        let type = request.headers[.contentType]?.lowercased() ?? ""
        guard type.hasPrefix("application/x-www-form-urlencoded") else {
            throw APIError.badRequest("the login form is application/x-www-form-urlencoded, got \"\(Sanitize.oneLine(String(type.prefix(60))))\"")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: maxFormBytes) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the login form is larger than \(maxFormBytes) bytes")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIError.badRequest("the login form could not be read (cut short or malformed): \(error)")
        }
        for pair in String(buffer: buffer).split(separator: "&") {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == name else { continue }
            let raw = parts[1].replacingOccurrences(of: "+", with: " ")
            return raw.removingPercentEncoding
        }
        return nil
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
        return DashboardPage.Input(jobs: statuses, losses: losses, validation: try await core.store.validationPointsByJob(), now: now)
    }

    // MARK: - Answers

    static func html(_ text: String, status: HTTPResponse.Status, extra: HTTPFields = [:]) -> Response {
        var headers: HTTPFields = [
            .contentType: "text/html; charset=utf-8", .contentLength: "\(text.utf8.count)",
            .cacheControl: "no-store",
            // No scripts; images only from here; forms post only here; no framing by other sites.
            .contentSecurityPolicy: "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'",
            .xContentTypeOptions: "nosniff",
            .init("Referrer-Policy")!: "no-referrer",
        ]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: text)))
    }

    /// A small page: a title, a message (HTML), and the login form unless `form` is false.
    static func message(_ title: String, _ message: String, status: HTTPResponse.Status, form: Bool = true) -> Response {
        let loginForm = form ? """
            <form method="post" action="/login"><label for="token">Admin token</label>
            <input id="token" name="token" type="password" autocomplete="current-password" required autofocus>
            <button type="submit">Log in</button></form>
            """ : "<p><a href=\"/login\">Log in</a></p>"
        let page = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>nst-orchestrator — \(DashboardPage.escape(title.lowercased()))</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>body{font:15px/1.5 system-ui,sans-serif;background:#16181d;color:#e6e6e6;margin:12vh auto;max-width:36em;padding:0 20px}
        code{background:#262a33;padding:2px 6px;border-radius:4px}h1{font-size:20px}a{color:#8ab4f8}
        form{display:flex;flex-direction:column;gap:8px;margin-top:18px}
        input{font:inherit;padding:8px;border-radius:6px;border:1px solid #3a3f4b;background:#0f1115;color:inherit}
        button{font:inherit;padding:8px;border-radius:6px;border:0;background:#3b6fd8;color:#fff;cursor:pointer}</style></head>
        <body><h1>\(DashboardPage.escape(title))</h1><p>\(message)</p>\(loginForm)</body></html>

        """
        let extra: HTTPFields = status == .unauthorized ? [.wwwAuthenticate: "Bearer realm=\"nst-orchestrator\""] : [:]
        return html(page, status: status, extra: extra)
    }
}
