import Foundation
import NSTModel

/// How big a demo this machine can train in its time budget: the demo times a few training
/// steps at each candidate image size (on the threads one worker will have) and picks the
/// largest size that still gets enough steps per style, then as many steps as fit.
struct DemoPlan: Equatable {
    var imageSize: Int
    var steps: Int
    /// The measured seconds per training step at `imageSize` (one worker's threads).
    var stepSeconds: Double
    /// The training time the plan expects (wall clock, all workers together).
    var expectedTrainingSeconds: Double

    /// Seconds of a demo that are not training steps: coordinator start, uploads, model
    /// loading on each job, fetching and the contact sheet.
    static let fixedSeconds = 15.0
    static let perJobSeconds = 2.0
    /// The measure runs every worker's trainer at once; the coordinator, the status table and
    /// the uploads still take a share of the machine: the measured step time is scaled by this.
    static let contention = 1.05
    /// Fewer steps than this and the pictures show little; below it a smaller size is tried.
    static let minimumSteps = 80
    static let maximumSteps = 400
    static let sizes = [64, 48, 32]

    /// The plan for `jobs` styles on `workers` workers within `budget` seconds, given the
    /// measured step time of each candidate size (`stepSeconds(size)`). `fixedSize` or
    /// `fixedSteps` (the user's `--image-size` / `--steps`) are kept as given.
    static func choose(jobs: Int, workers: Int, budget: Double, fixedSize: Int?, fixedSteps: Int?,
                       stepSeconds: (Int) throws -> Double) rethrows -> DemoPlan {
        let rounds = Double((jobs + workers - 1) / max(workers, 1))  // jobs each worker trains, at most
        let trainingBudget = max(10, budget - fixedSeconds - rounds * perJobSeconds)
        func steps(at seconds: Double) -> Int {
            Int((trainingBudget / (rounds * seconds * contention)).rounded(.down))
        }
        let candidates = fixedSize.map { [$0] } ?? sizes
        var plan: DemoPlan?
        for size in candidates {
            let t = try stepSeconds(size)
            let n = fixedSteps ?? min(maximumSteps, max(1, steps(at: t)))
            plan = DemoPlan(imageSize: size, steps: n, stepSeconds: t,
                            expectedTrainingSeconds: rounds * Double(n) * t * contention)
            if fixedSteps != nil || n >= minimumSteps { break }
        }
        return plan!
    }

    /// Seconds per training step of `batch` images of `size`² with `workers` trainers running at
    /// once, each on `threads` threads, as the demo's workers will: the slowest trainer's median
    /// of three steps after a warm-up (so the measure includes what the workers cost each other,
    /// and whatever else the machine is doing). A seeded random VGG16 and random images: the real
    /// weights cost the same.
    static func measureStep(size: Int, batch: Int, styleSize: Int, threads: Int, workers: Int) -> Double {
        Threads.configure(threads)
        final class Result: @unchecked Sendable { var seconds: [Double] = [] ; let lock = NSLock() }
        let result = Result()
        let done = DispatchGroup()
        for w in 0..<max(1, workers) {
            done.enter()
            let thread = Thread {
                let t = Self.trainerStepSeconds(size: size, batch: batch, styleSize: styleSize, seed: UInt64(w))
                result.lock.withLock { result.seconds.append(t) }
                done.leave()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        done.wait()
        return result.seconds.max() ?? .infinity
    }

    private static func trainerStepSeconds(size: Int, batch: Int, styleSize: Int, seed: UInt64) -> Double {
        var rng = SplitMix64(seed: 1 + seed)
        func images(_ n: Int, _ s: Int) -> Tensor {
            let t = Tensor(shape: [n, 3, s, s])
            for i in 0..<t.count { t.data[i] = Float(rng.unit() * 255) }
            return t
        }
        let loss = PerceptualLoss(vgg: VGG16(randomSeed: 0))
        loss.setStyle(images(1, styleSize))
        let trainer = Trainer(net: TransformerNet(seed: 0), loss: loss, lr: 1e-3)
        let x = images(batch, size)
        var times: [Double] = []
        for i in 0...3 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            trainer.step(x)
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        }
        return times.sorted()[times.count / 2]
    }
}
