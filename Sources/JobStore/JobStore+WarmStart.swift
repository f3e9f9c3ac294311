import CoordinatorAPI
import Foundation
import GRDB

// MARK: - Warm starts and auto style weights (issue 14)

extension JobStore {
    /// The longest `warmStart` text a job records.
    static let maxWarmStartText = 200

    /// The finished models a fresh start of `job` may begin from (`"init"`):
    /// - `job:ID`: that job, when it succeeded with a model (else none);
    /// - `nearest`: the job an earlier attempt chose, if it still has its model; otherwise the
    ///   newest succeeded job with a model for each style image, this job excluded, newest
    ///   first, at most `InitCandidate.maxCount`.
    static func initCandidates(_ db: Database, for job: Job) throws -> [InitCandidate] {
        func candidate(_ j: Job) -> InitCandidate? {
            guard j.state == .succeeded, j.id != job.id, let sha = j.modelSHA256, let size = j.modelSize else { return nil }
            return InitCandidate(jobID: j.id, name: j.name, styleSHA256: j.config.styleSHA256, styleSize: j.config.styleSize,
                                 model: WeightsInfo(sha256: sha, size: size))
        }
        switch job.config.initSource {
        case nil:
            return []
        case .job(let id)?:
            return try Job.fetchOne(db, key: id).flatMap(candidate).map { [$0] } ?? []
        case .nearest?:
            if let chosen = job.warmStartJobID, let c = try Job.fetchOne(db, key: chosen).flatMap(candidate) { return [c] }
            var seen = Set<String>()
            var out: [InitCandidate] = []
            let finished = try Job.filter(Job.Columns.state == JobState.succeeded)
                .filter(Column("model_sha256") != nil).order(Job.Columns.id.desc).fetchAll(db)
            for j in finished where out.count < InitCandidate.maxCount {
                guard let c = candidate(j), seen.insert(c.styleSHA256).inserted else { continue }
                out.append(c)
            }
            return out
        }
    }

    /// Why `config`'s `"init"` cannot be submitted, or nil: `job:ID` must name a job that
    /// succeeded with a model (`nearest` may find none: the job then starts fresh).
    static func initProblem(_ db: Database, _ config: JobConfig) throws -> String? {
        guard case .job(let id)? = config.initSource else { return nil }
        guard let source = try Job.fetchOne(db, key: id) else { return "init: there is no job \(id)" }
        guard source.state == .succeeded, source.modelSHA256 != nil else {
            return "init: job \(id) (\(source.name)) has no model to start from (it is \(source.state.rawValue))"
        }
        return nil
    }

    /// Checks and applies a heartbeat's auto style weight and warm start to `job` (inside the
    /// heartbeat's transaction); the refusal names the problem.
    static func applyTrainingChoices(_ db: Database, styleWeight: Double?, warmStart: WarmStartReport?,
                                     to job: inout Job) throws -> StoreError? {
        if let w = styleWeight {
            guard job.config.styleRatio != nil else {
                return .invalidReport(jobID: job.id, reason: "style_weight: job \(job.id) does not choose its style weight (\"style_weight\": \"auto\")")
            }
            guard w.isFinite, w > 0, w <= 1e30 else {
                return .invalidReport(jobID: job.id, reason: "style_weight must be a positive number at most 1e30, got \(w)")
            }
            job.chosenStyleWeight = w
        }
        if let warm = warmStart {
            guard job.config.initSource != nil else {
                return .invalidReport(jobID: job.id, reason: "warm_start: job \(job.id) has no \"init\"")
            }
            if let d = warm.distance, !(d.isFinite && d >= 0) {
                return .invalidReport(jobID: job.id, reason: "warm_start.distance must be a non-negative number, got \(d)")
            }
            if let n = warm.candidates, !(1...InitCandidate.maxCount).contains(n) {
                return .invalidReport(jobID: job.id, reason: "warm_start.candidates must be from 1 to \(InitCandidate.maxCount), got \(n)")
            }
            // Only a model a lease of this job could offer: the named job, or (nearest) any
            // finished job with a model — the newest of its style when leased, perhaps not now.
            let source = try Job.fetchOne(db, key: warm.jobID)
            let allowed: Bool
            switch job.config.initSource {
            case .job(let id)?: allowed = warm.jobID == id
            default: allowed = warm.jobID != job.id
            }
            guard allowed, let source, source.state == .succeeded, source.modelSHA256 != nil else {
                return .invalidReport(jobID: job.id, reason: "warm_start: job \(warm.jobID) is not a model job \(job.id) may start from")
            }
            var text = "job \(source.id) (\(source.name))"
            if let d = warm.distance {
                text += String(format: ": Gram distance %.4g", d) + (warm.candidates.map { ", nearest of \($0)" } ?? "")
            }
            job.warmStartJobID = warm.jobID
            job.warmStart = Sanitize.oneLine(text, limit: maxWarmStartText)
        }
        return nil
    }
}
