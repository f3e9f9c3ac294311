import Coordinator
import CoordinatorAPI
import CoordinatorTestSupport
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

/// Every route × every kind of credential → the status it must answer (issue 12). The table
/// must name every route the coordinator registers, so a new route cannot ship without a
/// decision on who may call it.
final class RouteCredentialTests: XCTestCase {
    /// The credentials a request can present.
    enum Credential: String, CaseIterable {
        case none, wrong, worker, revoked, admin
    }

    /// One route and the status each credential gets: none, wrong, worker, revoked, admin.
    struct Row {
        let route: String
        let statuses: [Int]
        init(_ route: String, _ none: Int, _ wrong: Int, _ worker: Int, _ revoked: Int, _ admin: Int) {
            self.route = route
            statuses = [none, wrong, worker, revoked, admin]
        }
    }

    /// The worker token holds job 2's lease (with a checkpoint, a preview and an uploaded model);
    /// job 1 is its finished job, job 3 is cancelled, job 4 is queued. Job-route rows act on
    /// job 2 unless said otherwise. POST /login presents the credential in its form.
    static let table: [Row] = [
        Row("GET /healthz",                        200, 200, 200, 200, 200),
        Row("GET /",                               303, 401, 403, 401, 200),
        Row("GET /login",                          200, 200, 200, 200, 200),
        Row("POST /login",                         400, 401, 403, 401, 303),
        Row("POST /logout",                        303, 303, 303, 303, 303),
        Row("GET /metrics",                        401, 401, 403, 401, 200),
        Row("PUT /v1/artifacts/:sha256",           401, 401, 403, 401, 201),
        Row("GET /v1/artifacts/:sha256",           401, 401, 200, 401, 200),  // the style of job 2
        Row("HEAD /v1/artifacts/:sha256",          401, 401, 403, 401, 200),
        Row("POST /v1/jobs",                       401, 401, 403, 401, 200),
        Row("GET /v1/jobs",                        401, 401, 403, 401, 200),
        Row("POST /v1/jobs/cancel-all",            401, 401, 403, 401, 200),
        Row("GET /v1/jobs/:id",                    401, 401, 403, 401, 200),
        Row("GET /v1/jobs/:id/losses",             401, 401, 403, 401, 200),
        Row("GET /v1/jobs/:id/model",              401, 401, 403, 401, 200),  // job 1
        Row("POST /v1/jobs/:id/cancel",            401, 401, 403, 401, 200),
        Row("POST /v1/jobs/:id/retry",             401, 401, 403, 401, 200),  // job 3
        Row("POST /v1/jobs/:id/promote",           401, 401, 403, 401, 200),  // job 1 to 8 steps
        Row("PUT /v1/jobs/:id/preview",            401, 401, 201, 401, 201),
        Row("GET /v1/jobs/:id/preview",            401, 401, 403, 401, 200),
        Row("POST /v1/lease",                      401, 401, 200, 401, 200),  // gets job 4
        Row("POST /v1/jobs/:id/heartbeat",         401, 401, 200, 401, 200),
        Row("PUT /v1/jobs/:id/checkpoints/:step",  401, 401, 201, 401, 201),
        Row("PUT /v1/jobs/:id/model",              401, 401, 201, 401, 201),
        Row("POST /v1/jobs/:id/complete",          401, 401, 200, 401, 200),
        Row("POST /v1/jobs/:id/fail",              401, 401, 200, 401, 200),
        Row("POST /v1/jobs/:id/release",           401, 401, 200, 401, 200),
        Row("POST /v1/tokens",                     401, 401, 403, 401, 201),
        Row("GET /v1/tokens",                      401, 401, 403, 401, 200),
        Row("POST /v1/tokens/:id/revoke",          401, 401, 403, 401, 200),
        Row("GET /v1/datasets",                    401, 401, 403, 401, 200),
        Row("GET /try",                            303, 401, 403, 401, 200),
        Row("POST /try",                           303, 401, 403, 401, 200),  // a photo through job 1's style
        Row("POST /v1/stylize",                    401, 401, 403, 401, 200),
    ]

    func testTheTableNamesEveryRouteTheCoordinatorRegisters() throws {
        let registered = try registeredRoutes(in: coordinatorSourcesDir)
        XCTAssertGreaterThan(registered.count, 25, "route scan found too little: \(registered.sorted())")
        let listed = Set(Self.table.map(\.route))
        XCTAssertEqual(listed.count, Self.table.count, "a route is listed twice")
        XCTAssertEqual(registered.subtracting(listed).sorted(), [], "routes without an entry in the credential table")
        XCTAssertEqual(listed.subtracting(registered).sorted(), [], "table routes the coordinator does not have")
    }

    func testEveryRouteAnswersEachCredentialAsTheTableSays() async throws {
        var mismatches: [String] = []
        var markdown = "| route | " + Credential.allCases.map(\.rawValue).joined(separator: " | ") + " |\n"
        markdown += "|---|" + String(repeating: "---|", count: Credential.allCases.count) + "\n"
        for row in Self.table {
            var got: [Int] = []
            for (credential, expected) in zip(Credential.allCases, row.statuses) {
                // A fresh coordinator per cell, so that no cell sees another's changes.
                let h = try Harness()
                defer { h.cleanUp() }
                let (status, body) = try await h.app().test(.router) { client in
                    let world = try await World.make(h, client)
                    let r = try await world.send(row.route, as: credential, client)
                    return (Int(r.status.code), String(buffer: r.body))
                }
                got.append(status)
                if status != expected {
                    mismatches.append("\(row.route) as \(credential): \(status), expected \(expected): \(body.prefix(200))")
                }
            }
            markdown += "| `\(row.route)` | " + got.map(String.init).joined(separator: " | ") + " |\n"
        }
        XCTAssertEqual(mismatches, [], mismatches.joined(separator: "\n"))
        if let out = ProcessInfo.processInfo.environment["ROUTE_TABLE_OUT"] {
            try markdown.write(toFile: out, atomically: true, encoding: .utf8)
        }
    }

    // MARK: - The world each cell runs in

    struct World {
        let worker: String
        let revoked: String
        let lease: LeaseResponse
        let style: String
        let modelSHA: String
        let revokedID: Int64

        /// Jobs 1 (done by the worker token), 2 (held by it, with a checkpoint, a preview and
        /// an uploaded model), 3 (cancelled) and 4 (queued); a second worker token, revoked.
        static func make(_ h: Harness, _ client: some TestClientProtocol) async throws -> World {
            let worker = try await h.store.createWorkerCredential(name: "gpu1").token
            let old = try await h.store.createWorkerCredential(name: "old")
            try await h.store.revokeCredential(id: old.credential.id)
            let style = try await client.putArtifact(makePNG(width: 8, height: 8))
            var statuses: [HTTPResponse.Status] = []
            _ = try await client.submit(["done"], style: style)
            let first = try await client.leaseAs(worker)
            let model = Data("model of job 1".utf8)
            statuses.append(try await client.upload("/v1/jobs/1/checkpoints/2", Data("final checkpoint of job 1".utf8), as: worker,
                                                    lease: first.token, extra: ["X-Images-Seen": "2"]).status)
            statuses.append(try await client.upload("/v1/jobs/1/model", model, as: worker, lease: first.token).status)
            statuses.append(try await client.sendAs(worker, .post, "/v1/jobs/1/complete",
                                                    body: CompleteRequest(token: first.token, modelSHA256: sha256Hex(model),
                                                                          step: 2, imagesDone: 2)).status)
            _ = try await client.submit(["held", "stopped", "queued"], style: style)
            let lease = try await client.leaseAs(worker)
            XCTAssertEqual(lease.jobID, 2)
            statuses.append(try await client.send(.post, "/v1/jobs/3/cancel").status)
            statuses.append(try await client.upload("/v1/jobs/2/checkpoints/1", Data("checkpoint".utf8), as: worker,
                                                    lease: lease.token, extra: ["X-Images-Seen": "1"]).status)
            statuses.append(try await client.upload("/v1/jobs/2/preview", makePNG(width: 4, height: 4), as: worker,
                                                    lease: lease.token, extra: ["X-Step": "1"]).status)
            let model2 = Data("model of job 2".utf8)
            statuses.append(try await client.upload("/v1/jobs/2/model", model2, as: worker, lease: lease.token).status)
            XCTAssertEqual(statuses, [.created, .created, .ok, .ok, .created, .created, .created], "setting up the world")
            return World(worker: worker, revoked: old.token, lease: lease, style: style, modelSHA: sha256Hex(model2),
                         revokedID: old.credential.id)
        }

        func token(_ credential: Credential) -> String? {
            switch credential {
            case .none: return nil
            case .wrong: return "nstw_" + String(repeating: "0", count: 64)
            case .worker: return worker
            case .revoked: return revoked
            case .admin: return Harness.token
            }
        }

        /// The request of `route` for this world, presenting `credential`.
        func send(_ route: String, as credential: Credential, _ client: some TestClientProtocol) async throws -> TestResponse {
            let token = token(credential)
            let t = lease.token
            func json<T: Encodable>(_ method: HTTPRequest.Method, _ uri: String, _ body: T) async throws -> TestResponse {
                try await client.sendAs(token, method, uri, body: body)
            }
            func plain(_ method: HTTPRequest.Method, _ uri: String) async throws -> TestResponse {
                try await client.execute(uri: uri, method: method, headers: headers(token: token))
            }
            switch route {
            case "GET /healthz": return try await plain(.get, "/healthz")
            case "GET /": return try await plain(.get, "/")
            case "GET /login": return try await plain(.get, "/login")
            case "POST /login": return try await client.login(token ?? "")
            case "POST /logout": return try await plain(.post, "/logout")
            case "GET /metrics": return try await plain(.get, "/metrics")
            case "PUT /v1/artifacts/:sha256":
                let data = Data("a new artifact".utf8)
                return try await client.execute(uri: "/v1/artifacts/\(sha256Hex(data))", method: .put,
                                                headers: headers(token: token), body: ByteBuffer(bytes: data))
            case "GET /v1/artifacts/:sha256": return try await plain(.get, "/v1/artifacts/\(style)")
            case "HEAD /v1/artifacts/:sha256": return try await plain(.head, "/v1/artifacts/\(style)")
            case "POST /v1/jobs":
                return try await json(.post, "/v1/jobs", ["jobs": [JobConfig(name: "new", styleSHA256: style, imageSize: 32,
                                                                             styleSize: 32, batchSize: 1, steps: 4)]])
            case "GET /v1/jobs": return try await plain(.get, "/v1/jobs")
            case "POST /v1/jobs/cancel-all": return try await plain(.post, "/v1/jobs/cancel-all")
            case "GET /v1/jobs/:id": return try await plain(.get, "/v1/jobs/2")
            case "GET /v1/jobs/:id/losses": return try await plain(.get, "/v1/jobs/2/losses")
            case "GET /v1/jobs/:id/model": return try await plain(.get, "/v1/jobs/1/model")
            case "POST /v1/jobs/:id/cancel": return try await plain(.post, "/v1/jobs/2/cancel")
            case "POST /v1/jobs/:id/retry": return try await plain(.post, "/v1/jobs/3/retry")
            case "POST /v1/jobs/:id/promote": return try await json(.post, "/v1/jobs/1/promote", PromoteRequest(steps: 8))
            case "PUT /v1/jobs/:id/preview":
                return try await client.upload("/v1/jobs/2/preview", makePNG(width: 4, height: 4, seed: 9), as: token,
                                               lease: t, extra: ["X-Step": "2"])
            case "GET /v1/jobs/:id/preview": return try await plain(.get, "/v1/jobs/2/preview")
            case "POST /v1/lease": return try await json(.post, "/v1/lease", LeaseRequest(worker: "w", host: "h", threads: 1))
            case "POST /v1/jobs/:id/heartbeat":
                return try await json(.post, "/v1/jobs/2/heartbeat", HeartbeatRequest(token: t, step: 2, imagesDone: 2))
            case "PUT /v1/jobs/:id/checkpoints/:step":
                return try await client.upload("/v1/jobs/2/checkpoints/2", Data("checkpoint 2".utf8), as: token, lease: t,
                                               extra: ["X-Images-Seen": "2"])
            case "PUT /v1/jobs/:id/model":
                return try await client.upload("/v1/jobs/2/model", Data("another model".utf8), as: token, lease: t)
            case "POST /v1/jobs/:id/complete":
                return try await json(.post, "/v1/jobs/2/complete", CompleteRequest(token: t, modelSHA256: modelSHA))
            case "POST /v1/jobs/:id/fail":
                return try await json(.post, "/v1/jobs/2/fail", FailRequest(token: t, reason: "test", retryable: true))
            case "POST /v1/jobs/:id/release":
                return try await json(.post, "/v1/jobs/2/release", ReleaseRequest(token: t, reason: "test"))
            case "POST /v1/tokens": return try await json(.post, "/v1/tokens", TokenCreateRequest(name: "gpu2"))
            case "GET /v1/tokens": return try await plain(.get, "/v1/tokens")
            case "POST /v1/tokens/:id/revoke": return try await plain(.post, "/v1/tokens/\(revokedID)/revoke")
            case "GET /v1/datasets": return try await plain(.get, "/v1/datasets")
            case "GET /try": return try await plain(.get, "/try")
            case "POST /try":
                let (type, body) = multipartPhoto(makePNG(width: 8, height: 8))
                var h = headers(token: token)
                h[.contentType] = type
                return try await client.execute(uri: "/try", method: .post, headers: h, body: ByteBuffer(bytes: body))
            case "POST /v1/stylize":
                var h = headers(token: token)
                h[.contentType] = "image/png"
                return try await client.execute(uri: "/v1/stylize", method: .post, headers: h,
                                                body: ByteBuffer(bytes: makePNG(width: 8, height: 8)))
            default:
                XCTFail("no request for \(route)")
                return try await plain(.get, "/healthz")
            }
        }
    }
}

extension TestClientProtocol {
    /// A JSON request presenting `token` (none when nil).
    func sendAs<T: Encodable>(_ token: String?, _ method: HTTPRequest.Method, _ uri: String, body: T) async throws -> TestResponse {
        var h = headers(token: token)
        h[.contentType] = "application/json"
        return try await execute(uri: uri, method: method, headers: h, body: ByteBuffer(bytes: try APICoding.encoder().encode(body)))
    }

    /// A lease taken with `token`.
    func leaseAs(_ token: String) async throws -> LeaseResponse {
        let r = try await sendAs(token, .post, "/v1/lease", body: LeaseRequest(worker: "w", host: "h", threads: 1))
        XCTAssertEqual(r.status, .ok, String(buffer: r.body))
        return try decode(LeaseResponse.self, r)
    }

    /// An upload under a lease, presenting `token`.
    func upload(_ uri: String, _ data: Data, as token: String?, lease: String, extra: [String: String] = [:]) async throws -> TestResponse {
        var fields: [HTTPField.Name: String] = [.init("X-Lease-Token")!: lease, .init("X-Content-SHA256")!: sha256Hex(data)]
        for (k, v) in extra { fields[.init(k)!] = v }
        return try await execute(uri: uri, method: .put, headers: headers(token: token, fields), body: ByteBuffer(bytes: data))
    }
}
