import CImageCodec
import Foundation

// MARK: - Types

/// An 8-bit RGB image: `pixels` holds `width * height * 3` bytes, interleaved RGB, row-major
/// (what PIL's `Image.open(path).convert("RGB")` gives as a numpy array).
public struct RGBImage: Sendable, Equatable {
    public var width: Int
    public var height: Int
    public var pixels: [UInt8]

    public init(width: Int, height: Int, pixels: [UInt8]) {
        precondition(width > 0 && height > 0, "image size \(width)x\(height)")
        precondition(pixels.count == width * height * 3,
                     "\(pixels.count) bytes for a \(width)x\(height) RGB image")
        self.width = width
        self.height = height
        self.pixels = pixels
    }
}

/// Image I/O errors; every case names the file (or the name given to `init(decoding:name:)`).
public enum ImageError: Error, CustomStringConvertible, Equatable {
    /// The file could not be read (missing, permission, a directory...).
    case unreadable(path: String, reason: String)
    /// The bytes are neither JPEG nor PNG (includes empty files).
    case notAnImage(path: String)
    /// A JPEG or PNG that the decoder rejected (truncated, bad data, unsupported variant).
    case corrupt(path: String, reason: String)
    /// Dimensions above the decoder's guard (30000 px a side or 300 M pixels).
    case tooLarge(path: String, width: Int, height: Int)
    /// The image could not be encoded, or the extension names no supported format.
    case encodeFailed(path: String, reason: String)
    /// The encoded bytes could not be written to the file.
    case writeFailed(path: String, reason: String)
    /// An image folder root that does not exist.
    case missingDirectory(path: String)
    /// An image folder root that exists but is not a directory.
    case notADirectory(path: String)

    public var description: String {
        switch self {
        case let .unreadable(path, reason): return "cannot read image file \(path): \(reason)"
        case let .notAnImage(path): return "\(path) is not a JPEG or PNG image"
        case let .corrupt(path, reason): return "corrupt image \(path): \(reason)"
        case let .tooLarge(path, w, h): return "image \(path) is too large (\(w)x\(h))"
        case let .encodeFailed(path, reason): return "cannot encode image \(path): \(reason)"
        case let .writeFailed(path, reason): return "cannot write image \(path): \(reason)"
        case let .missingDirectory(path): return "image folder \(path) does not exist"
        case let .notADirectory(path): return "image folder \(path) is not a directory"
        }
    }

    /// The file this error is about.
    public var path: String {
        switch self {
        case let .unreadable(path, _), let .notAnImage(path), let .corrupt(path, _),
             let .tooLarge(path, _, _), let .encodeFailed(path, _), let .writeFailed(path, _),
             let .missingDirectory(path), let .notADirectory(path):
            return path
        }
    }
}

// MARK: - Decoding

extension RGBImage {
    /// Decodes a JPEG or PNG file, recognised by its content, not its extension.
    public init(contentsOf url: URL) throws(ImageError) {
        let data: Data
        do {
            data = try Data(contentsOf: url)
        } catch {
            throw .unreadable(path: url.path, reason: Self.reason(error))
        }
        try self.init(decoding: data, name: url.path)
    }

    /// Decodes JPEG or PNG bytes; `name` is used in errors. The pixels equal PIL's
    /// `Image.open(f).convert("RGB")` (JPEG: same libjpeg decode; PNG: palette/grey expanded,
    /// alpha dropped, 16-bit to the high byte; only 16-bit greyscale differs, where PIL clips).
    /// A truncated file is an error, as in PIL.
    public init(decoding data: Data, name: String) throws(ImageError) {
        var out: UnsafeMutablePointer<UInt8>?
        var w: Int32 = 0, h: Int32 = 0
        var err = [CChar](repeating: 0, count: Self.errCapacity)
        let errLen = err.count
        let code = data.withUnsafeBytes { raw in
            nst_decode_image(raw.bindMemory(to: UInt8.self).baseAddress, raw.count,
                             &out, &w, &h, &err, errLen)
        }
        defer { nst_free(out) }
        switch code {
        case NST_OK:
            guard let out else { throw .corrupt(path: name, reason: "decoder returned no pixels") }
            let count = Int(w) * Int(h) * 3
            self.init(width: Int(w), height: Int(h),
                      pixels: Array(UnsafeBufferPointer(start: out, count: count)))
        case NST_ERR_NOT_IMAGE:
            throw .notAnImage(path: name)
        case NST_ERR_TOO_LARGE:
            throw .tooLarge(path: name, width: Int(w), height: Int(h))
        default:
            throw .corrupt(path: name, reason: Self.message(err))
        }
    }
}

// MARK: - Encoding

extension RGBImage {
    /// Encodes as an 8-bit RGB PNG (lossless).
    public func pngData() throws(ImageError) -> Data {
        try encode(name: "<png>") { rgb, out, len, err in
            nst_encode_png(rgb, Int32(width), Int32(height), out, len, err, Self.errCapacity)
        }
    }

    /// Encodes as a baseline 4:2:0 JPEG with the given quality (1...100).
    public func jpegData(quality: Int = 92) throws(ImageError) -> Data {
        try encode(name: "<jpeg>") { rgb, out, len, err in
            nst_encode_jpeg(rgb, Int32(width), Int32(height), Int32(clamping: quality), out, len,
                            err, Self.errCapacity)
        }
    }

    /// Writes a PNG (`.png`) or JPEG (`.jpg`, `.jpeg`), chosen by the extension (any case).
    /// Atomic: the bytes go to a temporary file in the same folder, which is then renamed.
    public func write(to url: URL, quality: Int = 92) throws(ImageError) {
        let ext = url.pathExtension.lowercased()
        guard ["png", "jpg", "jpeg"].contains(ext) else {
            throw .encodeFailed(path: url.path, reason: "unsupported extension; use .png, .jpg or .jpeg")
        }
        let data: Data
        do throws(ImageError) {
            data = ext == "png" ? try pngData() : try jpegData(quality: quality)
        } catch {
            guard case let .encodeFailed(_, reason) = error else { throw error }
            throw .encodeFailed(path: url.path, reason: reason)
        }
        do {
            try data.write(to: url, options: .atomic)
        } catch {
            throw .writeFailed(path: url.path, reason: Self.reason(error))
        }
    }

    /// Size of the message buffer handed to the C codec.
    static let errCapacity = 256

    private typealias Encoder = (UnsafePointer<UInt8>, UnsafeMutablePointer<UnsafeMutablePointer<UInt8>?>,
                                 UnsafeMutablePointer<Int>, UnsafeMutablePointer<CChar>) -> Int32

    private func encode(name: String, _ call: Encoder) throws(ImageError) -> Data {
        var out: UnsafeMutablePointer<UInt8>?
        var len = 0
        var err = [CChar](repeating: 0, count: Self.errCapacity)
        let code = pixels.withUnsafeBufferPointer { call($0.baseAddress!, &out, &len, &err) }
        defer { nst_free(out) }
        guard code == NST_OK, let out else {
            throw .encodeFailed(path: name, reason: Self.message(err))
        }
        return Data(bytes: out, count: len)
    }

    private static func message(_ err: [CChar]) -> String {
        let bytes = err.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }
        let text = String(decoding: bytes, as: UTF8.self)
        return text.isEmpty ? "unknown decoder error" : text
    }

    static func reason(_ error: any Error) -> String {
        (error as NSError).localizedDescription
    }
}

// MARK: - Planar float conversion

extension RGBImage {
    /// Writes planar CHW floats in [0, 255] into `dst` (`3 * height * width` floats):
    /// `dst[c * h * w + y * w + x] = pixels[(y * w + x) * 3 + c]`.
    public func writeCHW(to dst: UnsafeMutablePointer<Float>) {
        let plane = width * height
        pixels.withUnsafeBufferPointer { src in
            for i in 0..<plane {
                dst[i] = Float(src[3 * i])
                dst[plane + i] = Float(src[3 * i + 1])
                dst[2 * plane + i] = Float(src[3 * i + 2])
            }
        }
    }

    /// Writes the rows × cols region as planar CHW floats in [0, 255] into `dst`
    /// (`3 * rows.count * cols.count` floats), as `writeCHW(to:)` writes the whole image.
    public func writeCHW(to dst: UnsafeMutablePointer<Float>, rows: Range<Int>, cols: Range<Int>) {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= height && cols.lowerBound >= 0 && cols.upperBound <= width,
                     "region \(rows) × \(cols) outside \(width)×\(height)")
        let plane = rows.count * cols.count, w = cols.count
        pixels.withUnsafeBufferPointer { src in
            for (r, y) in rows.enumerated() {
                let row = src.baseAddress! + (y * width + cols.lowerBound) * 3, out = dst + r * w
                for j in 0..<w {
                    out[j] = Float(row[3 * j])
                    out[plane + j] = Float(row[3 * j + 1])
                    out[2 * plane + j] = Float(row[3 * j + 2])
                }
            }
        }
    }

    /// From planar CHW floats: clamp to [0, 255] then truncate toward zero, as numpy's
    /// `x.clip(0, 255).astype(uint8)`. NaN becomes 0.
    public init(chw: UnsafePointer<Float>, width: Int, height: Int) {
        let plane = width * height
        let pixels = [UInt8](unsafeUninitializedCapacity: plane * 3) { buf, initialized in
            for c in 0..<3 {
                for i in 0..<plane {
                    let v = chw[c * plane + i]
                    buf[3 * i + c] = v >= 255 ? 255 : (v > 0 ? UInt8(v) : 0)  // NaN fails both tests
                }
            }
            initialized = plane * 3
        }
        self.init(width: width, height: height, pixels: pixels)
    }
}
