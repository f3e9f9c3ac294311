import APIClient
import CoordinatorAPI
import Foundation

// MARK: - Training under a lease

extension JobDriver {
    /// Watches the training thread: heartbeats every `heartbeatInterval`, uploads checkpoints as
    /// they appear, obeys cancel / stale lease / signals, and ends the job when training ends.
    func supervise() async -> JobEnd {
        var askedForCheckpoint = false
        while true {
            if context.signals.isRequested && !askedForCheckpoint {
                stopTraining(.checkpointAndStop)
                askedForCheckpoint = true
            }
            let outcome = run.outcome
            if monotonicSeconds() >= retryAt, let end = await uploadPendingCheckpoint() { return end }
            if outcome == nil, monotonicSeconds() >= retryAt,
               monotonicSeconds() - lastHeartbeat >= heartbeatInterval,
               let end = await heartbeat() {
                return end
            }
            logProgressIfDue()
            if let outcome { return await finish(outcome) }
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
    }

    /// Sends progress and the unsent loss points; returns the job's end if the answer ends it.
    func heartbeat() async -> JobEnd? {
        let p = run.progress
        let points = run.unsentLosses(limit: 5_000)
        let validation = run.unsentValidation()
        lastHeartbeat = monotonicSeconds()
        let request = HeartbeatRequest(token: lease.token, step: p.step, imagesDone: p.images,
                                       imagesPerS: p.imagesPerS, stepsTotal: p.stepsTotal,
                                       imagesTotal: p.imagesTotal, lossPoints: points, lossNetwork: lossNetworkName,
                                       validation: validation, styleWeight: p.styleWeight,
                                       warmStart: warmStartAcknowledged ? nil : warmStartReport)
        switch await call("heartbeat", { try await client.heartbeat(jobID: jobID, request) }) {
        case .ok(.continue):
            if request.warmStart != nil { warmStartAcknowledged = true }
            run.acknowledgeLosses(points.count)
            run.acknowledgeValidation(validation.count)
            return nil
        case .ok(.cancel): return await abandon("cancelled")
        case .retryLater: return nil
        case .stale(let why): return await abandon("stale lease: \(why)")
        case .refused(let why): return await abandon(why)
        }
    }

    /// Uploads the newest local checkpoint, after making sure the coordinator holds every loss
    /// point up to its step (a resume from it must find the curve complete up to there).
    func uploadPendingCheckpoint() async -> JobEnd? {
        guard let ck = run.latestCheckpoint() else { return nil }
        if let first = run.unsentLosses(limit: 1).first, first.step <= ck.step {
            if let end = await heartbeat() { return end }
            if let first = run.unsentLosses(limit: 1).first, first.step <= ck.step { return nil }
        }
        let (result, news) = await withKeepAlive {
            await self.call("checkpoint upload") {
                try await self.client.uploadCheckpoint(jobID: self.jobID, token: self.lease.token, step: ck.step,
                                                       imagesSeen: ck.imagesSeen, file: ck.url)
            }
        }
        if let news { return await abandon(news) }
        switch result {
        case .ok:
            run.checkpointUploaded(ck)
            Log.info("job \(jobID): checkpoint step \(ck.step) uploaded")
            if let preview = ck.preview {
                let (_, news) = await withKeepAlive { await self.uploadPreview(preview, step: ck.step) }
                if let news { return await abandon(news) }
            }
        case .retryLater: break
        case .stale(let why): return await abandon("stale lease: \(why)")
        case .refused(let why):
            Log.info("job \(jobID): checkpoint step \(ck.step) refused, training on: \(why)")
            run.checkpointUploaded(ck)
        }
        return nil
    }

    /// One attempt to upload a preview PNG (best effort: a preview is never worth a retry loop).
    func uploadPreview(_ file: URL, step: Int) async {
        do {
            try await client.uploadPreview(jobID: jobID, token: lease.token, step: step, file: file)
        } catch {
            Log.info("job \(jobID): preview for step \(step) not uploaded: \(error)")
        }
        try? FileManager.default.removeItem(at: file)
    }

    /// Asks the training thread to stop after its current step, and stops fetching shards (a
    /// step waiting for one then ends at once, uncounted).
    func stopTraining(_ mode: TrainingRun.StopMode) {
        run.requestStop(mode)
        fetcher?.stop()
    }

    /// Stops the training thread after its current step and reports nothing more.
    func abandon(_ reason: String) async -> JobEnd {
        stopTraining(.abandon)
        _ = await run.waitForEnd()
        return dropped(reason)
    }

    // MARK: - Ending the job

    func finish(_ outcome: TrainingOutcome) async -> JobEnd {
        switch outcome {
        case let .finished(model, preview, step, bestStep):
            // Training is over, so the supervise loop sends no more heartbeats: every transfer
            // from here on runs beside a keep-alive.
            // The final checkpoint (weights and Adam state, for `promote`) goes first.
            while run.latestCheckpoint() != nil {
                if givingUp { return dropped("shutting down with the coordinator unreachable") }
                await waitForRetry()
                if let end = await uploadPendingCheckpoint() { return end }
            }
            if let preview {
                let (_, news) = await withKeepAlive { await self.uploadPreview(preview, step: step) }
                if let news { return dropped(news) }
            }
            return await complete(model: model, bestStep: bestStep)
        case let .failed(reason, retryable):
            Log.info("\(label): training failed: \(reason)")
            return await reportFailure(reason: reason, retryable: retryable)
        case .stopped: return await handBack()
        }
    }

    /// Uploads the model, then `complete` with the last loss points.
    private func complete(model: URL, bestStep: Int?) async -> JobEnd {
        var modelSHA: String?
        var refusals = 0
        while true {
            if givingUp { return dropped("shutting down with the coordinator unreachable") }
            await waitForRetry()
            if modelSHA == nil {
                let (uploaded, news) = await withKeepAlive {
                    await self.call("model upload") {
                        try await self.client.uploadModel(jobID: self.jobID, token: self.lease.token, file: model)
                    }
                }
                if let news { return dropped(news) }
                switch uploaded {
                case .ok(let sha): modelSHA = sha
                case .retryLater: continue
                case .stale(let why): return dropped("stale lease: \(why)")
                case .refused(let why):
                    refusals += 1
                    if refusals >= 3 { return await reportFailure(reason: why, retryable: true) }
                    Log.info("\(label): \(why); retrying")
                    continue
                }
            }
            guard let sha = modelSHA else { continue }
            if run.unsentCount > 5_000 {  // a long outage: send the backlog in heartbeat-sized parts first
                if let end = await heartbeat() { return end }
                continue
            }
            let p = run.progress
            let points = run.unsentLosses(limit: Int.max)
            let validation = run.unsentValidation()
            let result = await call("complete") {
                try await client.complete(jobID: jobID, token: lease.token, modelSHA256: sha,
                                          step: p.step, imagesDone: p.images, lossPoints: points,
                                          validation: validation, bestStep: bestStep)
            }
            switch result {
            case .ok:
                run.acknowledgeLosses(points.count)
                run.acknowledgeValidation(validation.count)
                Log.info("\(label) completed: \(p.step) steps, \(p.images) images, model sha256 \(sha.prefix(12))")
                return .completed
            case .retryLater: continue
            case .stale(let why): return dropped("stale lease: \(why)")
            case .refused(let why): return await reportFailure(reason: why, retryable: true)
            }
        }
    }

    /// `fail` with the reason; retried while the coordinator is unreachable.
    func reportFailure(reason: String, retryable: Bool) async -> JobEnd {
        while true {
            if givingUp { return dropped("shutting down with the coordinator unreachable") }
            await waitForRetry()
            let result = await call("fail") {
                try await client.fail(jobID: jobID, token: lease.token, reason: reason, retryable: retryable)
            }
            switch result {
            case .ok:
                Log.info("\(label) reported failed (\(retryable ? "retryable" : "not retryable")): \(reason)")
                return .failed(reason, retryable: retryable)
            case .retryLater: continue
            case .stale(let why): return dropped("stale lease: \(why)")
            case .refused(let why): return dropped(why)
            }
        }
    }

    /// Releases a job this worker cannot train at all (no attempt is used up); `.unfit`.
    func handBackUnfit(_ why: String) async -> JobEnd {
        while true {
            if givingUp { return dropped("shutting down with the coordinator unreachable") }
            await waitForRetry()
            let result = await call("release") {
                try await client.release(jobID: jobID, token: lease.token, reason: "worker \(context.name) cannot train: \(why)")
            }
            switch result {
            case .ok, .stale, .refused: return .unfit(why)
            case .retryLater: continue
            }
        }
    }

    /// Graceful shutdown: upload the last checkpoint, then `release` the job.
    private func handBack() async -> JobEnd {
        while true {
            if givingUp { return dropped("shutting down with the coordinator unreachable") }
            await waitForRetry()
            if let end = await uploadPendingCheckpoint() { return end }
            if run.latestCheckpoint() != nil { continue }
            let step = run.progress.step
            let result = await call("release") {
                try await client.release(jobID: jobID, token: lease.token,
                                         reason: "worker \(context.name) shutting down at step \(step)")
            }
            switch result {
            case .ok:
                Log.info("\(label) released at step \(step)")
                return .released
            case .retryLater: continue
            case .stale(let why): return dropped("stale lease: \(why)")
            case .refused(let why): return dropped(why)
            }
        }
    }

    /// After a signal, the hand-back gets 30 s before the worker gives up on the coordinator.
    var givingUp: Bool {
        guard let since = context.signals.requestedAt else { return false }
        return monotonicSeconds() - since > 30
    }

    // MARK: - Progress line

    func logProgressIfDue() {
        let now = monotonicSeconds()
        guard now - lastProgressLog >= 10 else { return }
        lastProgressLog = now
        let p = run.progress
        var line = "\(label): step \(p.step)"
        if let total = p.stepsTotal, total > 0 {
            line += "/\(total) (\(100 * p.step / total)%)"
        }
        if let rate = p.imagesPerS { line += String(format: ", %.1f img/s", rate) }
        if let l = p.latest { line += ", content \(short(l.content)) style \(short(l.style))" }
        let unsent = run.unsentCount
        if unsent > 0 { line += ", \(unsent) loss points unsent" }
        Log.info(line)
    }
}
