import Hummingbird
import JobStore

// MARK: - Request context

/// The request context of every coordinator route: Hummingbird's core storage plus who sent
/// the request, as `AuthMiddleware` established it.
public struct CoordinatorContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    /// `.open` until the auth middleware runs (and on a coordinator without a token).
    var caller: Caller = .open

    public init(source: Source) {
        coreContext = .init(source: source)
    }
}

/// Who sent a request, and so what it may do.
enum Caller: Sendable, Equatable {
    /// A coordinator without a token (loopback only): every right.
    case open
    /// The admin token (`ORCHESTRATOR_TOKEN` / `--token-file`) in `Authorization: Bearer`.
    case admin
    /// A browser with a dashboard session (after `POST /login`): the admin's reads only.
    case session
    /// A worker token: lease, and report for its own leases (`WorkerScope`).
    case worker(CredentialRecord)

    /// The credential's id when a worker token, nil otherwise.
    var workerCredentialID: Int64? {
        if case .worker(let credential) = self { return credential.id }
        return nil
    }
}
