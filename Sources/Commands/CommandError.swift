import Foundation

/// A command line that could not run. It names the line and the word at fault and, where one
/// is close, the valid word the user probably meant.
public struct CommandError: Error, CustomStringConvertible, Equatable {
    public enum Kind: String, Sendable {
        /// The first word(s) are not a command.
        case unknownCommand = "UnknownCommand"
        /// A `key=` the command does not take.
        case unknownOption = "UnknownOption"
        /// A value of the wrong type or outside its choices.
        case badValue = "BadValue"
        /// A required argument is absent.
        case missingArgument = "MissingArgument"
        /// More positional words than the command takes.
        case unexpectedArgument = "UnexpectedArgument"
        /// Quotes or continuation lines that do not close.
        case syntax = "SyntaxError"
        /// The command ran and failed.
        case failed = "CommandFailed"
        /// The user interrupted the command; what it finished is kept.
        case interrupted = "Interrupted"
    }

    public var kind: Kind
    public var message: String
    public var word: String?
    public var suggestion: String?
    /// Filled in by the runner: which line of the cell, its text and the word's column.
    public var line: Int?
    public var sourceLine: String?
    public var column: Int?

    public init(_ kind: Kind, _ message: String, word: String? = nil, suggestion: String? = nil, column: Int? = nil) {
        self.kind = kind
        self.message = CommandError.shortened(message)
        self.word = word
        self.suggestion = suggestion.map { CommandError.shortened($0, keep: 60) }
        self.column = column
    }

    /// A message quotes the user's words; a pasted 100 KB word must not come back whole. Each
    /// quoted run longer than `keep` characters keeps its start and end around an ellipsis that
    /// says how much was left out.
    static func shortened(_ text: String, keep: Int = 80) -> String {
        guard text.count > keep else { return text }
        let keep = keep
        let parts = text.components(separatedBy: "`")
        let quoted = parts.enumerated().map { i, part -> String in
            // Quoted runs are the user's words; the prose around them gets more room.
            let limit = i % 2 == 1 ? keep : 5 * keep
            guard part.count > limit else { return part }
            let head = part.prefix(keep / 2), tail = part.suffix(keep / 4)
            return "\(head)…(\(part.count - head.count - tail.count) characters)…\(tail)"
        }
        return quoted.joined(separator: "`")
    }

    /// One line: where, what, and the likely fix.
    public var description: String {
        var text = line.map { "line \($0): " } ?? ""
        text += message
        if let suggestion { text += "; did you mean `\(suggestion)`?" }
        return text
    }

    /// The lines of a Jupyter traceback: the source line, a caret under the word, the message.
    public var traceback: [String] {
        var out = [String]()
        if let sourceLine, let line, sourceLine.count <= 400 {
            let prefix = "  \(line) | "
            out.append(prefix + sourceLine)
            if let column {
                let width = max(1, (word ?? " ").count)
                out.append(String(repeating: " ", count: prefix.count + column) + "\u{1b}[31m" + String(repeating: "^", count: width) + "\u{1b}[0m")
            }
        }
        out.append("\u{1b}[31m\(kind.rawValue)\u{1b}[0m: \(description)")
        return out
    }
}

/// The closest candidate within a small edit distance, for "did you mean" hints.
func nearest(_ word: String, in candidates: [String]) -> String? {
    let lowered = word.lowercased()
    var best: (String, Int)?
    for candidate in candidates {
        let distance = editDistance(lowered, candidate.lowercased())
        if distance <= max(2, candidate.count / 3), distance < (best?.1 ?? .max) { best = (candidate, distance) }
    }
    return best?.0
}

/// Levenshtein distance over characters.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    var current = [Int](repeating: 0, count: b.count + 1)
    for i in 1...a.count {
        current[0] = i
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        swap(&previous, &current)
    }
    return previous[b.count]
}
