import AsyncHTTPClient
import CoordinatorAPI
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

// MARK: - Health and artifacts

extension CoordinatorClient {
    /// True if the coordinator answers `GET /healthz` with `{"ok": true}`.
    /// - Throws: `.unreachable` when it does not answer at all.
    public func health() async throws -> Bool {
        let response = try await send(.GET, "/healthz")
        guard response.status == .ok else { return false }
        return (try? await decode(Health.self, from: response).ok) ?? false
    }

    /// True if the artifact store holds `sha256` (`HEAD /v1/artifacts/{sha256}`).
    public func hasArtifact(sha256: String) async throws -> Bool {
        let response = try await send(.HEAD, "/v1/artifacts/\(try pathDigest(sha256))")
        switch response.status.code {
        case 200: return true
        case 404: return false
        default:
            let reason = response.headers.first(name: APIHeader.error).map { Sanitize.oneLine($0) }
            throw ClientError.http(status: Int(response.status.code), message: reason ?? "HEAD /v1/artifacts/\(sha256)")
        }
    }

    /// Uploads `file` to the artifact store (streamed; its SHA-256 computed first).
    @discardableResult
    public func uploadArtifact(file: URL) async throws -> (sha256: String, size: Int64) {
        let (sha, size) = try digest(of: file)
        let answer = try await upload(file: file, sha256: sha, size: size, to: "/v1/artifacts/\(sha)")
        return (answer.sha256, answer.size)
    }

    /// Downloads the artifact `sha256` to `destination`: streamed to a temporary file next to
    /// it, verified, then renamed (an existing file is replaced only by verified content). At
    /// most `expectedSize` bytes (when known, e.g. a checkpoint's), else `maxDownloadBytes`, are
    /// written: a longer answer is cut and refused.
    ///
    /// A download cut short (the coordinator became unreachable) keeps what it received in
    /// `.NAME.partial` beside `destination`; the next call asks only for the rest
    /// (`Range: bytes=N-`), hashing the kept bytes first, and starts over if the coordinator
    /// answers with the whole file. Any other failure removes the partial file.
    public func download(artifact sha256: String, to destination: URL, expectedSize: Int64? = nil) async throws {
        let limit = expectedSize ?? Self.maxDownloadBytes
        let partial = Self.partialFile(for: destination)
        var have = (try? FileManager.default.attributesOfItem(atPath: partial.path)[.size] as? Int64) ?? 0
        if have >= limit {
            try? FileManager.default.removeItem(at: partial)
            have = 0
        }
        let response = try await send(.GET, "/v1/artifacts/\(try pathDigest(sha256))",
                                      headers: have > 0 ? [("Range", "bytes=\(have)-")] : [], transfer: true)
        try await save(response, expected: sha256, to: destination, limit: limit, resume: (partial, have))
    }

    /// Where a cut download of `destination` is kept until it is resumed.
    public static func partialFile(for destination: URL) -> URL {
        destination.deletingLastPathComponent().appendingPathComponent(".\(destination.lastPathComponent).partial")
    }

    /// The most a download without a known size may write (the coordinator's uploads are
    /// smaller): a coordinator cannot fill this machine's disk.
    public static let maxDownloadBytes: Int64 = 2 << 30

    /// The file-name stem of `job`'s fetched results: its name, which the coordinator only
    /// accepts under the job-name rule; a name that breaks it (`../../x`) is refused, so that
    /// nothing is written outside the chosen folder.
    public static func fileStem(for job: JobStatus) throws -> String {
        if let problem = JobConfig.nameProblem(job.name) {
            throw ClientError.badResponse("job \(job.id) has a name that is not a safe file name (\(problem)); not fetched")
        }
        return job.name
    }

    // MARK: - Jobs (CLI)

    /// Creates one job per config in one transaction (`force`: even if a job of that name is
    /// queued or running). Every style image must have been uploaded first.
    public func submit(_ configs: [JobConfig], force: Bool = false) async throws -> SubmitResponse {
        try await call(.POST, "/v1/jobs", json: SubmitRequest(jobs: configs, force: force), as: SubmitResponse.self)
    }

    /// Every job, and totals per state.
    public func jobs() async throws -> JobsResponse {
        try await call(.GET, "/v1/jobs", as: JobsResponse.self)
    }

    /// One job with its config, checkpoints and events.
    public func job(id: Int64) async throws -> JobDetail {
        try await call(.GET, "/v1/jobs/\(id)", as: JobDetail.self)
    }

    /// The job's loss curve, one point per step.
    public func losses(id: Int64) async throws -> [LossPoint] {
        try await call(.GET, "/v1/jobs/\(id)/losses", as: LossesResponse.self).points
    }

    /// The job's loss curve as CSV (`step,images,content,style,total`).
    public func lossesCSV(id: Int64) async throws -> String {
        String(decoding: try await successBody(send(.GET, "/v1/jobs/\(id)/losses?format=csv")), as: UTF8.self)
    }

    /// The job's latest preview (a PNG, checked to start like one) and the step it shows, or nil
    /// when it has none yet. At most `maxPreviewBytes` are read: a longer answer is refused.
    public func preview(id: Int64) async throws -> (step: Int?, png: Data)? {
        let response = try await send(.GET, "/v1/jobs/\(id)/preview")
        if response.status == .notFound {
            _ = try? await response.body.collect(upTo: 64 << 10)
            return nil
        }
        guard response.status == .ok else { _ = try await successBody(response); throw ClientError.badResponse("no preview") }
        let buffer: ByteBuffer
        do { buffer = try await response.body.collect(upTo: Self.maxPreviewBytes) } catch is NIOTooManyBytesError {
            throw ClientError.badResponse("job \(id)'s preview is larger than \(Self.maxPreviewBytes) bytes")
        } catch {
            throw unreachable(error)
        }
        let png = Data(buffer: buffer)
        guard png.starts(with: [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) else {
            throw ClientError.badResponse("job \(id)'s preview is not a PNG")
        }
        let step = response.headers.first(name: APIHeader.step).flatMap { Int($0) }
        return (step, png)
    }

    /// The largest preview `preview(id:)` reads (the coordinator stores at most 8 MiB).
    public static let maxPreviewBytes = 8 << 20

    /// Downloads a succeeded job's model to `destination`, verified against the digest the
    /// coordinator recorded; returns that digest.
    @discardableResult
    public func downloadModel(id: Int64, to destination: URL) async throws -> String {
        let response = try await send(.GET, "/v1/jobs/\(id)/model", transfer: true)
        guard response.status == .ok else { _ = try await successBody(response); throw ClientError.badResponse("no model") }
        guard let sha = response.headers.first(name: APIHeader.contentSHA256), JobConfig.isSHA256(sha) else {
            throw ClientError.badResponse("the model download has no X-Content-SHA256 header")
        }
        try await save(response, expected: sha, to: destination, limit: Self.maxDownloadBytes)
        return sha
    }

    /// Cancels a queued or running job (409 from any other state).
    @discardableResult
    public func cancel(id: Int64) async throws -> JobStatus {
        try await call(.POST, "/v1/jobs/\(id)/cancel", as: JobStatus.self)
    }

    /// Cancels every queued and running job; returns their ids.
    @discardableResult
    public func cancelAll() async throws -> [Int64] {
        try await call(.POST, "/v1/jobs/cancel-all", as: CancelAllResponse.self).cancelled
    }

    /// Queues a failed or cancelled job again (409 from any other state).
    @discardableResult
    public func retry(id: Int64) async throws -> JobStatus {
        try await call(.POST, "/v1/jobs/\(id)/retry", as: JobStatus.self)
    }

    /// Queues a new job continuing the succeeded job `id` to a longer budget; the new job's status.
    public func promote(id: Int64, _ request: PromoteRequest) async throws -> JobStatus {
        try await call(.POST, "/v1/jobs/\(id)/promote", json: request, as: JobStatus.self)
    }

    // MARK: - Worker tokens (admin)

    /// Makes a worker token; the answer holds the token, which is never shown again.
    public func createWorkerToken(name: String?) async throws -> TokenCreated {
        try await call(.POST, "/v1/tokens", json: TokenCreateRequest(role: "worker", name: name), as: TokenCreated.self)
    }

    /// Every token (never the tokens themselves), revoked ones too.
    public func tokens() async throws -> [TokenInfo] {
        try await call(.GET, "/v1/tokens", as: TokensResponse.self).tokens
    }

    /// Revokes token `id`: its next request is refused.
    @discardableResult
    public func revokeToken(id: Int64) async throws -> TokenInfo {
        try await call(.POST, "/v1/tokens/\(id)/revoke", as: TokenInfo.self)
    }

    // MARK: - Leases (worker)

    /// The next queued job for this worker, or nil when nothing is queued.
    public func lease(worker: String, host: String, threads: Int) async throws -> LeaseResponse? {
        let body = LeaseRequest(worker: worker, host: host, threads: threads)
        let response = try await send(.POST, "/v1/lease", headers: jsonHeaders(body), body: try encodeBody(body))
        if response.status == .noContent { return nil }
        return try await decode(LeaseResponse.self, from: response)
    }

    /// Reports progress and new loss points, extending the lease. `.cancel` means stop.
    /// - Throws: `.http(409)` (`isStaleLease`) when the lease is no longer this worker's.
    public func heartbeat(jobID: Int64, _ request: HeartbeatRequest) async throws -> HeartbeatResponse {
        try await call(.POST, "/v1/jobs/\(jobID)/heartbeat", json: request, as: HeartbeatResponse.self)
    }

    /// Uploads a checkpoint file taken after `step` steps; it becomes the job's latest.
    /// Returns its SHA-256.
    @discardableResult
    public func uploadCheckpoint(jobID: Int64, token: String, step: Int, imagesSeen: Int, file: URL) async throws -> String {
        let (sha, size) = try digest(of: file)
        return try await upload(file: file, sha256: sha, size: size, to: "/v1/jobs/\(jobID)/checkpoints/\(step)",
                                headers: [(APIHeader.leaseToken, token), (APIHeader.imagesSeen, "\(imagesSeen)")]).sha256
    }

    /// Uploads the final model; returns its SHA-256 (to pass to `complete`).
    @discardableResult
    public func uploadModel(jobID: Int64, token: String, file: URL) async throws -> String {
        let (sha, size) = try digest(of: file)
        return try await upload(file: file, sha256: sha, size: size, to: "/v1/jobs/\(jobID)/model",
                                headers: [(APIHeader.leaseToken, token)]).sha256
    }

    /// Uploads a preview PNG rendered through the checkpoint of `step`; it becomes the job's
    /// latest preview (shown by the dashboard). Returns its SHA-256.
    /// - Throws: `.http(400)` if the file is not a PNG, `.http(413)` above 8 MiB, `.http(409)`
    ///   (`isStaleLease`) when the lease is no longer this worker's.
    @discardableResult
    public func uploadPreview(jobID: Int64, token: String, step: Int, file: URL) async throws -> String {
        let (sha, size) = try digest(of: file)
        return try await upload(file: file, sha256: sha, size: size, to: "/v1/jobs/\(jobID)/preview",
                                headers: [(APIHeader.leaseToken, token), (APIHeader.step, "\(step)")],
                                contentType: "image/png").sha256
    }

    /// Marks the job succeeded with its uploaded model, with the last progress and loss points.
    @discardableResult
    public func complete(jobID: Int64, token: String, modelSHA256: String, step: Int, imagesDone: Int,
                         lossPoints: [LossPoint] = [], validation: [ValidationPoint] = [],
                         bestStep: Int? = nil) async throws -> JobStatus {
        let body = CompleteRequest(token: token, modelSHA256: modelSHA256, step: step, imagesDone: imagesDone,
                                   lossPoints: lossPoints, validation: validation.isEmpty ? nil : validation,
                                   bestStep: bestStep)
        return try await call(.POST, "/v1/jobs/\(jobID)/complete", json: body, as: JobStatus.self)
    }

    /// Reports a failure: retryable → queued again (attempt + 1) unless that was the last attempt.
    @discardableResult
    public func fail(jobID: Int64, token: String, reason: String, retryable: Bool) async throws -> JobStatus {
        try await call(.POST, "/v1/jobs/\(jobID)/fail",
                       json: FailRequest(token: token, reason: reason, retryable: retryable), as: JobStatus.self)
    }

    /// Hands the job back (graceful stop): queued again, same attempt.
    @discardableResult
    public func release(jobID: Int64, token: String, reason: String) async throws -> JobStatus {
        try await call(.POST, "/v1/jobs/\(jobID)/release",
                       json: ReleaseRequest(token: token, reason: reason), as: JobStatus.self)
    }
}

// MARK: - Transfers

extension CoordinatorClient {
    func pathDigest(_ sha256: String) throws -> String {
        guard JobConfig.isSHA256(sha256) else {
            throw ClientError.badResponse("not a sha256 digest: \"\(sha256.prefix(80))\"")
        }
        return sha256
    }

    func digest(of file: URL) throws -> (String, Int64) {
        do { return try FileDigest.sha256(of: file) } catch {
            throw LocalFileError(path: file.path, reason: (error as NSError).localizedDescription)
        }
    }

    func upload(file: URL, sha256: String, size: Int64, to path: String, headers: [(String, String)] = [],
                contentType: String = "application/octet-stream") async throws -> UploadResponse {
        let all = headers + [(APIHeader.contentSHA256, sha256), ("Content-Type", contentType)]
        let response = try await send(.PUT, path, headers: all,
                                      body: .stream(FileChunks(url: file), length: .known(size)), transfer: true)
        let answer = try await decode(UploadResponse.self, from: response)
        guard answer.sha256 == sha256, answer.size == size else {
            throw ClientError.badResponse("the coordinator stored \(answer.sha256) (\(answer.size) bytes), sent \(sha256) (\(size) bytes)")
        }
        return answer
    }

    /// Streams a 2xx response body to a temporary file beside `destination`, hashing it; on a
    /// match fsyncs and renames it into place, else removes it and throws `.checksumMismatch`.
    /// `resume`: the partial file to continue (its first `have` bytes were asked to be skipped);
    /// nil for a download that is not resumable (a fresh temporary file, removed on any failure).
    func save(_ response: HTTPClientResponse, expected: String, to destination: URL, limit: Int64,
              resume: (file: URL, have: Int64)? = nil) async throws {
        guard (200..<300).contains(Int(response.status.code)) else {
            if let resume { try? FileManager.default.removeItem(at: resume.file) }
            _ = try await successBody(response)
            return
        }
        // 206 from where the partial file ends: continue it; anything else: start over.
        let continuing = resume.map { r in
            r.have > 0 && response.status.code == 206
                && (response.headers.first(name: "Content-Range") ?? "").hasPrefix("bytes \(r.have)-")
        } ?? false
        let startAt = continuing ? resume!.have : 0
        if let declared = response.headers.first(name: "Content-Length").flatMap({ Int64($0) }), startAt + declared > limit {
            if let resume { try? FileManager.default.removeItem(at: resume.file) }
            throw ClientError.badResponse("the download of \(expected.prefix(12)) is \(startAt + declared) bytes, more than the \(limit) expected; not saved")
        }
        let dir = destination.deletingLastPathComponent()
        let temp = resume?.file ?? dir.appendingPathComponent(".\(destination.lastPathComponent).partial-\(UUID().uuidString)")
        var hasher = SHA256Hasher()
        if continuing {
            do { try Self.hash(prefixOf: temp, count: startAt, into: &hasher) } catch {
                try? FileManager.default.removeItem(at: temp)
                throw LocalFileError(path: temp.path, reason: "cannot read the partial download: \(error)")
            }
        } else if !FileManager.default.createFile(atPath: temp.path, contents: nil) {
            throw LocalFileError(path: temp.path, reason: "cannot create the file")
        }
        guard let handle = try? FileHandle(forWritingTo: temp) else {
            throw LocalFileError(path: temp.path, reason: "cannot open the file")
        }
        if continuing { _ = try? handle.seekToEnd() }
        var renamed = false
        var keepPartial = false
        defer {
            try? handle.close()
            if !renamed && !keepPartial { try? FileManager.default.removeItem(at: temp) }
        }
        var written: Int64 = startAt
        do {
            for try await buffer in response.body {
                written += Int64(buffer.readableBytes)
                if written > limit {
                    throw ClientError.badResponse("the download of \(expected.prefix(12)) exceeds the \(limit) bytes expected; not saved")
                }
                let data = Data(buffer: buffer)
                hasher.update(data)
                do { try handle.write(contentsOf: data) } catch {
                    throw LocalFileError(path: temp.path, reason: (error as NSError).localizedDescription)
                }
            }
        } catch let error as LocalFileError {
            throw error
        } catch let error as ClientError {
            throw error
        } catch {
            keepPartial = resume != nil  // cut short: the next call continues from here
            throw unreachable(error)
        }
        let actual = hasher.hex()
        guard actual == expected else { throw ClientError.checksumMismatch(expected: expected, actual: actual) }
        do {
            try handle.synchronize()
        } catch {
            throw LocalFileError(path: temp.path, reason: (error as NSError).localizedDescription)
        }
        guard rename(temp.path, destination.path) == 0 else {
            throw LocalFileError(path: destination.path, reason: errnoText())
        }
        renamed = true
    }

    /// Feeds the first `count` bytes of `file` to `hasher`, in 1 MiB reads.
    static func hash(prefixOf file: URL, count: Int64, into hasher: inout SHA256Hasher) throws {
        let handle = try FileHandle(forReadingFrom: file)
        defer { try? handle.close() }
        var left = count
        while left > 0, let chunk = try handle.read(upToCount: Int(min(left, 1 << 20))), !chunk.isEmpty {
            hasher.update(chunk)
            left -= Int64(chunk.count)
        }
        guard left == 0 else { throw LocalFileError(path: file.path, reason: "shorter than the \(count) bytes kept") }
    }
}
