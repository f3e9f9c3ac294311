import Foundation
import HTTPTypes

// MARK: - Store usage (the quota)

/// The bytes the artifact store holds, and the bytes that uploads in progress have reserved,
/// for `StoragePolicy.maxStoreBytes`. An upload reserves its Content-Length before it writes a
/// byte (so concurrent uploads can never jointly pass the quota), and on success turns the
/// reservation into stored bytes (none when the file was already there). Counted by scanning
/// `artifacts/` at start and after each garbage collection, which also corrects for files
/// another process (`orchestrator gc`) deleted. Thread-safe.
final class StoreUsage: Sendable {
    private struct State {
        var stored: Int64 = 0
        var reservations: [UInt64: Int64] = [:]
        var nextID: UInt64 = 0
        var reserved: Int64 { reservations.values.reduce(0, +) }
    }

    private let state = Locked(State())

    /// A claim on `bytes` of the quota, released or committed exactly once.
    struct Reservation: Sendable {
        fileprivate let id: UInt64
        let bytes: Int64
    }

    /// Bytes stored, and bytes reserved by uploads in progress.
    var current: (stored: Int64, reserved: Int64) {
        state.withLockedValue { ($0.stored, $0.reserved) }
    }

    /// Reserves `bytes` for an upload of `kind`, or throws a 507 when the store would then hold
    /// more than `quota` (nil: no quota).
    func reserve(_ bytes: Int64, quota: Int64?, kind: UploadKind) throws -> Reservation {
        try state.withLockedValue { s in
            if let quota {
                let (held, o1) = s.stored.addingReportingOverflow(s.reserved)
                let (after, o2) = held.addingReportingOverflow(bytes)
                if o1 || o2 || after > quota {
                    throw APIError(.insufficientStorage, """
                        the artifact store is full: this \(kind.singular) of \(bytes) bytes would take it past its quota of \
                        \(quota) bytes (\(s.stored) stored, \(s.reserved) reserved by uploads in progress); \
                        run `orchestrator gc` or raise `serve --max-store-bytes`
                        """)
                }
            }
            let id = s.nextID
            s.nextID += 1
            s.reservations[id] = bytes
            return Reservation(id: id, bytes: bytes)
        }
    }

    /// Gives the reservation back (a refused or failed upload). Does nothing the second time.
    func release(_ reservation: Reservation) {
        state.withLockedValue { _ = $0.reservations.removeValue(forKey: reservation.id) }
    }

    /// Ends the reservation of a stored upload that added `bytes` to the store.
    func commit(_ reservation: Reservation, added bytes: Int64) {
        state.withLockedValue { s in
            if s.reservations.removeValue(forKey: reservation.id) != nil { s.stored += bytes }
        }
    }

    /// `bytes` were deleted from the store.
    func removed(_ bytes: Int64) {
        state.withLockedValue { $0.stored = max(0, $0.stored - bytes) }
    }

    /// Sets the stored bytes to what a scan of the store found.
    func recount(stored bytes: Int64) {
        state.withLockedValue { $0.stored = bytes }
    }
}

extension UploadKind {
    /// How a message names one upload of this kind.
    var singular: String {
        switch self {
        case .checkpoint: return "checkpoint"
        case .model: return "model"
        case .preview: return "preview"
        case .artifact: return "artifact"
        }
    }
}

extension HTTPResponse.Status {
    /// 507 Insufficient Storage (RFC 4918): the store's quota or its disk is full.
    static var insufficientStorage: Self { .init(code: 507, reasonPhrase: "Insufficient Storage") }
}
