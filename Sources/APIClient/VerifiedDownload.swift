import AsyncHTTPClient
import CoordinatorAPI
import Foundation
import NIOCore
import NIOFoundationCompat

// MARK: - VerifiedDownload

/// Downloads a file from any HTTP(S) URL the way `torch.hub.download_url_to_file` does: into a
/// temporary file beside the destination, hashed on the way, and renamed into place only if its
/// SHA-256 (lowercase hex) starts with the expected prefix. A mismatch, a cut connection or an
/// error status leaves no file behind. Redirects are followed (at most 5).
public enum VerifiedDownload {
    /// The most a download may write unless told otherwise (torchvision's largest weights are
    /// about 1 GB): a misbehaving server cannot fill the disk.
    public static let defaultMaxBytes: Int64 = 4 << 30

    /// `os.path.basename(urlparse(url).path)`, as torch.hub names the file; nil for a URL
    /// without a file name.
    public static func fileName(of url: String) -> String? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(),
              ["http", "https"].contains(scheme), components.host?.isEmpty == false else { return nil }
        let name = components.path.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        return name.isEmpty || name == "." || name == ".." ? nil : name
    }

    /// True for 1 to 64 lowercase hex digits.
    public static func isHashPrefix(_ text: String) -> Bool {
        (1...64).contains(text.utf8.count) && text.utf8.allSatisfy {
            (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains($0)
        }
    }

    /// Downloads `url` to `destination` (its folder must exist).
    /// - Parameters:
    ///   - hashPrefix: the start of the expected SHA-256, lowercase hex.
    ///   - progress: called after each chunk with the bytes received and the total, if the
    ///     server announced one.
    /// - Returns: the file's SHA-256 and size.
    /// - Throws: `DownloadError`.
    public static func download(_ url: String, to destination: URL, hashPrefix: String,
                                maxBytes: Int64 = defaultMaxBytes,
                                progress: (_ received: Int64, _ total: Int64?) -> Void = { _, _ in })
        async throws -> (sha256: String, bytes: Int64)
    {
        guard isHashPrefix(hashPrefix) else { throw DownloadError.badHashPrefix(hashPrefix) }
        guard fileName(of: url) != nil else { throw DownloadError.badURL(url) }
        var config = HTTPClient.Configuration()
        config.redirectConfiguration = .follow(max: 5, allowCycles: false)
        config.timeout = .init(connect: .seconds(30), read: .seconds(60))
        config.decompression = .disabled
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: config)
        do {
            let result = try await transfer(http, url, to: destination, hashPrefix: hashPrefix, maxBytes: maxBytes, progress: progress)
            try? await http.shutdown()
            return result
        } catch {
            try? await http.shutdown()
            throw error
        }
    }

    /// The transport reason in words, about any server rather than the coordinator.
    static func reason(_ error: any Error) -> String {
        CoordinatorClient.reason(error).replacingOccurrences(of: "by the coordinator", with: "by the server")
    }

    private static func transfer(_ http: HTTPClient, _ url: String, to destination: URL, hashPrefix: String, maxBytes: Int64,
                                 progress: (Int64, Int64?) -> Void) async throws -> (sha256: String, bytes: Int64) {
        let request = HTTPClientRequest(url: url)
        let response: HTTPClientResponse
        do {
            response = try await http.execute(request, deadline: .now() + .hours(24))
        } catch {
            throw DownloadError.unreachable(url: url, reason: reason(error))
        }
        guard response.status == .ok else { throw DownloadError.http(url: url, status: Int(response.status.code)) }
        let total = response.headers.first(name: "Content-Length").flatMap { Int64($0) }
        if let total, total > maxBytes { throw DownloadError.tooLarge(url: url, limit: maxBytes) }

        let temp = destination.deletingLastPathComponent()
            .appendingPathComponent(".\(destination.lastPathComponent).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temp.path, contents: nil),
              let handle = try? FileHandle(forWritingTo: temp) else {
            throw DownloadError.local(path: temp.path, reason: "cannot create the file: \(errnoText())")
        }
        var renamed = false
        defer {
            try? handle.close()
            if !renamed { try? FileManager.default.removeItem(at: temp) }
        }
        var hasher = SHA256Hasher()
        var received: Int64 = 0
        do {
            for try await buffer in response.body {
                received += Int64(buffer.readableBytes)
                if received > maxBytes { throw DownloadError.tooLarge(url: url, limit: maxBytes) }
                let data = Data(buffer: buffer)
                hasher.update(data)
                do { try handle.write(contentsOf: data) } catch {
                    throw DownloadError.local(path: temp.path, reason: (error as NSError).localizedDescription)
                }
                progress(received, total)
            }
        } catch let error as DownloadError {
            throw error
        } catch {
            throw DownloadError.cut(url: url, received: received, expected: total, reason: reason(error))
        }
        if let total, received != total {
            throw DownloadError.cut(url: url, received: received, expected: total, reason: "the connection ended early")
        }
        let sha256 = hasher.hex()
        guard sha256.hasPrefix(hashPrefix) else {
            throw DownloadError.hashMismatch(url: url, expectedPrefix: hashPrefix, actual: sha256)
        }
        do { try handle.synchronize() } catch {
            throw DownloadError.local(path: temp.path, reason: (error as NSError).localizedDescription)
        }
        guard rename(temp.path, destination.path) == 0 else {
            throw DownloadError.local(path: destination.path, reason: errnoText())
        }
        renamed = true
        return (sha256, received)
    }
}

// MARK: - DownloadError

/// Why a `VerifiedDownload` failed; nothing was kept. Each description is one line.
public enum DownloadError: Error, CustomStringConvertible, Equatable {
    case badURL(String)
    case badHashPrefix(String)
    case unreachable(url: String, reason: String)
    case http(url: String, status: Int)
    /// The body ended (or the connection broke) before all bytes came.
    case cut(url: String, received: Int64, expected: Int64?, reason: String)
    case tooLarge(url: String, limit: Int64)
    /// The file's SHA-256 does not start with the expected prefix.
    case hashMismatch(url: String, expectedPrefix: String, actual: String)
    /// A local file could not be written or renamed.
    case local(path: String, reason: String)

    public var description: String {
        switch self {
        case .badURL(let url): return "not an http(s) URL naming a file: \(Sanitize.oneLine(url))"
        case .badHashPrefix(let text): return "the hash prefix must be 1 to 64 lowercase hex digits, got \"\(Sanitize.oneLine(text))\""
        case let .unreachable(url, reason): return "cannot download \(Sanitize.oneLine(url)): \(reason)"
        case let .http(url, status): return "cannot download \(Sanitize.oneLine(url)): HTTP \(status); nothing saved"
        case let .cut(url, received, expected, reason):
            let of = expected.map { " of \($0)" } ?? ""
            return "the download of \(Sanitize.oneLine(url)) was cut after \(received)\(of) bytes (\(reason)); nothing saved"
        case let .tooLarge(url, limit): return "\(Sanitize.oneLine(url)) is larger than \(limit) bytes; nothing saved"
        case let .hashMismatch(url, prefix, actual):
            return "\(Sanitize.oneLine(url)): sha256 \(actual) does not start with \(prefix) (corrupt or wrong file); nothing saved"
        case let .local(path, reason): return "\(path): \(reason)"
        }
    }
}
