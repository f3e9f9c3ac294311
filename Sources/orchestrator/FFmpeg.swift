import Foundation
import NSTModel

/// Debian's `ffmpeg` and `ffprobe` executables, run with Foundation's Process: a video's
/// geometry and frame rate from ffprobe's JSON, and its frames as raw RGB bytes through pipes
/// (decode: ffmpeg → stdout; encode: stdin → ffmpeg). Their standard error goes to temporary
/// files, so that a chatty ffmpeg never blocks on a full pipe; its last lines are the message of
/// a failure.
enum FFmpeg {
    enum Failure: Error, CustomStringConvertible {
        case missing
        case probe(path: String, reason: String)
        case noVideo(path: String)
        case process(what: String, reason: String)

        var description: String {
            switch self {
            case .missing:
                return "stylize-video needs ffmpeg and ffprobe on the PATH: install Debian's ffmpeg (sudo apt-get install ffmpeg, or scripts/setup)"
            case let .probe(path, reason): return "\(path): ffprobe cannot read it: \(reason)"
            case let .noVideo(path): return "\(path) has no video stream"
            case let .process(what, reason): return "ffmpeg \(what) failed: \(reason)"
            }
        }
    }

    /// The executable `name` in $PATH.
    static func locate(_ name: String) -> URL? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        for dir in path.split(separator: ":") {
            let url = URL(fileURLWithPath: String(dir)).appendingPathComponent(name)
            if FileManager.default.isExecutableFile(atPath: url.path) { return url }
        }
        return nil
    }

    struct VideoInfo {
        /// The frames' size as ffmpeg decodes them (rotation metadata applied).
        var width: Int, height: Int
        /// As ffprobe gives it, e.g. "30000/1001": handed to the encoder unchanged.
        var frameRate: String
        var framesPerSecond: Double
        /// From the container, or estimated from the duration; nil when neither is known.
        var frames: Int?
        var hasAudio: Bool
    }

    static func probe(_ input: URL, ffprobe: URL) throws -> VideoInfo {
        let result = try run(ffprobe, ["-v", "error", "-show_entries",
                                       "stream=codec_type,width,height,avg_frame_rate,r_frame_rate,nb_frames:stream_side_data=rotation:format=duration",
                                       "-of", "json", input.path])
        guard result.status == 0 else { throw Failure.probe(path: input.path, reason: lastLines(result.stderr)) }
        struct Probe: Decodable {
            struct SideData: Decodable { var rotation: Double? }
            struct Stream: Decodable {
                var codec_type: String?
                var width: Int?, height: Int?
                var avg_frame_rate: String?, r_frame_rate: String?, nb_frames: String?
                var side_data_list: [SideData]?
            }
            struct Format: Decodable { var duration: String? }
            var streams: [Stream]?
            var format: Format?
        }
        let probe: Probe
        do { probe = try JSONDecoder().decode(Probe.self, from: result.stdout) } catch {
            throw Failure.probe(path: input.path, reason: "unexpected ffprobe output")
        }
        let streams = probe.streams ?? []
        guard let video = streams.first(where: { $0.codec_type == "video" }), var width = video.width, var height = video.height,
              width > 0, height > 0 else { throw Failure.noVideo(path: input.path) }
        let rotation = Int(video.side_data_list?.compactMap(\.rotation).first ?? 0)
        if abs(rotation) % 180 == 90 { swap(&width, &height) }
        let rate = [video.avg_frame_rate, video.r_frame_rate].compactMap { $0 }.first { rateValue($0) > 0 } ?? "25/1"
        let fps = rateValue(rate)
        var frames = video.nb_frames.flatMap { Int($0) }
        if frames == nil, let d = probe.format?.duration.flatMap(Double.init), d.isFinite, d > 0, d * fps < 1e9 {
            frames = Int((d * fps).rounded())
        }
        return VideoInfo(width: width, height: height, frameRate: rate, framesPerSecond: fps, frames: frames,
                         hasAudio: streams.contains { $0.codec_type == "audio" })
    }

    /// "30000/1001" → 29.97; 0 for anything else.
    static func rateValue(_ s: String) -> Double {
        let parts = s.split(separator: "/").compactMap { Double($0) }
        guard parts.count == 2, parts[1] > 0, parts[0].isFinite, parts[0] > 0 else { return 0 }
        return parts[0] / parts[1]
    }

    /// Runs a short command to the end, capturing both outputs.
    static func run(_ executable: URL, _ arguments: [String]) throws -> (status: Int32, stdout: Data, stderr: Data) {
        let p = Process()
        p.executableURL = executable
        p.arguments = arguments
        let log = try TemporaryLog()
        let out = Pipe()
        p.standardInput = FileHandle.nullDevice
        p.standardOutput = out
        p.standardError = log.handle
        try p.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, data, log.contents)
    }

    /// The last few lines of a tool's error output, at most 600 characters, printable ASCII.
    static func lastLines(_ data: Data) -> String {
        let text = String(decoding: data.suffix(600), as: UTF8.self)
        let lines = text.split(separator: "\n").suffix(4).joined(separator: " | ")
        let clean = String(lines.unicodeScalars.map { $0.isASCII && $0.value >= 32 ? Character($0) : "?" })
        return clean.isEmpty ? "no message" : clean
    }
}

/// An unlinked temporary file for a child's standard error.
final class TemporaryLog {
    let handle: FileHandle
    private let fd: Int32

    init() throws {
        var template = Array((NSTemporaryDirectory() as NSString).appendingPathComponent("nst-ffmpeg-XXXXXX").utf8CString)
        fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { throw CLIError("cannot create a temporary file: \(String(cString: strerror(errno)))") }
        unlink(String(cString: template))
        handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
    }

    var contents: Data {
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0 else { return Data() }
        var data = Data(count: Int(size))
        let n = data.withUnsafeMutableBytes { pread(fd, $0.baseAddress, Int(size), 0) }
        return data.prefix(max(0, n))
    }
}

/// ffmpeg decoding a video's first video stream to raw RGB frames.
final class FrameReader {
    let width: Int, height: Int
    private let process = Process()
    private let pipe = Pipe()
    private let log: TemporaryLog

    init(ffmpeg: URL, input: URL, width: Int, height: Int) throws {
        self.width = width; self.height = height
        log = try TemporaryLog()
        process.executableURL = ffmpeg
        process.arguments = ["-v", "error", "-nostdin", "-i", input.path, "-map", "0:v:0", "-fps_mode", "passthrough",
                             "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:1"]
        process.standardInput = FileHandle.nullDevice
        process.standardOutput = pipe
        process.standardError = log.handle
        try process.run()
    }

    deinit { if process.isRunning { process.terminate() } }

    /// The next frame; nil at the end of the video.
    func next() throws -> RGBImage? {
        let count = width * height * 3
        let fd = pipe.fileHandleForReading.fileDescriptor
        var got = 0
        let pixels = [UInt8](unsafeUninitializedCapacity: count) { buf, initialized in
            while got < count {
                let n = read(fd, buf.baseAddress! + got, count - got)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                got += n
            }
            initialized = count
        }
        if got == 0 { return nil }
        guard got == count else {
            throw FFmpeg.Failure.process(what: "decoding", reason: "a frame ended after \(got) of \(count) bytes")
        }
        return RGBImage(width: width, height: height, pixels: pixels)
    }

    func finish() throws {
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FFmpeg.Failure.process(what: "decoding", reason: FFmpeg.lastLines(log.contents))
        }
    }
}

/// ffmpeg encoding raw RGB frames, with the audio of `audioFrom` copied as it is; the codec is
/// ffmpeg's default for the output's extension (H.264 for .mp4 and .mkv), in yuv420p.
final class FrameWriter {
    private let process = Process()
    private let pipe = Pipe()
    private let log: TemporaryLog

    init(ffmpeg: URL, output: URL, audioFrom: URL?, width: Int, height: Int, frameRate: String) throws {
        log = try TemporaryLog()
        var args = ["-v", "error", "-nostdin", "-y", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", "\(width)x\(height)",
                    "-framerate", frameRate, "-i", "pipe:0"]
        if let audioFrom { args += ["-i", audioFrom.path, "-map", "0:v:0", "-map", "1:a?", "-c:a", "copy", "-shortest"] }
        if width % 2 == 1 || height % 2 == 1 { args += ["-vf", "pad=ceil(iw/2)*2:ceil(ih/2)*2"] }   // yuv420p needs even sizes
        args += ["-pix_fmt", "yuv420p", output.path]
        process.executableURL = ffmpeg
        process.arguments = args
        process.standardInput = pipe
        process.standardOutput = FileHandle.nullDevice
        process.standardError = log.handle
        try process.run()
    }

    deinit { if process.isRunning { process.terminate() } }

    func write(_ frame: RGBImage) throws {
        let fd = pipe.fileHandleForWriting.fileDescriptor
        try frame.pixels.withUnsafeBytes { raw in
            var done = 0
            while done < raw.count {
                let n = Foundation.write(fd, raw.baseAddress! + done, raw.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else {
                    let reason = String(cString: strerror(errno))
                    process.waitUntilExit()   // it closed its input: it is exiting, and says why
                    let said = log.contents
                    throw FFmpeg.Failure.process(what: "encoding", reason: said.isEmpty ? reason : FFmpeg.lastLines(said))
                }
                done += n
            }
        }
    }

    func finish() throws {
        try pipe.fileHandleForWriting.close()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw FFmpeg.Failure.process(what: "encoding", reason: FFmpeg.lastLines(log.contents))
        }
    }
}
