import Foundation
import JupyterProtocol

/// The inputs (and text outputs) of this kernel session, for history_request.
/// Entries are `[session, line, input]` or `[session, line, [input, output]]`.
struct ExecutionHistory {
    /// One kernel process is one history session.
    static let session = 1

    struct Entry {
        let line: Int
        let input: String
        var output: String?
    }

    private(set) var entries = [Entry]()

    mutating func record(line: Int, input: String, output: String?) {
        entries.append(Entry(line: line, input: input, output: output))
    }

    /// Answers a history_request's content.
    func answer(_ request: JSONValue) -> [JSONValue] {
        let wantsOutput = request["output"]?.boolValue ?? false
        let selected: [Entry]
        switch request["hist_access_type"]?.stringValue ?? "tail" {
        case "tail":
            selected = Array(entries.suffix(max(0, request["n"]?.intValue ?? 10)))
        case "range":
            let session = request["session"]?.intValue ?? 0
            // 0 or a negative offset of 0 means the current session; there is no other.
            guard session == ExecutionHistory.session || session == 0 else { return [] }
            let start = request["start"]?.intValue ?? 1
            let stop = request["stop"]?.intValue
            selected = entries.filter { $0.line >= start && (stop == nil || $0.line < stop!) }
        case "search":
            let matcher = GlobPattern(request["pattern"]?.stringValue ?? "*")
            var found = entries.filter { matcher.matches($0.input) }
            if request["unique"]?.boolValue ?? false {
                // Keep the latest occurrence of each input.
                var seen = Set<String>()
                found = found.reversed().filter { seen.insert($0.input).inserted }.reversed()
            }
            if let n = request["n"]?.intValue, n > 0 { found = Array(found.suffix(n)) }
            selected = found
        default:
            selected = []
        }
        return selected.map { entry in
            let body: JSONValue = wantsOutput
                ? [.string(entry.input), entry.output.map(JSONValue.string) ?? .null]
                : .string(entry.input)
            return [.int(ExecutionHistory.session), .int(entry.line), body]
        }
    }
}

/// Shell-style globs as IPython's history search uses them: `*` any run, `?` one character.
struct GlobPattern {
    private let pattern: [Character]

    init(_ pattern: String) { self.pattern = Array(pattern) }

    func matches(_ text: String) -> Bool {
        let s = Array(text)
        var p = 0, t = 0, star = -1, mark = 0
        while t < s.count {
            if p < pattern.count && (pattern[p] == "?" || pattern[p] == s[t]) {
                p += 1; t += 1
            } else if p < pattern.count && pattern[p] == "*" {
                star = p; mark = t; p += 1
            } else if star >= 0 {
                p = star + 1; mark += 1; t = mark
            } else {
                return false
            }
        }
        while p < pattern.count && pattern[p] == "*" { p += 1 }
        return p == pattern.count
    }
}
