import Foundation

// MARK: - Free text from the other end

/// Free text that crossed the network (a failure reason, a host name, a job name in a message)
/// is bounded and shown on one line with every control character escaped, so that it can
/// neither flood a log nor move an operator's terminal cursor, clear the screen or forge lines.
public enum Sanitize {
    /// The longest free-text field kept (UTF-8 bytes).
    public static let maxFreeText = 1024

    /// `text` with control characters (C0, DEL, C1, and the Unicode line, paragraph and bidi
    /// controls) written as `\u{1B}`, cut to at most `limit` UTF-8 bytes at a character
    /// boundary, `…` marking a cut.
    public static func oneLine(_ text: String, limit: Int = maxFreeText) -> String {
        var out = ""
        var bytes = 0
        for scalar in text.unicodeScalars {
            let piece = isControl(scalar) ? "\\u{\(String(scalar.value, radix: 16, uppercase: true))}" : String(scalar)
            let n = piece.utf8.count
            if bytes + n > limit {
                out += "…"
                break
            }
            out += piece
            bytes += n
        }
        return out
    }

    /// True for scalars that a terminal or a log reader would act on rather than show.
    public static func isControl(_ s: Unicode.Scalar) -> Bool {
        switch s.value {
        case 0x00...0x1F, 0x7F...0x9F: return true
        case 0x2028, 0x2029: return true                                  // line and paragraph separators
        case 0x200E, 0x200F, 0x202A...0x202E, 0x2066...0x2069: return true  // bidi controls
        default: return false
        }
    }

    /// True if `text` is at most `limit` bytes and has no control characters: safe as it is.
    public static func isClean(_ text: String, limit: Int = maxFreeText) -> Bool {
        text.utf8.count <= limit && !text.unicodeScalars.contains(where: isControl)
    }
}

// MARK: - Numbers from the other end

extension Int {
    /// `value` rounded toward zero and clamped to `Int`'s range (0 for NaN): a number that
    /// came from the network or the store never traps a conversion.
    public init(clamping value: Double) {
        if value.isNaN { self = 0 }
        else if value >= 9.223372036854775e18 { self = .max }
        else if value <= -9.223372036854775e18 { self = .min }
        else { self = Int(value) }
    }
}
