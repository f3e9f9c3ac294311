import CoordinatorAPI
import Foundation
import NSTModel

/// The training thread's side of validation and early stopping for one job (issue 14): it
/// evaluates the held-out images at each checkpoint and at the end, feeds the weighted totals
/// to `EarlyStopping` (seeded with the points of earlier attempts), and keeps the best weights
/// on disk so that an early-stopped job's model is its best checkpoint's.
struct ValidationTracker {
    private(set) var rule: EarlyStopping?
    /// Where the weights of `rule.best` are: a file written here, or the best checkpoint of an
    /// earlier attempt (downloaded before training).
    private(set) var bestWeights: (step: Int, url: URL)?
    let bestFile: URL

    init(setup: TrainingSetup, resumeStep: Int) {
        bestFile = setup.workDir.appendingPathComponent("best.safetensors")
        guard let e = setup.earlyStop, setup.options.validationImages > 0 else { return }
        // Points past the resume step were measured by an attempt whose later steps are retrained.
        let history = setup.validationHistory.filter { $0.step <= resumeStep }
            .map { EarlyStopping.Point(step: $0.step, total: $0.total) }
        rule = EarlyStopping(patience: e.patience, minDelta: e.minDelta, history: history)
        if let w = setup.bestWeights, w.step == rule?.best?.step { bestWeights = w }
    }

    /// Evaluates the network at step `step`; returns the point to report (nil without validation
    /// images) and whether early stopping says to stop.
    mutating func evaluate(_ session: TrainingSession, step: Int) throws -> (point: ValidationPoint, stop: Bool)? {
        guard let v = try session.validate() else { return nil }
        let point = ValidationPoint(step: step, content: v.content, style: v.style,
                                    contentWeighted: v.contentWeighted, styleWeighted: v.styleWeighted)
        guard var rule else { return (point, false) }
        if rule.record(EarlyStopping.Point(step: step, total: v.total)) {
            try session.trainer.net.save(to: bestFile)
            bestWeights = (step, bestFile)
        }
        self.rule = rule
        return (point, rule.shouldStop)
    }

    /// Writes the best weights as the model at `url` and returns their step; the current network
    /// (at `step`) when the best weights are not at hand (an earlier attempt's best checkpoint
    /// that is no longer stored).
    func writeBestModel(_ session: TrainingSession, step: Int, to url: URL) throws -> Int {
        guard let best = rule?.best, let w = bestWeights, w.step == best.step, w.step != step else {
            try session.trainer.net.save(to: url)
            return step
        }
        // A model file or a checkpoint: only the network's tensors are read.
        try TransformerNet(contentsOf: w.url).save(to: url)
        return w.step
    }
}
