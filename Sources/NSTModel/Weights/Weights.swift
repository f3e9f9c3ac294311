import Foundation

// MARK: - Loading and saving the networks' weights (safetensors or PyTorch .pth in, safetensors out;
// PyTorch state_dict names)

extension TransformerNet {
    /// Copies every parameter from `file`. Every key must be there with its exact shape; extra keys
    /// are ignored: Adam moments in a checkpoint, or the deprecated `in*.running_mean` /
    /// `in*.running_var` of old pytorch/examples models (which neural_style.py deletes before loading).
    public func load(_ file: SafeTensors) throws(WeightsError) {
        for p in parameters { try file.load(p.name, into: p.value) }
    }

    /// Reads a safetensors or PyTorch `.pth` file (see `WeightsFile`); only the parameters' own
    /// tensors are read.
    public convenience init(contentsOf url: URL) throws(WeightsError) {
        self.init()
        try load(WeightsFile.read(contentsOf: url, keys: Set(parameters.map(\.name))))
    }

    public var namedTensors: [(name: String, tensor: Tensor)] { parameters.map { ($0.name, $0.value) } }

    public func save(to url: URL, metadata: [String: String] = [:]) throws(WeightsError) {
        try SafeTensors.write(namedTensors, metadata: metadata, to: url)
    }
}

extension VGG16 {
    /// Takes torchvision's names (`features.0.weight` … `features.21.bias`); the keys of later
    /// layers (features.24 …, classifier.*) are ignored.
    public func load(_ file: SafeTensors) throws(WeightsError) {
        for p in parameters { try file.load(p.name, into: p.value) }
    }

    /// Reads a safetensors or PyTorch `.pth` file, such as torchvision's own `vgg16-397923af.pth`;
    /// only features[0:23] are read from it.
    public convenience init(contentsOf url: URL) throws(WeightsError) {
        self.init()
        try load(WeightsFile.read(contentsOf: url, keys: Set(parameters.map(\.name))))
    }

    public func save(to url: URL) throws(WeightsError) {
        try SafeTensors.write(parameters.map { ($0.name, $0.value) }, to: url)
    }
}

// MARK: - Training checkpoints

/// What a checkpoint holds besides the tensors: enough to resume exactly where it stopped.
public struct CheckpointState: Equatable, Sendable {
    /// Optimiser steps done (the next step is `step + 1`).
    public var step: Int
    /// Images trained on so far.
    public var imagesSeen: Int
    public init(step: Int, imagesSeen: Int) { self.step = step; self.imagesSeen = imagesSeen }

    static let format = "nst-checkpoint-1"
}

extension Trainer {
    /// TransformerNet weights under their own names, Adam's moments as `adam.m.<name>` and
    /// `adam.v.<name>`, and the step counters in the metadata. A checkpoint also loads as a model.
    public func writeCheckpoint(to url: URL, state: CheckpointState, extraMetadata: [String: String] = [:]) throws(WeightsError) {
        var tensors = net.namedTensors
        for (k, p) in net.parameters.enumerated() {
            tensors.append(("adam.m.\(p.name)", adam.m[k]))
            tensors.append(("adam.v.\(p.name)", adam.v[k]))
        }
        var meta = extraMetadata
        meta["format"] = CheckpointState.format
        meta["step"] = String(state.step)
        meta["images_seen"] = String(state.imagesSeen)
        meta["adam_step"] = String(adam.step)
        try SafeTensors.write(tensors, metadata: meta, to: url)
    }

    /// Restores weights, moments and counters from a checkpoint written by `writeCheckpoint`.
    public func restoreCheckpoint(_ file: SafeTensors) throws(WeightsError) -> CheckpointState {
        guard file.metadata["format"] == CheckpointState.format,
              let step = file.metadata["step"].flatMap(Int.init),
              let seen = file.metadata["images_seen"].flatMap(Int.init),
              let adamStep = file.metadata["adam_step"].flatMap(Int.init)
        else {
            throw .badHeader(file: file.file, reason: "not a training checkpoint (metadata format/step/images_seen/adam_step missing)")
        }
        try net.load(file)
        for (k, p) in net.parameters.enumerated() {
            try file.load("adam.m.\(p.name)", into: adam.m[k])
            try file.load("adam.v.\(p.name)", into: adam.v[k])
        }
        adam.restore(step: adamStep)
        return CheckpointState(step: step, imagesSeen: seen)
    }
}
