import CoordinatorAPI
import Foundation

// MARK: - Served datasets

extension CoordinatorClient {
    /// The datasets the coordinator serves (`GET /v1/datasets`, admin), the default first.
    public func datasets() async throws -> [DatasetRef] {
        try await call(.GET, "/v1/datasets", as: [DatasetRef].self)
    }
}
