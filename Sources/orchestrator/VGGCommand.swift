import APIClient
import ArgumentParser
import CoordinatorAPI
import Foundation
import NSTModel

/// `orchestrator vgg fetch`: torchvision's VGG16 weights into the torch hub cache, where
/// `VGGSource.resolve` (train, demo, worker) finds them by default.
struct VGGCommands: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vgg",
        abstract: "The VGG16 loss network's weights.",
        subcommands: [VGGFetch.self])
}

struct VGGFetch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch",
        abstract: "Download torchvision's ImageNet VGG16 (vgg16-397923af.pth, 528 MB) into the torch hub cache.",
        discussion: """
            The file goes where torchvision keeps it: $TORCH_HOME/hub/checkpoints, else \
            $XDG_CACHE_HOME/torch/hub/checkpoints, else ~/.cache/torch/hub/checkpoints; train, demo \
            and worker find it there without --vgg-weights. It is written to a temporary file and \
            renamed into place only if its SHA-256 starts with the hash in its name (397923af), as \
            torchvision checks it; a file already there and valid is left alone.
            """)

    @Option(help: "Where to download from; the file is named after the URL's last path component.")
    var url = TorchHub.vgg16URL

    @Option(name: .customLong("hash-prefix"),
            help: "The start of the file's SHA-256, lowercase hex (default: the hash in the file name, as torchvision's check_hash).")
    var hashPrefix: String?

    @Option(help: "The folder to download into (default: the torch hub checkpoints folder).")
    var dir: String?

    func validate() throws {
        guard VerifiedDownload.fileName(of: url) != nil else {
            throw ValidationError("--url must be an http(s) URL ending in a file name, got \"\(Sanitize.oneLine(url))\"")
        }
        if let hashPrefix, !VerifiedDownload.isHashPrefix(hashPrefix) {
            throw ValidationError("--hash-prefix must be 1 to 64 lowercase hex digits, got \"\(Sanitize.oneLine(hashPrefix))\"")
        }
    }

    func run() async throws {
        let name = VerifiedDownload.fileName(of: url)!
        guard let prefix = hashPrefix ?? TorchHub.hashPrefix(inFileName: name) else {
            throw CLIError("\(name) has no hash in its name (as in vgg16-397923af.pth); give --hash-prefix HEX")
        }
        guard let folder = dir.map({ URL(fileURLWithPath: $0) }) ?? TorchHub.checkpointsDirectory() else {
            throw CLIError("no torch hub folder: HOME, TORCH_HOME and XDG_CACHE_HOME are all unset; give --dir DIR")
        }
        let destination = folder.appendingPathComponent(name)
        do {
            try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        } catch { throw CLIError("cannot create \(folder.path): \((error as NSError).localizedDescription)") }

        if FileManager.default.fileExists(atPath: destination.path) {
            let existing: String
            do { existing = try FileDigest.sha256(of: destination).sha256 } catch {
                throw CLIError("cannot read \(destination.path): \((error as NSError).localizedDescription)")
            }
            if existing.hasPrefix(prefix) {
                print("already present and valid: \(destination.path) (sha256 \(existing.prefix(16))…); nothing to do")
                return
            }
            printErr("\(destination.path) is there but its sha256 \(existing.prefix(16))… does not start with \(prefix): downloading it again")
        }

        printErr("downloading \(Sanitize.oneLine(url))")
        printErr("        to \(destination.path)")
        var bar = ByteProgress()
        let result: (sha256: String, bytes: Int64)
        do {
            result = try await VerifiedDownload.download(url, to: destination, hashPrefix: prefix) { received, total in
                bar.update(received: received, total: total)
            }
        } catch {
            bar.finish()
            throw CLIError(error)
        }
        bar.update(received: result.bytes, total: result.bytes, force: true)
        bar.finish()
        print(String(format: "downloaded %@ (%.1f MB, sha256 %@…, starts with %@ as expected) to %@",
                     name, Double(result.bytes) / 1e6, String(result.sha256.prefix(16)), prefix, folder.path))
    }
}
