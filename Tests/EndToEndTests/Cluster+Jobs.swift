import Foundation
import NSTModel
import XCTest

// MARK: - Jobs through the CLI

/// One row of `orchestrator status --json` (the fields scripts may rely on).
struct JobRow: Decodable, Equatable {
    var id: Int64
    var name: String
    var state: String
    var attempt: Int
    var step: Int
    var stepsTotal: Int?
    var imagesDone: Int?
    var imagesTotal: Int?
    var worker: String?
    var resumedFromStep: Int
    var content: Double?
    var style: Double?
    var total: Double?
    var modelSha256: String?
    var failureReason: String?
}

private struct StatusDocument: Decodable { var jobs: [JobRow] }

/// A fetched loss curve: `step,images,content,style,total`.
struct LossRow: Equatable {
    var step: Int
    var images: Int
    var content: Double
    var style: Double
    var total: Double
}

extension Cluster {
    func submit(_ config: URL, file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try cli(["submit", config.path])
        XCTAssertEqual(r.status, 0, "submit failed: \(r.stderr)", file: file, line: line)
    }

    func status() throws -> [JobRow] {
        let r = try cli(["status", "--json"], timeout: 20)
        guard r.status == 0 else { throw HarnessError("status --json exited \(r.status): \(r.stderr)") }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        do { return try decoder.decode(StatusDocument.self, from: Data(r.stdout.utf8)).jobs }
        catch { throw HarnessError("status --json is not the documented shape (\(error)): \(r.stdout)") }
    }

    /// `orchestrator status` as a person sees it.
    func statusText() throws -> String {
        let r = try cli(["status"], timeout: 20)
        return r.stdout + r.stderr
    }

    /// Polls `status --json` until every job is in a terminal state; throws on timeout.
    @discardableResult
    func waitForAllFinished(timeout: TimeInterval = 120) throws -> [JobRow] {
        let deadline = Date().addingTimeInterval(timeout)
        var rows: [JobRow] = []
        while Date() < deadline {
            if let now = try? status() {
                rows = now
                if !rows.isEmpty, rows.allSatisfy({ ["succeeded", "failed", "cancelled"].contains($0.state) }) {
                    return rows
                }
            }
            usleep(250_000)
        }
        throw HarnessError("jobs not finished after \(timeout) s: \(rows.map { "\($0.name) \($0.state) step \($0.step)" })")
    }

    /// `orchestrator fetch --all --out DIR`; returns DIR.
    func fetchAll(file: StaticString = #filePath, line: UInt = #line) throws -> URL {
        let out = root.appendingPathComponent("fetched-\(UUID().uuidString.prefix(6))")
        let r = try cli(["fetch", "--all", "--out", out.path])
        XCTAssertEqual(r.status, 0, "fetch failed: \(r.stderr)", file: file, line: line)
        return out
    }

    /// Waits until `child`'s log holds a line containing `text`; returns that line.
    func waitForLog(_ child: ChildProcess, containing text: String, timeout: TimeInterval = 60) throws -> String {
        var found: String?
        _ = waitUntil(timeout: timeout) {
            found = child.stderr.split(separator: "\n").first { $0.contains(text) }.map(String.init)
            return found != nil
        }
        guard let found else { throw HarnessError("\(child.label) never logged \"\(text)\"; log:\n\(child.stderr.suffix(3000))") }
        return found
    }
}

// MARK: - Checking fetched results

/// Reads `NAME.losses.csv`, checking its header.
func readLosses(_ url: URL) throws -> [LossRow] {
    let text = try String(contentsOf: url, encoding: .utf8)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true)
    guard lines.first == "step,images,content,style,total" else {
        throw HarnessError("\(url.lastPathComponent): header is \(lines.first ?? "missing")")
    }
    lines.removeFirst()
    return try lines.map { line in
        let f = line.split(separator: ",")
        guard f.count == 5, let step = Int(f[0]), let images = Int(f[1]),
              let c = Double(f[2]), let s = Double(f[3]), let t = Double(f[4]) else {
            throw HarnessError("\(url.lastPathComponent): bad row \(line)")
        }
        return LossRow(step: step, images: images, content: c, style: s, total: t)
    }
}

/// SHA-256 of a file, by `sha256sum` (the test target has no crypto library).
func sha256(of url: URL, logDir: URL) throws -> String {
    let r = try runCommand(URL(fileURLWithPath: "/usr/bin/sha256sum"), [url.path], environment: [:], logDir: logDir)
    guard r.status == 0, let digest = r.stdout.split(separator: " ").first else {
        throw HarnessError("sha256sum \(url.path) failed: \(r.stderr)")
    }
    return String(digest)
}

/// Checks one succeeded job's fetched model and loss curve: the model loads and differs from
/// the untrained initialisation, its digest is the job's, and the CSV has steps 1…N once each,
/// with `images` = step × batch and total = content + style.
func checkFetched(_ job: JobRow, in dir: URL, steps: Int, batch: Int = 2, logDir: URL,
                  file: StaticString = #filePath, line: UInt = #line) throws -> [LossRow] {
    XCTAssertEqual(job.state, "succeeded", "\(job.name)", file: file, line: line)
    XCTAssertEqual(job.step, steps, "\(job.name) step", file: file, line: line)
    let modelURL = dir.appendingPathComponent("\(job.name).safetensors")
    let model = try TransformerNet(contentsOf: modelURL)
    let fresh = TransformerNet(seed: 42)
    let w = model.parameters[0].value, w0 = fresh.parameters[0].value
    let changed = (0..<w.count).contains { w.data[$0] != w0.data[$0] }
    XCTAssertTrue(changed, "\(job.name): fetched model equals the untrained initialisation", file: file, line: line)
    if let expected = job.modelSha256 {
        XCTAssertEqual(try sha256(of: modelURL, logDir: logDir), expected, "\(job.name) model digest", file: file, line: line)
    } else {
        XCTFail("\(job.name): status --json has no model_sha256", file: file, line: line)
    }
    let rows = try readLosses(dir.appendingPathComponent("\(job.name).losses.csv"))
    XCTAssertEqual(rows.map(\.step), Array(1...steps), "\(job.name): one row per step", file: file, line: line)
    XCTAssertEqual(rows.map(\.images), (1...steps).map { $0 * batch }, "\(job.name) images", file: file, line: line)
    for r in rows {
        XCTAssertTrue(r.total.isFinite && r.total > 0, "\(job.name) step \(r.step) total \(r.total)", file: file, line: line)
        XCTAssertEqual(r.total, r.content + r.style, accuracy: 1e-4 * r.total, "\(job.name) step \(r.step)", file: file, line: line)
    }
    return rows
}
