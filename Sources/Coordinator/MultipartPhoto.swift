import Foundation
import MultipartKit
import NIOCore

// MARK: - One file from a multipart form

/// The file of a `multipart/form-data` body (RFC 7578), through MultipartKit's parser: the part
/// named `photo`, else the first part with a file name, else the first part.
enum MultipartPhoto {
    static func file(in body: ByteBuffer, contentType: String) throws -> Data {
        guard let boundary = boundary(of: contentType) else {
            throw APIError.badRequest("multipart/form-data needs a boundary parameter")
        }
        struct Part { var disposition = ""; var body = ByteBuffer() }
        var parts: [Part] = []
        var current = Part()
        let parser = MultipartParser(boundary: boundary)
        parser.onHeader = { name, value in
            if name.lowercased() == "content-disposition" { current.disposition = value }
        }
        parser.onBody = { chunk in current.body.writeBuffer(&chunk) }
        parser.onPartComplete = {
            parts.append(current)
            current = Part()
        }
        do { try parser.execute(body) } catch {
            throw APIError.badRequest("malformed multipart body: \(error)")
        }
        guard !parts.isEmpty else { throw APIError.badRequest("the multipart body has no part") }
        let chosen = parts.first { $0.disposition.contains("name=\"photo\"") }
            ?? parts.first { $0.disposition.contains("filename=") } ?? parts[0]
        return Data(buffer: chosen.body)
    }

    /// The `boundary` parameter of a Content-Type, unquoted (1–70 characters, RFC 2046).
    static func boundary(of contentType: String) -> String? {
        for parameter in contentType.split(separator: ";").dropFirst() {
            let pair = parameter.trimmingCharacters(in: .whitespaces)
            guard pair.lowercased().hasPrefix("boundary=") else { continue }
            var value = String(pair.dropFirst("boundary=".count))
            if value.hasPrefix("\""), value.hasSuffix("\""), value.count >= 2 { value = String(value.dropFirst().dropLast()) }
            return (1...70).contains(value.count) ? value : nil
        }
        return nil
    }
}
