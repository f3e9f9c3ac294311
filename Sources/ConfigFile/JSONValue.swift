import Foundation

// MARK: - JSONValue

/// A parsed JSON document that keeps integers apart from other numbers and booleans apart
/// from numbers, so that a config checker can say exactly what it found.
enum JSONValue: Decodable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null; return }
        if let b = try? c.decode(Bool.self) { self = .bool(b); return }
        if let i = try? c.decode(Int64.self) { self = .int(i); return }
        if let d = try? c.decode(Double.self) { self = .double(d); return }
        if let s = try? c.decode(String.self) { self = .string(s); return }
        if let a = try? c.decode([JSONValue].self) { self = .array(a); return }
        self = .object(try c.decode([String: JSONValue].self))
    }

    /// What the value is, for messages: `the string "x"`, `-3`, `an array`…
    var shown: String {
        switch self {
        case .null: return "null"
        case .bool(let b): return "\(b)"
        case .int(let i): return "\(i)"
        case .double(let d): return "\(d)"
        case .string(let s): return "\"\(s.prefix(60))\""
        case .array: return "an array"
        case .object: return "an object"
        }
    }

    /// The value as an integer, if it is one (a whole number written as `8.0` counts).
    var integer: Int64? {
        switch self {
        case .int(let i): return i
        case .double(let d) where d.rounded() == d && abs(d) < 9.0e18: return Int64(d)
        default: return nil
        }
    }

    /// The value as a number, if it is one.
    var number: Double? {
        switch self {
        case .int(let i): return Double(i)
        case .double(let d): return d
        default: return nil
        }
    }

    // MARK: - Parsing

    /// Parses `data`, or explains where it is malformed (`line L, column C: reason`).
    static func parse(_ data: Data) -> Result<JSONValue, JSONSyntaxError> {
        if let value = try? JSONDecoder().decode(JSONValue.self, from: data) { return .success(value) }
        return .failure(syntaxError(in: data))
    }

    /// Locates a syntax error with Foundation's parser, which reports a character offset.
    static func syntaxError(in data: Data) -> JSONSyntaxError {
        if data.allSatisfy({ $0 == 0x20 || $0 == 0x0a || $0 == 0x0d || $0 == 0x09 }) {
            return JSONSyntaxError(line: nil, column: nil, reason: "the file is empty")
        }
        do {
            _ = try JSONSerialization.jsonObject(with: data, options: [.fragmentsAllowed])
            return JSONSyntaxError(line: nil, column: nil, reason: "not valid JSON")
        } catch {
            let text = ((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String)
                ?? (error as NSError).localizedDescription
            guard let range = text.range(of: #"around (line \d+, column \d+|character \d+)"#, options: .regularExpression) else {
                return JSONSyntaxError(line: nil, column: nil, reason: text)
            }
            let reason = text[..<range.lowerBound].trimmingCharacters(in: .whitespaces).lowercased()
            let digits = text[range].split(whereSeparator: { !$0.isNumber }).compactMap { Int($0) }
            if digits.count == 2 {
                return JSONSyntaxError(line: digits[0], column: digits[1], reason: reason)
            }
            let (line, column) = position(ofByte: digits.first ?? 0, in: data)
            return JSONSyntaxError(line: line, column: column, reason: reason)
        }
    }

    /// 1-based line and column of the byte at `offset`.
    static func position(ofByte offset: Int, in data: Data) -> (Int, Int) {
        var line = 1, column = 1
        for (i, byte) in data.enumerated() {
            if i >= offset { break }
            if byte == 0x0a {
                line += 1
                column = 1
            } else if byte & 0xC0 != 0x80 {  // count characters, not UTF-8 continuation bytes
                column += 1
            }
        }
        return (line, column)
    }
}

/// Where and why a JSON text is malformed.
struct JSONSyntaxError: Error, CustomStringConvertible {
    var line: Int?
    var column: Int?
    var reason: String

    var description: String {
        if let line, let column { return "malformed JSON at line \(line), column \(column): \(reason)" }
        return "malformed JSON: \(reason)"
    }
}
