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
}
