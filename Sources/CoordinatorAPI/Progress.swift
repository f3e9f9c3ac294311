import Foundation

// MARK: - JobState

/// Where a job stands. `queued → running → succeeded`; `running → queued` on lease expiry,
/// retryable failure or release; `→ failed` at max attempts or on a non-retryable failure;
/// `queued|running → cancelled`; `failed|cancelled → queued` by retry.
public enum JobState: String, Codable, Sendable, CaseIterable {
    case queued, running, succeeded, failed, cancelled

    /// True for states no worker will change (`succeeded`, `failed`, `cancelled`).
    public var isTerminal: Bool {
        self == .succeeded || self == .failed || self == .cancelled
    }
}

// MARK: - Progress

/// One step's losses, as a worker reports them and as `lossPoints(jobID:)` returns them
/// (the columns of `NAME.losses.csv`).
public struct LossPoint: Codable, Sendable, Equatable {
    public var step: Int
    /// Images seen after this step.
    public var images: Int
    public var content: Double
    public var style: Double
    public var total: Double

    public init(step: Int, images: Int, content: Double, style: Double, total: Double) {
        self.step = step
        self.images = images
        self.content = content
        self.style = style
        self.total = total
    }
}

/// Training progress carried by a heartbeat.
public struct JobProgress: Codable, Sendable, Equatable {
    /// Steps completed.
    public var step: Int
    public var imagesDone: Int
    public var imagesPerS: Double?
    /// Totals, once the worker knows them (they depend on its dataset unless `steps` is set).
    public var stepsTotal: Int?
    public var imagesTotal: Int?

    public init(step: Int, imagesDone: Int, imagesPerS: Double? = nil,
                stepsTotal: Int? = nil, imagesTotal: Int? = nil) {
        self.step = step
        self.imagesDone = imagesDone
        self.imagesPerS = imagesPerS
        self.stepsTotal = stepsTotal
        self.imagesTotal = imagesTotal
    }
}

// MARK: - Validation

/// The losses of a job's held-out validation images at one step (docs/tuning.md): the mean
/// content and style terms over the images, unweighted (comparable across jobs with other
/// weights) and multiplied by the job's weights (what training minimises).
public struct ValidationPoint: Codable, Sendable, Equatable {
    public var step: Int
    public var content: Double
    public var style: Double
    public var contentWeighted: Double
    public var styleWeighted: Double

    public init(step: Int, content: Double, style: Double, contentWeighted: Double, styleWeighted: Double) {
        self.step = step
        self.content = content
        self.style = style
        self.contentWeighted = contentWeighted
        self.styleWeighted = styleWeighted
    }

    /// The weighted total, which early stopping watches.
    public var total: Double { contentWeighted + styleWeighted }

    enum CodingKeys: String, CodingKey {
        case step, content, style
        case contentWeighted = "content_weighted"
        case styleWeighted = "style_weighted"
    }
}
