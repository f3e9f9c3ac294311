import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - Warm starts ("init", docs/tuning.md)

extension JobDriver {
    /// The largest model a warm start downloads (a TransformerNet is about 6.7 MB).
    static let maxInitModelBytes: Int64 = 256 << 20

    /// For a fresh start of a job with `"init"`: picks the model to start from among the
    /// lease's candidates (`job:ID`: the one named; `nearest`: the one whose style image's Gram
    /// statistics are closest to this job's, computed here with `vgg`), downloads it and
    /// checks that it loads. nil when there is nothing to start from (`nearest` with no
    /// finished job: a fresh initialisation, logged).
    func warmStart(style: URL, vgg: VGG16) async -> Result<(URL, WarmStartReport)?, Setback> {
        let c = lease.config
        guard lease.checkpoint == nil, let source = c.initSource else { return .success(nil) }
        let candidates = lease.initCandidates
        // The coordinator is not trusted blindly: every candidate must make sense.
        var problems: [String] = []
        if candidates.count > InitCandidate.maxCount { problems.append("\(candidates.count) candidates, more than \(InitCandidate.maxCount)") }
        for k in candidates where !(JobConfig.isSHA256(k.styleSHA256) && JobConfig.isSHA256(k.model.sha256)
                                    && (1...Self.maxInitModelBytes).contains(k.model.size)) {
            problems.append("candidate job \(k.jobID): bad digest or model size \(k.model.size)")
        }
        if case .job(let id) = source, candidates.count != 1 || candidates.first?.jobID != id {
            problems.append("init job:\(id) needs exactly that job's model, the lease offers \(candidates.map(\.jobID))")
        }
        if !problems.isEmpty { return .failure(.rejected("the lease's warm start is refused: " + problems.joined(separator: "; "))) }
        guard !candidates.isEmpty else {
            Log.info("\(label): init nearest: no finished job to start from yet; starting from a fresh initialisation")
            return .success(nil)
        }
        var chosen = candidates[0]
        var report = WarmStartReport(jobID: chosen.jobID)
        if source == .nearest {
            // Each candidate's style image, then the Gram statistics of all at this job's style size.
            var images: [(InitCandidate, URL)] = []
            for k in candidates {
                let url = jobDir.appendingPathComponent("init-style-\(k.jobID)")
                if k.styleSHA256 == c.styleSHA256 {
                    images.append((k, style))
                    continue
                }
                if let setback = await fetch(k.styleSHA256, to: url, what: "style image of job \(k.jobID)", size: Self.maxStyleImageBytes) { return .failure(setback) }
                images.append((k, url))
            }
            let size = c.styleSize, files = images
            let (ranked, news) = await withKeepAlive {
                await Self.onThread { () -> Result<[(InitCandidate, Double)], Setback> in
                    do {
                        let own = StyleSignature(image: try RGBImage(contentsOf: style), size: size, vgg: vgg)
                        return .success(try files.map { k, url in
                            (k, own.distance(to: StyleSignature(image: try RGBImage(contentsOf: url), size: size, vgg: vgg)))
                        })
                    } catch {
                        return .failure(.refused("init nearest: a style image does not decode: \(error)"))
                    }
                }
            }
            if let news { return .failure(.stale(news)) }
            let distances: [(InitCandidate, Double)]
            switch ranked {
            case .success(let d): distances = d
            case .failure(let setback): return .failure(setback)
            }
            // The smallest distance; on a tie the newest job (the lease lists the newest first).
            guard let best = distances.enumerated().min(by: { ($0.element.1, $0.offset) < ($1.element.1, $1.offset) })?.element else {
                return .success(nil)
            }
            chosen = best.0
            report = WarmStartReport(jobID: chosen.jobID, distance: best.1.isFinite ? best.1 : nil, candidates: candidates.count)
            let list = distances.map { String(format: "%@ %.4g", Sanitize.oneLine($0.0.name, limit: 64), $0.1) }.joined(separator: ", ")
            Log.info("\(label): init nearest: Gram distances \(list)")
        }
        let model = jobDir.appendingPathComponent("init-model.safetensors")
        if let setback = await fetch(chosen.model.sha256, to: model, what: "model of job \(chosen.jobID)", size: chosen.model.size) { return .failure(setback) }
        do { _ = try TransformerNet(contentsOf: model) } catch {
            return .failure(.rejected("init: the model of job \(chosen.jobID) does not load as a TransformerNet: \(error)"))
        }
        Log.info("\(label): warm start from job \(chosen.jobID) (\(Sanitize.oneLine(chosen.name, limit: 64)))"
                 + (report.distance.map { String(format: ", Gram distance %.4g, nearest of %d", $0, candidates.count) } ?? ""))
        return .success((model, report))
    }

    /// Runs CPU-heavy `work` on its own thread (not the concurrency pool's) and returns its result.
    static func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: work()) }
            thread.stackSize = 16 << 20
            thread.start()
        }
    }
}
