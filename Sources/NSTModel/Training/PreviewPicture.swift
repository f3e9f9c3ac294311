import Foundation

/// The content picture a worker renders through each checkpoint of a job for the dashboard.
///
/// With held-out validation images it is the first of them (the first that can be read, should
/// it not be), its centre square resized to `size`×`size`: a real photo the model never trained
/// on, the same for every checkpoint and every trial of a sweep (they share their data). Without
/// them it is a fixed synthetic scene, the same on every machine.
public enum PreviewPicture {
    /// Side of the picture, in pixels.
    public static let size = 192

    /// The synthetic scene used when a job has no validation images.
    public static func syntheticScene(size: Int = size) -> RGBImage {
        SyntheticImages.contentImage(index: 1000, width: size, height: size, seed: 7)
    }

    /// The picture for a job whose held-out images are `validation` (nil: none), and where it
    /// comes from (for a log line). Reading stops at the first image that decodes.
    public static func content(validation: (any TrainingImages)?, size: Int = size) -> (image: RGBImage, source: String) {
        if let validation {
            for index in 0..<validation.count {
                guard let photo = try? validation.image(at: index) else { continue }
                let square = photo.centreSquare()
                let image = square.width == size ? square : square.resized(width: size, height: size)
                return (image, "validation image \(index + 1) of \(validation.description)")
            }
        }
        return (syntheticScene(size: size), "the synthetic scene")
    }
}

extension RGBImage {
    /// The largest centred square (the picture itself when it is square); when the cut is odd,
    /// the extra column (row) is cut on the right (bottom).
    public func centreSquare() -> RGBImage {
        let side = min(width, height)
        guard width != height, side > 0 else { return self }
        let x0 = (width - side) / 2, y0 = (height - side) / 2
        var pixels = [UInt8]()
        pixels.reserveCapacity(side * side * 3)
        for y in y0..<y0 + side {
            let row = (y * width + x0) * 3
            pixels.append(contentsOf: self.pixels[row..<row + side * 3])
        }
        return RGBImage(width: side, height: side, pixels: pixels)
    }
}
