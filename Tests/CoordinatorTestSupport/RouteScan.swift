import Foundation

// MARK: - Routes in the sources

/// `METHOD /pattern` of every route added in `dir`: `router.get("/x")` in Coordinator.swift
/// and `XController(core: core, …).addRoutes(to: router.group("prefix"))` joined with each
/// controller's `group.post("suffix", …)` (a call without a path is the group itself).
public func registeredRoutes(in dir: URL) throws -> Set<String> {
    let main = try String(contentsOf: dir.appendingPathComponent("Coordinator.swift"), encoding: .utf8)
    var routes = Set<String>()
    let call = try NSRegularExpression(pattern: #"\b(?:router|group)\.(get|post|put|head|delete|patch)\(\s*(?:"([^"]*)")?"#)
    func calls(_ text: String) -> [(String, String)] {
        call.matches(in: text, range: NSRange(text.startIndex..., in: text)).map { m in
            let method = String(text[Range(m.range(at: 1), in: text)!]).uppercased()
            let path = Range(m.range(at: 2), in: text).map { String(text[$0]) } ?? ""
            return (method, path)
        }
    }
    for (method, path) in calls(main) {
        routes.insert("\(method) \(path)")
    }
    let mount = try NSRegularExpression(pattern: #"(\w+Controller)\(core: core[^)]*\)\.addRoutes\(to: router(?:\.group\("([^"]*)"\))?\)"#)
    for m in mount.matches(in: main, range: NSRange(main.startIndex..., in: main)) {
        let controller = String(main[Range(m.range(at: 1), in: main)!])
        let prefix = Range(m.range(at: 2), in: main).map { "/" + main[$0] } ?? ""
        let text = try String(contentsOf: dir.appendingPathComponent("\(controller).swift"), encoding: .utf8)
        for (method, path) in calls(text) {
            let joined = path.isEmpty ? prefix : (path.hasPrefix("/") ? prefix + path : prefix + "/" + path)
            routes.insert("\(method) \(joined.isEmpty ? "/" : joined)")
        }
    }
    return routes
}

/// `Sources/Coordinator` of this checkout.
public let coordinatorSourcesDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().appendingPathComponent("Sources/Coordinator")
