import ArgumentParser
import Foundation
import NSTModel

struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time training steps and inference on random data (compare with torch_reference.py bench).")

    @Option(name: .customLong("image-size")) var imageSize = 256
    @Option(name: .customLong("batch-size")) var batchSize = 4
    @Option var steps = 3
    @Option var threads = 2
    @Option(help: "Side of the square image timed for inference.") var infer = 1024
    @Flag(help: "Print one JSON object with the same keys as torch_reference.py bench.") var json = false
    @Flag(help: "Print the per-layer time table.") var layers = false
    @Flag(name: .customLong("no-winograd"), help: "Run every convolution through im2col + sgemm (for comparison).") var noWinograd = false

    func run() throws {
        Threads.reexecWithShortBLASSpin()
        Threads.configure(threads)
        Winograd.enabled = !noWinograd
        var rng = SplitMix64(seed: 0)
        let randomImages = { (n: Int, s: Int) -> Tensor in
            let t = Tensor(shape: [n, 3, s, s])
            for i in 0..<t.count { t.data[i] = Float(rng.unit() * 255) }
            return t
        }
        let (times, table, flops) = trainSteps(randomImages)
        let median = times[times.count / 2]

        // Like the reference, inference runs after training, with the training buffers freed.
        let img = randomImages(1, infer)
        let inferNet = TransformerNet(seed: 0)
        _ = inferNet.infer(img)
        Profiler.reset()
        Profiler.enabled = layers
        let t0 = DispatchTime.now().uptimeNanoseconds
        _ = inferNet.infer(img)
        let inferS = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
        Profiler.enabled = false
        let inferTable = Profiler.report

        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let peak = Double(usage.ru_maxrss) / Double(1 << 20)  // KiB → GiB
        if json {
            let obj: [String: Any] = [
                "train_step_s_median": median, "train_step_s_min": times[0],
                "images_per_s": Double(batchSize) / median, "infer_s": inferS, "infer_px": infer,
                "threads": threads, "size": imageSize, "batch": batchSize, "peak_rss_gib": peak,
                "gflop_per_step": flops / 1e9, "gflops": flops / median / 1e9,
                "layers": Dictionary(uniqueKeysWithValues: table.map { ($0.0, $0.1) }),
                "impl": "swift-nstmodel", "winograd": Winograd.enabled,
                // Set by the re-execution at start-up (Threads.reexecWithShortBLASSpin) unless the user set it.
                "blas_thread_timeout": ProcessInfo.processInfo.environment["OPENBLAS_THREAD_TIMEOUT"] ?? NSNull(),
            ]
            let data = try JSONSerialization.data(withJSONObject: obj, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
        } else {
            print(String(format: "train step: median %.3f s, min %.3f s, %.2f images/s, %.1f GFLOP/step, %.1f GFLOP/s",
                         median, times[0], Double(batchSize) / median, flops / 1e9, flops / median / 1e9))
            print(String(format: "inference %dx%d: %.3f s;  peak RSS %.2f GiB;  threads %d", infer, infer, inferS, peak, threads))
        }
        if layers || !json {
            let total = table.reduce(0) { $0 + $1.1 }
            print("stage                          ms/step    share")
            for (label, s) in table {
                print(label.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: "%10.1f   %5.1f%%", s * 1000, 100 * s / total))
            }
            print(String(format: "%@%10.1f   (rest of the step: loss, Adam, data)", "total".padding(toLength: 28, withPad: " ", startingAt: 0), total * 1000))
            if layers {
                print("inference \(infer)×\(infer)              ms")
                for (label, s) in inferTable {
                    print(label.padding(toLength: 28, withPad: " ", startingAt: 0) + String(format: "%10.1f", s * 1000))
                }
            }
        }
    }

    /// Times `steps` training steps after one warm-up step; returns the sorted step times, the
    /// per-stage table (seconds per step) and the step's operation count.
    func trainSteps(_ randomImages: (Int, Int) -> Tensor) -> ([Double], [(String, Double)], Double) {
        let net = TransformerNet(seed: 0)
        let loss = PerceptualLoss(vgg: VGG16(randomSeed: 0))
        loss.setStyle(randomImages(1, imageSize))
        let trainer = Trainer(net: net, loss: loss, lr: 1e-3)
        var times: [Double] = []
        Profiler.reset()
        for i in 0...steps {
            let x = randomImages(batchSize, imageSize)
            Profiler.enabled = i > 0
            let t0 = DispatchTime.now().uptimeNanoseconds
            trainer.step(x)
            if i > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9) }
        }
        Profiler.enabled = false
        let table = Profiler.report.map { ($0.label, $0.seconds / Double(steps)) }
        return (times.sorted(), table, stepFlops(net: net, batch: batchSize, size: imageSize))
    }

    /// Operations of one training step as this implementation runs it: TransformerNet forward,
    /// weight and input gradients (none for the first layer's input); VGG16 on y forward and input
    /// gradient; VGG16 on x forward up to relu2_2 only.
    func stepFlops(net: TransformerNet, batch: Int, size: Int) -> Double {
        var total = 0.0
        var d = Dims4(batch, 3, size, size)
        for (i, layer) in net.convLayers.enumerated() {
            if layer.upsample { d = Dims4(d.n, d.c, 2 * d.h, 2 * d.w) }
            let p = layer.spec.k / 2
            let padded = Dims4(d.n, d.c, d.h + 2 * p, d.w + 2 * p)
            let f = layer.spec.flops(padded)
            total += f * (i == 0 ? 2 : 3)
            d = layer.spec.output(padded)
        }
        let vggSpecs: [(Int, Int, Bool)] = [(3, 64, false), (64, 64, true), (64, 128, false), (128, 128, true),
                                            (128, 256, false), (256, 256, false), (256, 256, true),
                                            (256, 512, false), (512, 512, false), (512, 512, false)]
        var v = Dims4(batch, 3, size, size)
        for (i, (cin, cout, pool)) in vggSpecs.enumerated() {
            let spec = ConvSpec(cin: cin, cout: cout, k: 3, stride: 1, pad: 1)
            let f = spec.flops(v)
            total += 2 * f                 // y: forward + input gradient
            if i < 4 { total += f }        // x: forward to relu2_2
            v = spec.output(v)
            if pool { v = Dims4(v.n, v.c, v.h / 2, v.w / 2) }
        }
        return total
    }
}
