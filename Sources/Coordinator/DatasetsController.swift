import CoordinatorAPI
import Foundation
import Hummingbird
import JobStore

// MARK: - /v1/datasets (admin)

/// `GET /v1/datasets`: the datasets this coordinator serves (`serve --dataset NAME=DIR`), the
/// default first, each as a `DatasetRef` naming its current manifest. The admin's (worker
/// tokens are refused by `WorkerScope`: they learn their job's dataset from its lease).
struct DatasetsController: Sendable {
    let core: CoordinatorCore

    func addRoutes(to group: RouterGroup<CoordinatorContext>) {
        group.get(use: list)
    }

    @Sendable func list(_ request: Request, context: CoordinatorContext) async throws -> Response {
        try json(try await core.store.servedDatasets().map(\.ref))
    }
}
