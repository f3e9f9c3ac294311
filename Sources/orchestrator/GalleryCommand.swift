import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation
import NSTModel

// MARK: - gallery

/// `orchestrator gallery GROUP --out FILE.png`: a sweep's trials in one picture, their latest
/// previews side by side and the trade-off of their latest validation losses below (issue 14,
/// part 4; the dashboard shows the same as HTML).
struct Gallery: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write one PNG of a sweep: every trial's latest preview, labelled with its params, and a log–log plot of content against style loss on the held-out images, the Pareto front marked.",
        discussion: """
            Trials are numbered in job order (#1, #2, …); the plot labels its points with these numbers. \
            A trial without a preview yet gets an empty tile, one without validation points no point; \
            a sweep with neither for any trial is an error (nothing to draw).
            """)

    @Argument(help: "The sweep's group (its style name: jobs are GROUP-1, GROUP-2, …).") var group: String
    @Option(help: "The PNG to write.") var out: String
    @Option(help: "Previews per row (default: all in one row, at most 6).") var columns: Int?
    @OptionGroup var coordinator: CoordinatorOptions

    func validate() throws {
        guard URL(fileURLWithPath: out).pathExtension.lowercased() == "png" else { throw ValidationError("--out must name a .png file") }
        if let columns, !(1...64).contains(columns) { throw ValidationError("--columns must be 1…64") }
    }

    func run() async throws {
        let url = URL(fileURLWithPath: out)
        let folder = url.deletingLastPathComponent().path
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: folder, isDirectory: &isDir), isDir.boolValue,
              FileManager.default.isWritableFile(atPath: folder) else {
            throw CLIError("cannot write \(out): \(folder) is not a writable folder")
        }
        let trials = try await coordinator.withClient { client in try await Self.fetch(group: group, client: client) }
        let picture = Self.compose(trials, columns: columns)
        do { try picture.image.write(to: url) } catch { throw CLIError("cannot write \(out): \(error)") }
        for line in picture.lines { printOut(line) }
        printOut("wrote \(url.path): sweep \(Sanitize.oneLine(group)), \(trials.count) trials "
                 + "(\(trials.filter { $0.preview != nil }.count) previews, \(trials.filter { $0.latest != nil }.count) with validation), "
                 + "\(picture.image.width)×\(picture.image.height) px")
    }

    // MARK: - Data

    /// One trial: its job, latest preview (decoded) and the validation point of its model (`TradeOff.modelPoint`).
    struct Trial {
        var job: JobStatus
        var preview: RGBImage?
        var latest: ValidationPoint?
    }

    /// The group's jobs in id order with their previews and validation points.
    /// - Throws: when no job has the group (naming the groups there are), or when no trial has
    ///   a preview or a validation point yet.
    static func fetch(group: String, client: CoordinatorClient) async throws -> [Trial] {
        let all = try await client.jobs().jobs
        let jobs = all.filter { $0.group == group }.sorted { $0.id < $1.id }
        guard !jobs.isEmpty else {
            let groups = Array(Set(all.compactMap(\.group))).sorted()
            throw CLIError("no sweep \"\(Sanitize.oneLine(group))\" on the coordinator; "
                           + (groups.isEmpty ? "it has no sweeps" : "its sweeps: " + groups.map { Sanitize.oneLine($0) }.joined(separator: ", ")))
        }
        var trials: [Trial] = []
        for job in jobs {
            var trial = Trial(job: job)
            if job.previewStep != nil, let answer = try await client.preview(id: job.id) {
                do { trial.preview = try RGBImage(decoding: answer.png, name: "job \(job.id)'s preview") } catch {
                    printErr("job \(job.id) (\(Sanitize.oneLine(job.name))): \(error); shown without a preview")
                }
            }
            trial.latest = TradeOff.modelPoint(try await client.job(id: job.id).validation, earlyStopped: job.stopReason != nil)
            trials.append(trial)
        }
        if trials.allSatisfy({ $0.preview == nil && $0.latest == nil }) {
            let states = jobs.map { "\(Sanitize.oneLine($0.name)) \($0.state.rawValue)" }.joined(separator: ", ")
            throw CLIError("sweep \"\(Sanitize.oneLine(group))\" has no previews or validation points yet (\(states)); nothing to draw")
        }
        return trials
    }

    // MARK: - Picture

    /// Side of a preview tile.
    static let tileSize = 192
    static let background: ScatterPlot.Colour = (24, 26, 30)

    /// The previews as a contact sheet (labels: `#k NAME`, one line per param, state and step),
    /// the scatter plot under it, and one line per trial for the terminal.
    static func compose(_ trials: [Trial], columns: Int?) -> (image: RGBImage, lines: [String]) {
        let losses = trials.map { (content: $0.latest?.content ?? .nan, style: $0.latest?.style ?? .nan) }
        let front = TradeOff.paretoFront(losses)
        let blank = RGBImage(width: tileSize, height: tileSize, pixels: [UInt8](repeating: 40, count: tileSize * tileSize * 3))
        var tiles: [(label: String, image: RGBImage)] = [], lines: [String] = []
        for (k, t) in trials.enumerated() {
            let params = t.job.params.map(JobConfig.paramsText) ?? ""
            var label = ["#\(k + 1) \(t.job.name)"] + params.split(separator: " ").map(String.init)
            label.append("\(t.job.state.rawValue) step \(t.job.step)" + (t.preview == nil ? ", no preview" : ""))
            tiles.append((label.joined(separator: "\n"), t.preview ?? blank))
            let losses = t.latest.map { String(format: "content %.4g, style %.4g at step %d", $0.content, $0.style, $0.step) }
            lines.append(Sanitize.oneLine("#\(k + 1) \(t.job.name) \(params) (\(t.job.state.rawValue), step \(t.job.step)): "
                                          + (losses ?? "no validation yet") + (front[k] ? ", on the Pareto front" : "")))
        }
        let sheet = ContactSheet.make(tiles, tileSize: tileSize, columns: min(columns ?? 6, max(trials.count, 1)), labelScale: 1)
        let points = trials.indices.map { k in
            ScatterPlot.Point(label: "\(k + 1)", x: losses[k].content, y: losses[k].style, front: front[k])
        }
        let path = TradeOff.frontPath(losses)
        let ordered = path.map { points[$0] } + points.indices.filter { !front[$0] }.map { points[$0] }
        let plot = ScatterPlot.render(ordered, width: min(max(480, sheet.width - 24), 720), height: 360,
                                      xTitle: "content loss (unweighted, held-out images)", yTitle: "style loss")
        return (stack(sheet, plot), lines)
    }

    /// `top` above `bottom` (indented by the sheet's gap) on the sheet's background.
    static func stack(_ top: RGBImage, _ bottom: RGBImage) -> RGBImage {
        let gap = 12, width = max(top.width, bottom.width + 2 * gap), height = top.height + bottom.height + gap
        var pixels = [UInt8](repeating: 0, count: width * height * 3)
        for i in 0..<width * height { pixels[3 * i] = background.0; pixels[3 * i + 1] = background.1; pixels[3 * i + 2] = background.2 }
        func blit(_ img: RGBImage, x: Int, y: Int) {
            for row in 0..<img.height {
                let src = row * img.width * 3, dst = ((y + row) * width + x) * 3
                pixels.replaceSubrange(dst..<dst + img.width * 3, with: img.pixels[src..<src + img.width * 3])
            }
        }
        blit(top, x: 0, y: 0)
        blit(bottom, x: gap, y: top.height)
        return RGBImage(width: width, height: height, pixels: pixels)
    }
}
