import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore

// MARK: - Dashboard sessions

/// The dashboard's logins: random session ids (256 bits), kept in memory by their SHA-256
/// with an expiry. The id in a browser's cookie is never the admin token; a restart of the
/// coordinator logs every browser out. At most `capacity` sessions live at once (the oldest
/// is dropped first).
actor SessionStore {
    /// The cookie that carries the session id.
    static let cookieName = "nst_session"

    let lifetime: TimeInterval
    let clock: any StoreClock
    let capacity: Int
    private var expiries: [String: Date] = [:]

    init(lifetime: TimeInterval, clock: any StoreClock, capacity: Int = 1_000) {
        self.lifetime = lifetime
        self.clock = clock
        self.capacity = capacity
    }

    /// A new session; returns its id (for the cookie) and when it expires.
    func create() -> (id: String, expires: Date) {
        let now = clock.now()
        expiries = expiries.filter { $0.value > now }
        while expiries.count >= capacity, let oldest = expiries.min(by: { $0.value < $1.value }) {
            expiries.removeValue(forKey: oldest.key)
        }
        var rng = SystemRandomNumberGenerator()
        let id = hexString((0..<32).map { _ in UInt8.random(in: .min ... .max, using: &rng) })
        let expires = now.addingTimeInterval(lifetime)
        expiries[Self.key(id)] = expires
        return (id, expires)
    }

    /// True if `id` is a live session.
    func isValid(_ id: String) -> Bool {
        let key = Self.key(id)
        guard let expires = expiries[key] else { return false }
        if expires <= clock.now() {
            expiries.removeValue(forKey: key)
            return false
        }
        return true
    }

    /// Ends the session (logout); unknown ids are ignored.
    func remove(_ id: String) {
        expiries.removeValue(forKey: Self.key(id))
    }

    var count: Int { expiries.count }

    private static func key(_ id: String) -> String { FileDigest.sha256(of: Data(id.utf8)) }

    // MARK: - Cookie

    /// The session id in the request's `nst_session` cookie, if any (at most 128 characters).
    nonisolated static func cookie(_ request: Request) -> String? {
        for header in request.headers[values: .cookie] {
            for pair in header.split(separator: ";") {
                let trimmed = pair.drop { $0 == " " }
                guard let eq = trimmed.firstIndex(of: "="), trimmed[..<eq] == cookieName else { continue }
                let value = trimmed[trimmed.index(after: eq)...]
                return value.count <= 128 ? String(value) : nil
            }
        }
        return nil
    }

    /// The `Set-Cookie` of a new session: HttpOnly (no script reads it), SameSite=Strict (no
    /// other site makes the browser send it), Secure when served over TLS, gone after
    /// `maxAge` seconds.
    nonisolated static func setCookie(id: String, maxAge: Int, secure: Bool) -> String {
        "\(cookieName)=\(id); Path=/; Max-Age=\(maxAge); HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }

    /// The `Set-Cookie` that removes the session cookie.
    nonisolated static func clearCookie(secure: Bool) -> String {
        "\(cookieName)=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict\(secure ? "; Secure" : "")"
    }
}
