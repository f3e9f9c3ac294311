import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// `POST /v1/stylize` and the try-it page, with a stand-in stylizer (`fakeStylize`): which
/// styles, what comes back, bad photos, sizes, the concurrency limit, and where a browser's
/// POST may come from. The real stylizer runs in `TryItPageTests` (end to end).
final class StylizeRouteTests: XCTestCase {
    /// Finishes a job named `name` whose model file starts with `byte`.
    func finish(_ name: String, byte: UInt8, _ client: some TestClientProtocol, model given: Data? = nil) async throws {
        let style = try await client.putArtifact(makePNG(width: 8, height: 8))
        _ = try await client.submit([name], style: style)
        let lease = try await client.lease()
        let model = given ?? Data([byte]) + Data(name.utf8)
        let put = try await client.upload("/v1/jobs/\(lease.jobID)/model", model, as: Harness.token, lease: lease.token)
        XCTAssertEqual(put.status, .created)
        let done = try await client.send(.post, "/v1/jobs/\(lease.jobID)/complete",
                                         body: CompleteRequest(token: lease.token, modelSHA256: sha256Hex(model)))
        XCTAssertEqual(done.status, .ok, String(buffer: done.body))
    }

    func stylize(_ client: some TestClientProtocol, _ query: String = "", body: Data, type: String = "image/png") async throws -> TestResponse {
        var h = headers()
        h[.contentType] = type
        return try await client.execute(uri: "/v1/stylize" + query, method: .post, headers: h, body: ByteBuffer(bytes: body))
    }

    func testEveryFinishedStyleOrOneByNameAndBadPhotosAreRefused() async throws {
        let h = try Harness { $0.stylizeLimits.maxUploadBytes = 4096 }
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            let photo = makePNG(width: 8, height: 8)
            let early = try await stylize(client, body: photo)
            XCTAssertEqual(early.status, .conflict)
            XCTAssertTrue(errorText(early).contains("no style has finished"), errorText(early))

            try await finish("wave", byte: 10, client)
            try await finish("dots", byte: 20, client)

            // Every style, sorted by name, each its own output
            let all = try await stylize(client, body: photo)
            XCTAssertEqual(all.status, .ok, String(buffer: all.body))
            let answer = try decode(StylizeResponse.self, all)
            XCTAssertEqual(answer.results.map(\.name), ["dots", "wave"])
            XCTAssertEqual(answer.results.map(\.jobID), [2, 1])
            XCTAssertEqual(answer.results.map { Data(base64Encoded: $0.pngBase64 ?? "") },
                           [makePNG(width: 8, height: 8, seed: 20), makePNG(width: 8, height: 8, seed: 10)])
            XCTAssertEqual(Data(base64Encoded: answer.contentPNGBase64), makePNG(width: 8, height: 8, seed: 255))

            // One by name, as a PNG; the same through a multipart form
            let one = try await stylize(client, "?model=wave", body: photo)
            XCTAssertEqual(one.status, .ok)
            XCTAssertEqual(one.headers[.contentType], "image/png")
            XCTAssertEqual(one.headers[.init("X-Style")!], "wave")
            XCTAssertEqual(Data(buffer: one.body), makePNG(width: 8, height: 8, seed: 10))
            let (type, form) = multipartPhoto(photo)
            let viaForm = try await stylize(client, "?model=dots", body: form, type: type)
            XCTAssertEqual(Data(buffer: viaForm.body), makePNG(width: 8, height: 8, seed: 20))

            // A model that does not load fails alone: an error for it, the others still drawn
            try await finish("broken", byte: UInt8(ascii: "b"), client, model: Data("broken model".utf8))
            let mixed = try decode(StylizeResponse.self, try await stylize(client, body: photo))
            XCTAssertEqual(mixed.results.map(\.name), ["broken", "dots", "wave"])
            XCTAssertEqual(mixed.results[0].error, "not a model")
            XCTAssertNil(mixed.results[0].pngBase64)
            XCTAssertNotNil(mixed.results[1].pngBase64)
            let alone = try await stylize(client, "?model=broken", body: photo)
            XCTAssertEqual(alone.status, .conflict)
            XCTAssertEqual(errorText(alone), "the model of broken (job 3) cannot be used: not a model")

            // Refusals, each naming the problem
            let cases: [(String, Data, String, HTTPResponse.Status, String)] = [
                ("?model=nope", photo, "image/png", .notFound, "no finished style named \"nope\""),
                ("", Data(), "image/png", .badRequest, "no photo"),
                ("", Data("GIF89a".utf8), "image/gif", .badRequest, "not a readable image"),
                ("", Data(repeating: 1, count: 5000), "image/png", .contentTooLarge, "exceeds the limit of 4096 bytes"),
                ("", form, "multipart/form-data", .badRequest, "boundary"),
                ("", Data("--x\r\nbroken".utf8), "multipart/form-data; boundary=x", .badRequest, "multipart"),
            ]
            for (query, body, type, status, text) in cases {
                let r = try await stylize(client, query, body: body, type: type)
                XCTAssertEqual(r.status, status, "\(query) \(type)")
                XCTAssertTrue(errorText(r).contains(text), "\(query) \(type): \(errorText(r))")
            }
        }
    }

    func testTheTryItPageNeedsALoginAndAPostFromItself() async throws {
        let h = try Harness()
        defer { h.cleanUp() }
        try await h.app().test(.router) { client in
            try await finish("wave", byte: 1, client)
            try await finish("dots", byte: 2, client)
            let none = try await client.execute(uri: "/try", method: .get)
            XCTAssertEqual(none.status, .seeOther)
            XCTAssertEqual(none.headers[.location], "/login")
            let login = try await client.login(Harness.token)
            let cookie = String(try XCTUnwrap(login.headers[.setCookie]).prefix { $0 != ";" })

            let form = try await client.execute(uri: "/try", method: .get, headers: [.cookie: cookie])
            XCTAssertEqual(form.status, .ok)
            let html = String(buffer: form.body)
            XCTAssertTrue(html.contains("enctype=\"multipart/form-data\""), html)
            XCTAssertTrue(html.contains("Finished styles: dots, wave."), html)

            let (type, body) = multipartPhoto(makePNG(width: 8, height: 8))
            func post(_ extra: HTTPFields) async throws -> TestResponse {
                var fields: HTTPFields = [.cookie: cookie, .contentType: type]
                fields.append(contentsOf: extra)
                return try await client.execute(uri: "/try", method: .post, headers: fields, body: ByteBuffer(bytes: body))
            }
            // From this page: the photo in every style, side by side
            let ok = try await post([.init("Sec-Fetch-Site")!: "same-origin"])
            XCTAssertEqual(ok.status, .ok)
            let page = String(buffer: ok.body)
            XCTAssertEqual(count("<figure>", in: page), 3, page)
            for caption in ["your photo", "dots", "wave"] { XCTAssertTrue(page.contains("<figcaption>\(caption)</figcaption>"), caption) }
            XCTAssertTrue(ok.headers[.contentSecurityPolicy]?.contains("img-src 'self' data:") ?? false)

            // From elsewhere, or without saying: refused, nothing stylised
            for extra: HTTPFields in [[.init("Sec-Fetch-Site")!: "cross-site"], [.origin: "https://evil.example"], [:]] {
                let r = try await post(extra)
                XCTAssertEqual(r.status, .forbidden, "\(extra)")
                XCTAssertFalse(String(buffer: r.body).contains("<figure>"))
            }
            // A photo that is not one: the form again with the reason
            var bad = HTTPFields()
            bad[.cookie] = cookie
            bad[.init("Sec-Fetch-Site")!] = "same-origin"
            bad[.contentType] = multipartPhoto(Data("not a photo".utf8)).0
            let wrong = try await client.execute(uri: "/try", method: .post, headers: bad,
                                                 body: ByteBuffer(bytes: multipartPhoto(Data("not a photo".utf8)).1))
            XCTAssertEqual(wrong.status, .badRequest)
            XCTAssertTrue(String(buffer: wrong.body).contains("not a readable image"), String(buffer: wrong.body))
        }
    }
}
