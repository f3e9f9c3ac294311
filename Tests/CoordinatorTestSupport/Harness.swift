import Coordinator
import CoordinatorAPI
import Crypto
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import JobStore
import XCTest

// MARK: - Harness

/// A coordinator over a real SQLite file in a fresh temporary state directory, with a manual
/// clock. Remove with `cleanUp()`.
public final class Harness: @unchecked Sendable {
    public static let token = "s3cret-token"
    public let dir: URL
    public let clock = ManualClock()
    public let store: JobStore
    public let config: CoordinatorConfig

    public init(token: String? = Harness.token, maxUploadBytes: Int64 = 1 << 20, maxJSONBytes: Int = 64 << 10,
         port: Int = 0, metricsPublic: Bool = false, configure: (inout CoordinatorConfig) -> Void = { _ in }) throws {
        dir = FileManager.default.temporaryDirectory
            .appendingPathComponent("coordinator-tests-\(UUID().uuidString)", isDirectory: true)
        var config = CoordinatorConfig(host: "127.0.0.1", port: port, stateDir: dir, token: token, leaseSeconds: 60,
                                       maxUploadBytes: maxUploadBytes, maxJSONBytes: maxJSONBytes,
                                       metricsPublic: metricsPublic)
        config.stylize = fakeStylize
        configure(&config)
        self.config = config
        store = try JobStore(path: config.databasePath, clock: clock, leaseDuration: 60)
    }

    public func app() throws -> some ApplicationProtocol {
        try buildCoordinator(config, store: store)
    }

    public func cleanUp() {
        try? store.close()
        try? FileManager.default.removeItem(at: dir)
    }

    /// Every file under the state directory except the SQLite files, relative paths sorted.
    public func files() -> [String] {
        let base = dir.standardizedFileURL.path
        guard let e = FileManager.default.enumerator(atPath: base) else { return [] }
        var out: [String] = []
        while let path = e.nextObject() as? String {
            var isDir: ObjCBool = false
            FileManager.default.fileExists(atPath: base + "/" + path, isDirectory: &isDir)
            if !isDir.boolValue && !path.hasPrefix("jobs.sqlite") { out.append(path) }
        }
        return out.sorted()
    }

    /// The tmp/ directory's entries.
    public func tmpFiles() -> [String] {
        (try? FileManager.default.contentsOfDirectory(atPath: config.tmpDir.path)) ?? []
    }

    /// The stored artifact file.
    public func artifactURL(_ sha: String) -> URL {
        config.artifactsDir.appendingPathComponent(String(sha.prefix(2))).appendingPathComponent(sha)
    }
}

// MARK: - A stylizer for tests

/// Stands in for the model code the coordinator does not link: checks that the photo is a PNG
/// (`StylizeInputError` otherwise) and answers, per model, a small PNG whose colour comes from the
/// model file's first byte, so that outputs can be told apart — or a failure for a model file
/// that starts with "broken".
public let fakeStylize: StylizeFunction = { request in
    guard request.image.starts(with: [0x89, 0x50, 0x4E, 0x47]) else { throw StylizeInputError("not a PNG") }
    let images = try request.models.map { url -> Result<Data, StylizeModelError> in
        let bytes = try Data(contentsOf: url)
        if bytes.starts(with: Data("broken".utf8)) { return .failure(StylizeModelError("not a model")) }
        return .success(makePNG(width: 8, height: 8, seed: bytes.first ?? 0))
    }
    return StylizeOutput(content: makePNG(width: 8, height: 8, seed: 255), images: images)
}

// MARK: - Requests

public func sha256Hex(_ data: Data) -> String {
    SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
}

public func headers(token: String? = Harness.token, _ extra: [HTTPField.Name: String] = [:]) -> HTTPFields {
    var h = HTTPFields()
    if let token { h[.authorization] = "Bearer \(token)" }
    for (k, v) in extra { h[k] = v }
    return h
}

extension TestClientProtocol {
    /// A JSON request with the harness token.
    public func send(_ method: HTTPRequest.Method, _ uri: String, json: String? = nil,
              token: String? = Harness.token) async throws -> TestResponse {
        var h = headers(token: token)
        if json != nil { h[.contentType] = "application/json" }
        return try await execute(uri: uri, method: method, headers: h, body: json.map { ByteBuffer(string: $0) })
    }

    /// A JSON request with an encodable body.
    public func send<T: Encodable>(_ method: HTTPRequest.Method, _ uri: String, body: T) async throws -> TestResponse {
        let text = String(decoding: try APICoding.encoder().encode(body), as: UTF8.self)
        return try await send(method, uri, json: text)
    }

    /// Uploads `data` as an artifact; returns its digest.
    @discardableResult
    public func putArtifact(_ data: Data) async throws -> String {
        let sha = sha256Hex(data)
        let r = try await execute(uri: "/v1/artifacts/\(sha)", method: .put, headers: headers(),
                                  body: ByteBuffer(bytes: data))
        XCTAssertEqual(r.status, .created, String(buffer: r.body))
        return sha
    }

    /// Uploads a checkpoint under `token`.
    public func putCheckpoint(job: Int64, step: Int, images: Int, data: Data, leaseToken: String,
                       claimedSHA: String? = nil) async throws -> TestResponse {
        try await execute(uri: "/v1/jobs/\(job)/checkpoints/\(step)", method: .put,
                          headers: headers(token: Harness.token, [.init("X-Lease-Token")!: leaseToken,
                                                                  .init("X-Content-SHA256")!: claimedSHA ?? sha256Hex(data),
                                                                  .init("X-Images-Seen")!: "\(images)"]),
                          body: ByteBuffer(bytes: data))
    }

    /// Submits one job per name with the given style; returns the created ids.
    public func submit(_ names: [String], style: String, steps: Int = 4) async throws -> [Int64] {
        let configs = names.map { JobConfig(name: $0, styleSHA256: style, imageSize: 32, styleSize: 32, batchSize: 1, steps: steps) }
        let r = try await send(.post, "/v1/jobs", body: ["jobs": configs])
        XCTAssertEqual(r.status, .ok, String(buffer: r.body))
        return try decode(SubmitResponse.self, r).created
    }

    /// Posts the dashboard's login form with `token`.
    public func login(_ token: String) async throws -> TestResponse {
        let form = "token=" + (token.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
        return try await execute(uri: "/login", method: .post,
                                 headers: [.contentType: "application/x-www-form-urlencoded"], body: ByteBuffer(string: form))
    }

    public func lease(worker: String = "w1") async throws -> LeaseResponse {
        let r = try await send(.post, "/v1/lease", json: #"{"worker": "\#(worker)", "host": "h", "threads": 2}"#)
        XCTAssertEqual(r.status, .ok, String(buffer: r.body))
        return try decode(LeaseResponse.self, r)
    }
}

public func decode<T: Decodable>(_ type: T.Type, _ response: TestResponse) throws -> T {
    try APICoding.decoder().decode(T.self, from: Data(buffer: response.body))
}

/// The `error` field of an error answer.
public func errorText(_ response: TestResponse) -> String {
    let object = try? JSONSerialization.jsonObject(with: Data(buffer: response.body)) as? [String: Any]
    return object?["error"] as? String ?? "<no error field: \(String(buffer: response.body))>"
}

/// `XCTUnwrap` for a value an `await` produced.
public func XCTUnwrapAsync<T>(_ value: T?, file: StaticString = #filePath, line: UInt = #line) async throws -> T {
    try XCTUnwrap(value, file: file, line: line)
}

/// A `multipart/form-data` body with `data` as the file field `photo`: (Content-Type, body).
public func multipartPhoto(_ data: Data, filename: String = "photo.png") -> (String, Data) {
    let boundary = "nst-boundary-7d1f"
    var body = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"photo\"; filename=\"\(filename)\"\r\n".utf8)
    body += Data("Content-Type: image/png\r\n\r\n".utf8) + data + Data("\r\n--\(boundary)--\r\n".utf8)
    return ("multipart/form-data; boundary=\(boundary)", body)
}

// MARK: - Images

/// A valid RGB PNG (stored deflate blocks), so tests need no image library.
public func makePNG(width: Int, height: Int, seed: UInt8 = 0) -> Data {
    var raw: [UInt8] = []
    for y in 0..<height {
        raw.append(0)
        for x in 0..<width { raw += [UInt8(truncatingIfNeeded: x * 7 + Int(seed)), UInt8(truncatingIfNeeded: y * 13), seed] }
    }
    var zlib: [UInt8] = [0x78, 0x01]
    var offset = 0
    repeat {
        let n = min(65535, raw.count - offset)
        zlib.append(offset + n == raw.count ? 1 : 0)
        zlib += [UInt8(n & 0xff), UInt8(n >> 8), UInt8(~n & 0xff), UInt8((~n >> 8) & 0xff)]
        zlib += raw[offset..<offset + n]
        offset += n
    } while offset < raw.count
    var a: UInt32 = 1, b: UInt32 = 0
    for byte in raw { a = (a + UInt32(byte)) % 65521; b = (b + a) % 65521 }
    zlib += bigEndian((b << 16) | a)
    var png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    func chunk(_ type: String, _ body: [UInt8]) {
        let typed = Array(type.utf8) + body
        png += bigEndian(UInt32(body.count)) + typed + bigEndian(crc32(typed))
    }
    chunk("IHDR", bigEndian(UInt32(width)) + bigEndian(UInt32(height)) + [8, 2, 0, 0, 0])
    chunk("IDAT", zlib)
    chunk("IEND", [])
    return Data(png)
}

private func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8((v >> 16) & 0xff), UInt8((v >> 8) & 0xff), UInt8(v & 0xff)] }

private func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
        crc ^= UInt32(byte)
        for _ in 0..<8 { crc = (crc & 1) != 0 ? (crc >> 1) ^ 0xEDB8_8320 : crc >> 1 }
    }
    return ~crc
}

/// A temporary directory removed by the caller.
public func makeTempDir() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("coord-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}
