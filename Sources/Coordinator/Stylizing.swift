import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore
import NIOCore

// MARK: - Stylizing, injected

/// What the coordinator asks of a stylizer: one photo through several trained models. The
/// coordinator does not link the model code (the worker and the CLI do); `orchestrator serve`
/// injects a function built on NSTModel, tests inject their own.
public struct StylizeRequest: Sendable {
    /// The photo as uploaded (JPEG or PNG bytes).
    public var image: Data
    /// Model files (safetensors), one output each, in this order.
    public var models: [URL]
    /// The photo is shrunk first so that its longer side is at most this.
    public var maxSide: Int

    public init(image: Data, models: [URL], maxSide: Int) {
        self.image = image
        self.models = models
        self.maxSide = maxSide
    }
}

/// PNG bytes: the photo as the models saw it, then per model its stylised image, or why that
/// model could not be used (a model file that does not load fails alone, not the request).
public struct StylizeOutput: Sendable {
    public var content: Data
    public var images: [Result<Data, StylizeModelError>]

    public init(content: Data, images: [Result<Data, StylizeModelError>]) {
        self.content = content
        self.images = images
    }
}

/// Why one model could not stylise (its file does not load, say).
public struct StylizeModelError: Error, CustomStringConvertible, Sendable, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Why a photo could not be stylised because of what was sent (answered 400; anything else a
/// stylizer throws is a 500).
public struct StylizeInputError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

public typealias StylizeFunction = @Sendable (StylizeRequest) async throws -> StylizeOutput

/// How much stylizing the coordinator does for the try-it page and `POST /v1/stylize`.
public struct StylizeLimits: Sendable, Equatable {
    /// Largest upload accepted (413 above).
    public var maxUploadBytes = 16 << 20
    /// Photos are shrunk to this longer side first.
    public var maxSide = 1024
    /// Requests stylised at once; more wait.
    public var concurrency = 1
    /// Requests allowed to wait; more are answered 503 at once.
    public var queue = 4

    public init() {}
}

// MARK: - A gate with a queue

/// At most `limit` holders at once and `queue` waiting; anyone beyond is refused at once.
actor StylizeGate {
    let limit: Int
    let queue: Int
    private var running = 0
    private var waiting: [CheckedContinuation<Void, Never>] = []

    init(limit: Int, queue: Int) {
        self.limit = max(1, limit)
        self.queue = max(0, queue)
    }

    /// Waits for a place; false (at once) when the queue is full.
    func enter() async -> Bool {
        if running < limit {
            running += 1
            return true
        }
        guard waiting.count < queue else { return false }
        await withCheckedContinuation { waiting.append($0) }
        return true  // the place was handed over by `leave`
    }

    func leave() {
        if waiting.isEmpty {
            running -= 1
        } else {
            waiting.removeFirst().resume()
        }
    }
}

// MARK: - The coordinator's stylizing

/// The finished styles and the injected function behind a gate: what the try-it page and
/// `POST /v1/stylize` share.
struct StylizeDesk: Sendable {
    let core: CoordinatorCore
    let function: StylizeFunction?
    let limits: StylizeLimits
    let gate: StylizeGate

    init(core: CoordinatorCore) {
        self.core = core
        function = core.config.stylize
        limits = core.config.stylizeLimits
        gate = StylizeGate(limit: limits.concurrency, queue: limits.queue)
    }

    /// A finished style: the latest succeeded job of each name, with its model file.
    struct Style: Sendable {
        var name: String
        var jobID: Int64
        var model: URL
    }

    /// Every finished style, by name.
    func styles() async throws -> [Style] {
        var latest: [String: Job] = [:]
        for summary in try await core.store.jobs() where summary.job.state == .succeeded && summary.job.modelSHA256 != nil {
            latest[summary.job.name] = summary.job  // ids ascend: the last one wins
        }
        return try latest.values.sorted { $0.name < $1.name }.compactMap { job in
            let url = try core.artifacts.url(for: job.modelSHA256!)
            return FileManager.default.fileExists(atPath: url.path) ? Style(name: job.name, jobID: job.id, model: url) : nil
        }
    }

    /// `styles` filtered by `?model=`: one name, or every style for nil/`all`. 404 for an
    /// unknown name, 409 when nothing is finished yet.
    func choose(_ name: String?) async throws -> [Style] {
        let all = try await styles()
        guard !all.isEmpty else { throw APIError(.conflict, "no style has finished training yet: nothing to stylize with") }
        guard let name, name != "all" else { return all }
        guard let one = all.first(where: { $0.name == name }) else {
            throw APIError.notFound("no finished style named \"\(Sanitize.oneLine(String(name.prefix(80))))\" (finished: \(all.map(\.name).joined(separator: ", ")))")
        }
        return [one]
    }

    /// Runs the stylizer on `image` with `styles`, at most `limits.concurrency` at once: 503
    /// when the queue is full or no stylizer was configured, 400 for bytes that are not an image.
    func run(_ image: Data, _ styles: [Style]) async throws -> StylizeOutput {
        guard let function else { throw APIError(.serviceUnavailable, "this coordinator was started without a stylizer") }
        guard await gate.enter() else {
            throw APIError(.serviceUnavailable, "the coordinator is busy stylizing (\(limits.concurrency) running, \(limits.queue) waiting); try again soon")
        }
        do {
            let output = try await function(StylizeRequest(image: image, models: styles.map(\.model), maxSide: limits.maxSide))
            await gate.leave()
            guard output.images.count == styles.count else {
                throw APIError(.internalServerError, "the stylizer returned \(output.images.count) images for \(styles.count) styles")
            }
            return output
        } catch let error as StylizeInputError {
            await gate.leave()
            throw APIError.badRequest("not a readable image: \(error.description)")
        } catch {
            await gate.leave()
            throw error
        }
    }

    /// The uploaded photo: a multipart form's first file (field `photo`, else any file) or a raw
    /// image body, at most `limits.maxUploadBytes` (413 above, 400 when there is no file).
    func photo(from request: Request) async throws -> Data {
        if let n = try request.contentLength(), n > Int64(limits.maxUploadBytes) {
            throw APIError(.contentTooLarge, "a photo of \(n) bytes exceeds the limit of \(limits.maxUploadBytes) bytes")
        }
        let buffer: ByteBuffer
        do { buffer = try await request.body.collect(upTo: limits.maxUploadBytes) } catch is NIOTooManyBytesError {
            throw APIError(.contentTooLarge, "the photo exceeds the limit of \(limits.maxUploadBytes) bytes")
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw APIError.badRequest("the photo could not be read (cut short or malformed): \(error)")
        }
        let type = request.headers[.contentType] ?? ""
        let data = type.lowercased().hasPrefix("multipart/form-data")
            ? try MultipartPhoto.file(in: buffer, contentType: type)
            : Data(buffer: buffer)
        if data.isEmpty { throw APIError.badRequest("no photo in the request (a JPEG or PNG body, or a form with a file)") }
        return data
    }
}
