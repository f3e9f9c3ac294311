import Foundation
import NSTModel
import XCTest

/// Golden fixtures written by `scripts/golden.py` (PyTorch), read with our own safetensors reader.
enum Golden {
    static let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("Fixtures/golden")

    static func load(_ name: String, file: StaticString = #filePath, line: UInt = #line) throws -> SafeTensors {
        try SafeTensors.read(contentsOf: folder.appendingPathComponent("\(name).safetensors"))
    }

    /// Parameters as golden.py generates them: TransformerNet (base seed 1) and VGG16 (base seed 2).
    static func fillTransformer(_ net: TransformerNet) {
        for p in net.parameters {
            if p.name.hasSuffix(".conv2d.weight") {
                let fanIn = Double(p.shape[1] * p.shape[2] * p.shape[3])
                fillDeterministic(p.value, name: p.name, baseSeed: 1, offset: 0, bound: 1 / fanIn.squareRoot())
            } else if p.name.hasSuffix(".conv2d.bias") {
                let w = net.parameter(named: p.name.replacingOccurrences(of: ".bias", with: ".weight"))!
                let fanIn = Double(w.shape[1] * w.shape[2] * w.shape[3])
                fillDeterministic(p.value, name: p.name, baseSeed: 1, offset: 0, bound: 1 / fanIn.squareRoot())
            } else if p.name.hasSuffix(".weight") {
                fillDeterministic(p.value, name: p.name, baseSeed: 1, offset: 1, bound: 0.1)
            } else {
                fillDeterministic(p.value, name: p.name, baseSeed: 1, offset: 0, bound: 0.1)
            }
        }
    }

    static func fillVGG(_ vgg: VGG16) {
        for p in vgg.parameters {
            if p.shape.count == 4 {
                let fanIn = Double(p.shape[1] * 9)
                fillDeterministic(p.value, name: p.name, baseSeed: 2, offset: 0, bound: (6 / fanIn).squareRoot())
            } else {
                fillDeterministic(p.value, name: p.name, baseSeed: 2, offset: 0, bound: 0.1)
            }
        }
    }

    /// The generated parameters must equal golden.py's `head.<key>` bit for bit.
    static func checkHeads(_ params: [Parameter], _ f: SafeTensors, file: StaticString = #filePath, line: UInt = #line) {
        for p in params {
            guard let head = f.tensors["head.\(p.name)"] else {
                XCTFail("fixture has no head.\(p.name)", file: file, line: line); continue
            }
            XCTAssertEqual(Array(p.value.buffer.prefix(head.count)), head.array, "generated \(p.name)", file: file, line: line)
        }
    }
}

/// Asserts the relative L2 error ‖a − b‖/‖b‖ ≤ tol, b the PyTorch reference.
func assertClose(_ a: UnsafePointer<Float>, _ b: Tensor, _ tol: Double = 1e-4, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    let err = relativeL2Error(UnsafeBufferPointer(start: a, count: b.count), UnsafeBufferPointer(b.buffer))
    XCTAssertLessThanOrEqual(err, tol, "\(label): relative L2 error \(err)", file: file, line: line)
}

func assertClose(_ a: Tensor, _ b: Tensor, _ tol: Double = 1e-4, _ label: String,
                 file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, "\(label): sizes", file: file, line: line)
    assertClose(a.data, b, tol, label, file: file, line: line)
}

extension SafeTensors {
    subscript(_ key: String) -> Tensor {
        guard let t = tensors[key] else { fatalError("fixture \(file) has no key \(key)") }
        return t
    }
}
