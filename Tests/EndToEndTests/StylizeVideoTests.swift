import Foundation
import NSTModel
import XCTest

/// `orchestrator stylize-video` on a short clip made by ffmpeg: frames, size, frame rate and
/// audio survive, and the deflicker blending lowers the frame-to-frame difference.
final class StylizeVideoTests: XCTestCase {
    var dir: URL!
    var ffmpeg: URL!, ffprobe: URL!

    override func setUpWithError() throws {
        try XCTSkipUnless(FileManager.default.isExecutableFile(atPath: TrainCommandTests.binary.path), "build the orchestrator first")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("nst-video-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { if let dir { try? FileManager.default.removeItem(at: dir) } }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    func requireFFmpeg() throws {
        let found = ["ffmpeg", "ffprobe"].map { name in
            ["/usr/bin", "/usr/local/bin"].map { URL(fileURLWithPath: $0).appendingPathComponent(name) }
                .first { FileManager.default.isExecutableFile(atPath: $0.path) }
        }
        try XCTSkipIf(found.contains { $0 == nil }, "ffmpeg is not installed (scripts/setup installs it)")
        ffmpeg = found[0]; ffprobe = found[1]
    }

    func run(_ executable: URL, _ args: [String], env: [String: String]? = nil) throws -> CommandResult {
        try runCommand(executable, args, environment: env ?? ProcessInfo.processInfo.environment, logDir: dir, timeout: 300)
    }

    /// A 1.5 s clip at 12 fps, 96 × 64: testsrc2 with temporal noise (so that a stylisation
    /// flickers) and a 440 Hz tone.
    func makeClip(_ name: String) throws {
        let r = try run(ffmpeg, ["-v", "error", "-y", "-f", "lavfi", "-i", "testsrc2=size=96x64:rate=12:duration=1.5",
                                 "-f", "lavfi", "-i", "sine=frequency=440:duration=1.5", "-vf", "noise=alls=16:allf=t",
                                 "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", path(name)])
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// The video stream's fields, and "audio" = "yes" when there is an audio stream.
    func probe(_ name: String) throws -> [String: String] {
        let r = try run(ffprobe, ["-v", "error", "-count_frames", "-show_entries",
                                  "stream=codec_type,width,height,avg_frame_rate,nb_read_frames", "-of", "compact", path(name)])
        XCTAssertEqual(r.status, 0, r.stderr)
        var fields: [String: String] = [:]
        for line in r.stdout.split(separator: "\n") {
            let kv = Dictionary(line.split(separator: "|").dropFirst().compactMap { item -> (String, String)? in
                let parts = item.split(separator: "=", maxSplits: 1).map(String.init)
                return parts.count == 2 ? (parts[0], parts[1]) : nil
            }, uniquingKeysWith: { a, _ in a })
            if kv["codec_type"] == "video", fields.isEmpty { fields = kv }
            if kv["codec_type"] == "audio" { fields["audio"] = "yes" }
        }
        return fields
    }

    /// "… 1.234 without deflicker, 0.567 with it …" → (1.234, 0.567).
    func flicker(_ stderr: String) throws -> (without: Double, with: Double) {
        let line = try XCTUnwrap(stderr.split(separator: "\n").first { $0.hasPrefix("frame-to-frame difference") }, stderr)
        let words = line.split(separator: " ")
        let without = try XCTUnwrap(words.firstIndex(of: "without").flatMap { Double(words[$0 - 1]) }, String(line))
        let with = try XCTUnwrap(words.firstIndex(of: "with").flatMap { Double(words[$0 - 1].trimmingCharacters(in: .punctuationCharacters)) }, String(line))
        return (without, with)
    }

    func testRoundTripKeepsFramesSizeRateAndAudioAndDeflickers() throws {
        try requireFFmpeg()
        try makeClip("clip.mp4")
        try TransformerNet.visible(seed: 7).save(to: dir.appendingPathComponent("m.safetensors"))
        let input = try probe("clip.mp4")
        XCTAssertEqual(input["nb_read_frames"], "18")

        let r = try run(TrainCommandTests.binary, ["stylize-video", path("clip.mp4"), path("out.mp4"), "--model", path("m.safetensors")])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("wrote \(path("out.mp4")): 18 frames, 96×64 at 12/1 fps"), r.stderr)
        XCTAssertTrue(r.stderr.contains("audio copied"), r.stderr)
        let out = try probe("out.mp4")
        XCTAssertEqual(out["nb_read_frames"], "18")
        XCTAssertEqual(out["width"], "96")
        XCTAssertEqual(out["height"], "64")
        XCTAssertEqual(out["avg_frame_rate"], "12/1")
        XCTAssertEqual(out["audio"], "yes", "the audio stream is kept")
        let measured = try flicker(r.stderr)
        XCTAssertGreaterThan(measured.without, 0)
        XCTAssertLessThan(measured.with, measured.without, "deflicker lowers the frame-to-frame difference")

        // --no-deflicker writes the unblended frames; the numbers are the same.
        let plain = try run(TrainCommandTests.binary, ["stylize-video", path("clip.mp4"), path("plain.mp4"), "--model", path("m.safetensors"), "--no-deflicker"])
        XCTAssertEqual(plain.status, 0, plain.stderr)
        XCTAssertTrue(plain.stderr.contains("wrote the unblended frames"), plain.stderr)
        let again = try flicker(plain.stderr)
        XCTAssertEqual(again.without, measured.without, accuracy: 1e-9)
        XCTAssertEqual(again.with, measured.with, accuracy: 1e-9)
        XCTAssertEqual(try probe("plain.mp4")["nb_read_frames"], "18")
        XCTAssertNotEqual(try Data(contentsOf: dir.appendingPathComponent("plain.mp4")),
                          try Data(contentsOf: dir.appendingPathComponent("out.mp4")))
    }

    func testMissingFFmpegAndBadInputSayWhatIsWrong() throws {
        try TransformerNet.visible(seed: 7).save(to: dir.appendingPathComponent("m.safetensors"))
        try Data("not a video".utf8).write(to: dir.appendingPathComponent("fake.mp4"))
        var env = ProcessInfo.processInfo.environment
        env["PATH"] = path("no-such-bin")
        let missing = try run(TrainCommandTests.binary, ["stylize-video", path("fake.mp4"), path("o.mp4"), "--model", path("m.safetensors")], env: env)
        XCTAssertEqual(missing.status, 1)
        XCTAssertTrue(missing.stderr.contains("needs ffmpeg and ffprobe on the PATH"), missing.stderr)
        XCTAssertTrue(missing.stderr.contains("apt-get install ffmpeg"), missing.stderr)

        try requireFFmpeg()
        let bad = try run(TrainCommandTests.binary, ["stylize-video", path("fake.mp4"), path("o.mp4"), "--model", path("m.safetensors")])
        XCTAssertEqual(bad.status, 1)
        XCTAssertTrue(bad.stderr.contains("\(path("fake.mp4")): ffprobe cannot read it"), bad.stderr)
        XCTAssertFalse(FileManager.default.fileExists(atPath: path("o.mp4")))
    }
}
