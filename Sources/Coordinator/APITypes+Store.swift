import CoordinatorAPI
import Foundation
import JobStore

// MARK: - API values from store records

extension JobStatus {
    /// The status of `job`, with its latest loss point and its loss curve's totals.
    init(job: Job, latest: LossPoint?, totals: [Double]) {
        var eta: Double?
        if job.state == .running, let ips = job.imagesPerS, ips > 0, let all = job.imagesTotal {
            eta = Double(max(0, all - job.imagesDone)) / ips
        }
        self.init(id: job.id, name: job.name, state: job.state, attempt: job.attempt, maxAttempts: job.maxAttempts,
                  step: job.step, stepsTotal: job.stepsTotal, imagesDone: job.imagesDone, imagesTotal: job.imagesTotal,
                  worker: job.leaseOwner, resumedFromStep: job.resumedFromStep,
                  content: latest?.content, style: latest?.style, total: latest?.total,
                  imagesPerS: job.state == .running ? job.imagesPerS : nil, etaS: eta,
                  recentTotals: Self.sample(totals, count: Self.recentTotalsCount), failureReason: job.failureReason,
                  modelSHA256: job.modelSHA256, previewStep: job.previewSHA256 == nil ? nil : job.previewStep,
                  createdAt: job.createdAt, updatedAt: job.updatedAt, dataset: job.config.dataset,
                  datasetSHA256: job.config.datasetSHA256, lossNetwork: job.lossNetwork,
                  group: job.config.group, params: job.config.params, stopReason: job.stopReason,
                  styleRatio: job.config.styleRatio, chosenStyleWeight: job.chosenStyleWeight,
                  initFrom: job.config.initFrom, warmStartJob: job.warmStartJobID, warmStart: job.warmStart)
    }

    /// How many total losses `recent_totals` holds at most.
    static let recentTotalsCount = 40

    /// At most `count` values taken at evenly spaced indices, first and last included
    /// (`JobStore.sampledLossPoints` makes the same choice in SQL).
    static func sample(_ values: [Double], count: Int) -> [Double] {
        guard values.count > count, count >= 2 else { return values }
        return (0..<count).map { i in values[i * (values.count - 1) / (count - 1)] }
    }
}

extension CheckpointInfo {
    init(_ record: CheckpointRecord) {
        self.init(step: record.step, imagesSeen: record.imagesSeen, sha256: record.sha256, size: record.size)
    }
}

extension EventInfo {
    init(_ event: JobEvent) {
        self.init(at: event.at, kind: event.kind.rawValue, fromState: event.fromState, toState: event.toState,
                  reason: event.reason, worker: event.worker)
    }
}
