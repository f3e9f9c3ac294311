import ArgumentParser
import Foundation
import NSTModel

struct StylizeVideo: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stylize-video",
        abstract: "Stylise a video with one model through ffmpeg, keeping its frame rate and audio.",
        discussion: """
            Frames are decoded and encoded by the ffmpeg executable (Debian's ffmpeg package)
            through pipes of raw RGB frames; the codec is ffmpeg's default for OUT's extension
            (H.264 for .mp4 and .mkv) and the audio is copied as it is.

            Flicker: where the content does not change from one frame to the next, each output
            frame is blended with the previous output: o = (1 − w)·y + w·o_prev with
            w = 0.6 · max(0, 1 − d/24), d the content's change at that pixel (grey levels,
            mean over R, G, B).
            At the end the mean absolute frame-to-frame difference of the output is printed
            with and without that blending; --no-deflicker writes the unblended frames.
            """)

    @Argument(help: "Input video (anything ffmpeg reads).") var input: String
    @Argument(help: "Output video (.mp4, .mkv, …).") var output: String
    @Option(help: "Trained model: safetensors, or a PyTorch .pth state dict.") var model: String
    @Flag(name: .customLong("no-deflicker"), help: "Write the frames as stylised, without blending still pixels with the previous frame.")
    var noDeflicker = false
    @OptionGroup var options: StylizeOptions

    func run() throws {
        options.startThreads()
        signal(SIGPIPE, SIG_IGN)   // a failed encoder is an error from write(), not a silent exit
        let inputURL = URL(fileURLWithPath: input), outputURL = URL(fileURLWithPath: output)
        guard FileManager.default.fileExists(atPath: inputURL.path) else { throw CLIError("\(input): no such file") }
        guard let ffmpeg = FFmpeg.locate("ffmpeg"), let ffprobe = FFmpeg.locate("ffprobe") else { throw CLIError(FFmpeg.Failure.missing) }
        // ffmpeg picks the format from the name: a temporary file with the same extension, renamed at the end.
        let partial = outputURL.deletingLastPathComponent()
            .appendingPathComponent(".\(outputURL.deletingPathExtension().lastPathComponent)-\(getpid()).partial.\(outputURL.pathExtension)")
        defer { try? FileManager.default.removeItem(at: partial) }
        do {
            let info = try FFmpeg.probe(inputURL, ffprobe: ffprobe)
            var settings = options.settings
            settings.outputSize = .content
            let stylizer = try Stylizer(net: try TransformerNet(contentsOf: URL(fileURLWithPath: model)), settings: settings)
            let reader = try FrameReader(ffmpeg: ffmpeg, input: inputURL, width: info.width, height: info.height)
            let writer = try FrameWriter(ffmpeg: ffmpeg, output: partial, audioFrom: info.hasAudio ? inputURL : nil,
                                         width: info.width, height: info.height, frameRate: info.frameRate)
            var deflicker = Deflicker()
            var raw = FrameDifference(), smoothed = FrameDifference(), content = FrameDifference()
            var bar = ProgressBar(total: info.frames ?? 0, unit: "frames")
            var frames = 0
            while let frame = try reader.next() {
                let stylized = try stylizer.stylize(frame)
                var blended = stylized
                deflicker.apply(content: frame, output: &blended)
                raw.add(stylized); smoothed.add(blended); content.add(frame)
                try writer.write(noDeflicker ? stylized : blended)
                frames += 1
                bar.update(step: frames, items: 1, detail: "")
            }
            bar.finish()
            try reader.finish()
            try writer.finish()
            guard frames > 0 else { throw CLIError("\(input): no frames decoded") }
            guard rename(partial.path, outputURL.path) == 0 else {
                throw CLIError("\(output): cannot write: \(String(cString: strerror(errno)))")
            }
            printErr(String(format: "wrote %@: %d frames, %d×%d at %@ fps (%.3f), %@", output, frames, info.width, info.height,
                            info.frameRate, info.framesPerSecond, info.hasAudio ? "audio copied" : "no audio"))
            printErr(String(format: "frame-to-frame difference (mean absolute, 0–255): %.3f without deflicker, %.3f with it (content: %.3f); wrote the %@ frames",
                            raw.mean, smoothed.mean, content.mean, noDeflicker ? "unblended" : "deflickered"))
        } catch let error as CLIError {
            throw error
        } catch {
            throw CLIError(error)
        }
        options.reportPeakMemory()
    }
}
