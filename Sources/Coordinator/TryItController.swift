import CoordinatorAPI
import Foundation
import HTTPTypes
import Hummingbird
import NIOCore

// MARK: - GET /try, POST /try

/// The try-it page: upload a photo (admin session or admin token only; size-limited), see it in
/// every finished style side by side, computed here with bounded concurrency (`StylizeDesk`).
/// A browser's POST carries the session cookie, so it must come from this page: `Sec-Fetch-Site`
/// `same-origin`, or an `Origin` naming this host (403 otherwise).
struct TryItController: Sendable {
    let core: CoordinatorCore
    let auth: Authenticator?
    let desk: StylizeDesk

    init(core: CoordinatorCore, auth: Authenticator?) {
        self.core = core
        self.auth = auth
        desk = StylizeDesk(core: core)
    }

    func addRoutes(to router: Router<CoordinatorContext>) {
        router.get("/try", use: form)
        router.post("/try", use: submit)
    }

    @Sendable func form(_ request: Request, context: CoordinatorContext) async throws -> Response {
        if case .refused(let response) = await DashboardController.access(request, auth: auth) { return response }
        let styles = try await desk.styles()
        return page(body: formHTML(styles.map(\.name)))
    }

    @Sendable func submit(_ request: Request, context: CoordinatorContext) async throws -> Response {
        switch await DashboardController.access(request, auth: auth) {
        case .refused(let response): return response
        case .allowed(let session):
            if session, let refusal = Self.crossSite(request) { return refusal }
        }
        let styles: [StylizeDesk.Style]
        let output: StylizeOutput
        do {
            styles = try await desk.choose(nil)
            output = try await desk.run(try await desk.photo(from: request), styles)
        } catch let error as APIError {
            let names = (try? await desk.styles().map(\.name)) ?? []
            return page(body: "<p class=\"error\">\(DashboardPage.escape(error.message))</p>" + formHTML(names), status: error.status)
        }
        var html = "<section class=\"grid\">"
        html += figure("your photo", output.content)
        for (style, image) in zip(styles, output.images) {
            switch image {
            case .success(let png): html += figure(style.name, png)
            case .failure(let error):
                html += "<figure class=\"failed\"><p class=\"error\">\(DashboardPage.escape(error.description))</p>"
                    + "<figcaption>\(DashboardPage.escape(style.name))</figcaption></figure>"
            }
        }
        html += "</section>" + formHTML(styles.map(\.name))
        return page(body: html)
    }

    /// 403 unless the browser says the form was posted from this site.
    static func crossSite(_ request: Request) -> Response? {
        if let site = request.headers[.init("Sec-Fetch-Site")!] {
            return site == "same-origin" ? nil : refusal("the form was posted from another site (Sec-Fetch-Site: \(site))")
        }
        guard let origin = request.headers[.origin], let host = request.head.authority else {
            return refusal("the form must be posted from this page (no Origin header)")
        }
        let bare = origin.replacingOccurrences(of: "https://", with: "").replacingOccurrences(of: "http://", with: "")
        return bare == host ? nil : refusal("the form was posted from another site (Origin: \(origin))")
    }

    static func refusal(_ why: String) -> Response {
        DashboardController.message("Refused", DashboardPage.escape(why), status: .forbidden, form: false)
    }

    // MARK: - HTML

    func formHTML(_ names: [String]) -> String {
        let styles = names.isEmpty ? "No style has finished training yet."
            : "Finished styles: " + names.map(DashboardPage.escape).joined(separator: ", ") + "."
        return """
            <form method="post" action="/try" enctype="multipart/form-data">
            <label for="photo">A photo (JPEG or PNG, at most \(desk.limits.maxUploadBytes >> 20) MiB; shrunk to \(desk.limits.maxSide) px)</label>
            <input id="photo" name="photo" type="file" accept="image/jpeg,image/png" required>
            <button type="submit">Stylize</button></form><p class="muted">\(styles)</p>
            """
    }

    func figure(_ caption: String, _ png: Data) -> String {
        "<figure><img alt=\"\(DashboardPage.escape(caption))\" src=\"data:image/png;base64,\(png.base64EncodedString())\">"
            + "<figcaption>\(DashboardPage.escape(caption))</figcaption></figure>"
    }

    func page(body: String, status: HTTPResponse.Status = .ok) -> Response {
        let html = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>nst-orchestrator — try it</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <style>body{font:15px/1.5 system-ui,sans-serif;background:#16181d;color:#e6e6e6;margin:24px}
            a{color:#8ab4f8}.muted{color:#9aa0aa}.error{color:#ff8a80}
            form{display:flex;gap:10px;align-items:center;margin:16px 0;flex-wrap:wrap}
            button{font:inherit;padding:6px 12px;border-radius:6px;border:0;background:#3b6fd8;color:#fff;cursor:pointer}
            .grid{display:flex;flex-wrap:wrap;gap:12px}figure{margin:0;background:#1f232b;padding:8px;border-radius:8px}
            figure img{display:block;max-width:320px;max-height:320px}figcaption{text-align:center;padding-top:4px}</style></head>
            <body><h1>Try the styles</h1><p><a href="/">← dashboard</a></p>\(body)</body></html>

            """
        var response = DashboardController.html(html, status: status)
        // The results are inline PNGs.
        response.headers[.contentSecurityPolicy] = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'"
        return response
    }
}
