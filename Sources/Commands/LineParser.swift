import Foundation

/// One word of a command line: a bare word, a quoted string, or `key=value`.
public struct Token: Equatable, Sendable {
    /// The word with quotes removed and escapes applied.
    public var text: String
    /// For `key=value`: the key and the (unquoted) value.
    public var key: String?
    public var value: String?
    /// Character offset of the word in its logical line, for pointing at it in errors.
    public var column: Int
    /// The word as typed.
    public var raw: String
}

/// One logical line: physical lines joined by trailing `\`, with its first physical line number.
public struct SourceLine: Equatable, Sendable {
    public var number: Int
    public var text: String
}

/// Splits cells into logical lines and lines into tokens.
public enum LineParser {
    /// Joins `\`-continued lines; drops nothing else. Line numbers start at 1.
    public static func logicalLines(_ code: String) -> [SourceLine] {
        var out = [SourceLine]()
        var pending: SourceLine?
        let physical = code.split(separator: "\n", omittingEmptySubsequences: false)
        for (index, rawLine) in physical.enumerated() {
            var line = String(rawLine)
            if line.hasSuffix("\r") { line.removeLast() }
            let continues = line.hasSuffix("\\") && !line.hasSuffix("\\\\")
            if continues { line.removeLast() }
            if var current = pending {
                current.text += " " + line
                pending = current
            } else {
                pending = SourceLine(number: index + 1, text: line)
            }
            if !continues, let done = pending {
                out.append(done)
                pending = nil
            }
        }
        if let done = pending { out.append(done) }
        return out
    }

    /// Whether the cell ends inside a continuation.
    public static func endsWithContinuation(_ code: String) -> Bool {
        let last = code.split(separator: "\n", omittingEmptySubsequences: false).last.map(String.init) ?? ""
        let trimmed = last.hasSuffix("\r") ? String(last.dropLast()) : last
        return trimmed.hasSuffix("\\") && !trimmed.hasSuffix("\\\\")
    }

    public enum Failure: Error, Equatable {
        case unterminatedQuote(column: Int)
    }

    /// Splits a logical line into tokens, stopping at a `#` comment.
    public static func tokenize(_ line: String) throws -> [Token] {
        let chars = Array(line)
        var tokens = [Token]()
        var i = 0
        while i < chars.count {
            if chars[i].isWhitespace { i += 1; continue }
            if chars[i] == "#" { break }
            let start = i
            var text = ""
            var keyEnd: Int? = nil
            while i < chars.count && !chars[i].isWhitespace {
                let c = chars[i]
                if c == "\"" || c == "'" {
                    let quote = c
                    i += 1
                    var closed = false
                    while i < chars.count {
                        if chars[i] == "\\" && quote == "\"" && i + 1 < chars.count {
                            let next = chars[i + 1]
                            text.append(next == "n" ? "\n" : next == "t" ? "\t" : next)
                            i += 2
                            continue
                        }
                        if chars[i] == quote { closed = true; i += 1; break }
                        text.append(chars[i])
                        i += 1
                    }
                    if !closed { throw Failure.unterminatedQuote(column: start) }
                    continue
                }
                if c == "=" && keyEnd == nil && !text.isEmpty { keyEnd = text.count }
                text.append(c)
                i += 1
            }
            let raw = String(chars[start..<i])
            var token = Token(text: text, key: nil, value: nil, column: start, raw: raw)
            if let keyEnd {
                let key = String(text.prefix(keyEnd))
                // Only identifier-like keys make an option; "a+b=c" stays a word.
                if key.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "_" || $0 == "-" }) {
                    token.key = key
                    token.value = String(text.dropFirst(keyEnd + 1))
                }
            }
            tokens.append(token)
        }
        return tokens
    }
}
