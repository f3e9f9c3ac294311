import CoordinatorAPI
import Foundation

// MARK: - What the store asks of a config

extension JobConfig {
    /// Throws `StoreError.invalidConfig` listing every problem, if any.
    public func validate() throws {
        let found = problems()
        if !found.isEmpty {
            throw StoreError.invalidConfig(reason: "\(name): " + found.joined(separator: "; "))
        }
    }

    /// Steps of training when known from the config alone (`steps`), else nil until a worker
    /// that knows its dataset reports it.
    var plannedSteps: Int? { steps }

    /// Images of training when known from the config alone.
    var plannedImages: Int? { steps.map { $0 * batchSize } }
}
