import Coordinator
import Foundation
import NSTModel

// MARK: - The coordinator's stylizer

/// The stylizer `serve` injects for the try-it page and `POST /v1/stylize`: the photo decoded
/// (never trusted: a decoding failure is the client's, a `StylizeInputError`), shrunk so its
/// longer side is at most `maxSide`, then run through each model on a thread of its own (so
/// the server's event loops never wait on it) with `threads` BLAS threads; PNGs back.
enum ServeStylizer {
    static func function(maxMemoryBytes: Int = StylizeSettings.defaultMaxMemoryBytes) -> StylizeFunction {
        { request in
            try await withCheckedThrowingContinuation { continuation in
                Thread.detachNewThread {
                    continuation.resume(with: Result { try stylize(request, maxMemoryBytes: maxMemoryBytes) })
                }
            }
        }
    }

    static func stylize(_ request: StylizeRequest, maxMemoryBytes: Int) throws -> StylizeOutput {
        var photo: RGBImage
        do { photo = try RGBImage(decoding: request.image, name: "the uploaded photo") } catch {
            throw StylizeInputError(error.description)
        }
        let longer = max(photo.width, photo.height)
        if longer > request.maxSide {
            let scale = Double(request.maxSide) / Double(longer)
            photo = photo.resized(width: max(8, Int((Double(photo.width) * scale).rounded())),
                                  height: max(8, Int((Double(photo.height) * scale).rounded())))
        }
        guard photo.width >= 8, photo.height >= 8 else {
            throw StylizeInputError("the photo is \(photo.width)×\(photo.height); it must be at least 8×8")
        }
        let settings = StylizeSettings(maxMemoryBytes: maxMemoryBytes)
        let images = request.models.map { url -> Result<Data, StylizeModelError> in
            // A model that does not load (a worker uploaded a broken file) fails alone.
            do {
                let stylizer = try Stylizer(net: try TransformerNet(contentsOf: url), settings: settings)
                return .success(try stylizer.stylize(photo).pngData())
            } catch {
                return .failure(StylizeModelError("\(error)"))
            }
        }
        return StylizeOutput(content: try photo.pngData(), images: images)
    }
}
