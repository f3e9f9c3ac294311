import Foundation
import NSTModel
import XCTest

/// Where torch keeps downloaded weights, torchvision's hash-prefix rule, and `VGGSource`
/// falling back on the torch hub file.
final class TorchHubTests: XCTestCase {
    func testCheckpointsDirectoryFollowsTorchHub() {
        func dir(_ env: [String: String]) -> String? { TorchHub.checkpointsDirectory(environment: env)?.path }
        XCTAssertEqual(dir(["HOME": "/home/u"]), "/home/u/.cache/torch/hub/checkpoints")
        XCTAssertEqual(dir(["HOME": "/home/u", "XDG_CACHE_HOME": "/xdg"]), "/xdg/torch/hub/checkpoints")
        XCTAssertEqual(dir(["HOME": "/home/u", "XDG_CACHE_HOME": "/xdg", "TORCH_HOME": "/th"]), "/th/hub/checkpoints",
                       "TORCH_HOME wins over XDG_CACHE_HOME")
        XCTAssertEqual(dir(["HOME": "/home/u", "TORCH_HOME": "~/t"]), "/home/u/t/hub/checkpoints", "expanduser")
        XCTAssertEqual(dir(["HOME": "/home/u", "TORCH_HOME": ""]), "/home/u/.cache/torch/hub/checkpoints", "empty is unset")
        XCTAssertEqual(dir(["XDG_CACHE_HOME": "/xdg"]), "/xdg/torch/hub/checkpoints")
        XCTAssertNil(dir([:]), "no HOME: no guess")
    }

    func testHashPrefixIsTorchHubsRegex() {
        XCTAssertEqual(TorchHub.hashPrefix(inFileName: "vgg16-397923af.pth"), "397923af")
        XCTAssertEqual(TorchHub.hashPrefix(inFileName: "resnet50-0676ba61.pth"), "0676ba61")
        XCTAssertEqual(TorchHub.hashPrefix(inFileName: "my-model-abc123.tar.gz"), "abc123", "the first -HEX. match")
        XCTAssertNil(TorchHub.hashPrefix(inFileName: "vgg16.pth"))
        XCTAssertNil(TorchHub.hashPrefix(inFileName: "vgg16-39792AF.pth"), "upper case is not in [a-f0-9]")
        XCTAssertNil(TorchHub.hashPrefix(inFileName: "a-.b-12.pth"), "the regex's first match is empty: no check")
        XCTAssertEqual(TorchHub.hashPrefix(inFileName: TorchHub.vgg16FileName), "397923af")
    }

    func testResolveFallsBackOnTheTorchHubFileAfterPathAndEnvironment() throws {
        let home = FileManager.default.temporaryDirectory.appendingPathComponent("nst-torchhub-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: home) }
        let env = ["TORCH_HOME": home.path]
        let hubFile = home.appendingPathComponent("hub/checkpoints/vgg16-397923af.pth")

        // Missing: the message names the file looked for, and how to get it
        XCTAssertThrowsError(try VGGSource.resolve(path: nil, random: false, environment: env)) {
            XCTAssertEqual($0 as? VGGSource.ResolveError, .missing(lookedAt: hubFile.path))
            XCTAssertTrue("\($0)".contains("no file at \(hubFile.path)"), "\($0)")
            XCTAssertTrue("\($0)".contains("orchestrator vgg fetch"), "\($0)")
        }

        // Present: used when nothing else is given; --vgg-weights, NST_VGG16_WEIGHTS and --random-vgg come first
        try FileManager.default.createDirectory(at: hubFile.deletingLastPathComponent(), withIntermediateDirectories: true)
        try FileManager.default.copyItem(at: PthFixture.url("vgg-full.pth"), to: hubFile)
        XCTAssertEqual(try VGGSource.resolve(path: nil, random: false, environment: env), .file(hubFile.path))
        XCTAssertEqual(try VGGSource.resolve(path: "/given.pth", random: false, environment: env), .file("/given.pth"))
        XCTAssertEqual(try VGGSource.resolve(path: nil, random: false, environment: env.merging(["NST_VGG16_WEIGHTS": "/env.pth"]) { $1 }),
                       .file("/env.pth"))
        XCTAssertEqual(try VGGSource.resolve(path: nil, random: true, environment: env), .random(seed: VGGSource.randomSeed))

        // And the file, in torchvision's layout (features.* and classifier.*), loads
        let vgg = try VGGSource.resolve(path: nil, random: false, environment: env).load()
        XCTAssertEqual(vgg.parameters.map { $0.value.array }, try VGG16(contentsOf: PthFixture.url("vgg-full.pth")).parameters.map { $0.value.array })
    }
}
