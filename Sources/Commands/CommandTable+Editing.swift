import Display
import Foundation

/// What the editor asks while the user types: completion, inspection, is the cell complete.
extension CommandTable {
    public struct Suggestions: Equatable {
        public var matches: [String]
        /// Character offsets (Unicode scalars) in the cell of the text the matches replace.
        public var start: Int
        public var end: Int
        /// Per match: kind (command, option, value) and a signature.
        public var kinds: [String: (kind: String, signature: String)]

        public static func == (a: Suggestions, b: Suggestions) -> Bool {
            a.matches == b.matches && a.start == b.start && a.end == b.end
        }
    }

    /// Completes the word before `cursor` (a Unicode scalar offset into `code`).
    public func complete(_ code: String, cursor: Int) -> Suggestions {
        let scalars = Array(code.unicodeScalars)
        let cursor = min(max(0, cursor), scalars.count)
        var lineStart = cursor
        while lineStart > 0 && scalars[lineStart - 1] != "\n" { lineStart -= 1 }
        let before = String(String.UnicodeScalarView(scalars[lineStart..<cursor]))
        var wordStart = cursor
        while wordStart > lineStart && !scalars[wordStart - 1].properties.isWhitespace { wordStart -= 1 }
        let partial = String(String.UnicodeScalarView(scalars[wordStart..<cursor]))
        let head = String(before.unicodeScalars.dropLast(partial.unicodeScalars.count))
        guard let words = try? LineParser.tokenize(head).map(\.text) else {
            return Suggestions(matches: [], start: cursor, end: cursor, kinds: [:])
        }
        var kinds = [String: (kind: String, signature: String)]()
        var matches = [String]()
        var start = wordStart

        func offer(_ candidates: [(String, String, String)]) {
            for (text, kind, signature) in candidates where text.hasPrefix(partial.hasPrefix("?") ? String(partial.dropFirst()) : partial) && !matches.contains(text) {
                matches.append(text)
                kinds[text] = (kind, signature)
            }
        }

        if words.isEmpty {
            // The command's first word.
            offer(verbs.map { verb in (verb, "command", family(verb).count == 1 ? family(verb)[0].summary : "\(verb) …") })
            if partial.hasPrefix("?") { start += 1 }
        } else if words.count == 1, !partial.contains("="), family(words[0]).contains(where: { $0.nameWords.count == 2 }) {
            // A subcommand (`model lo|`), or, for a verb that is also a command itself (`lora`), its options.
            offer(family(words[0]).compactMap { $0.nameWords.count == 2 ? ($0.nameWords[1], "command", $0.summary) : nil })
            if let own = command(named: words[0]) {
                offer(own.options.map { ($0.name + "=", "option", "\($0.name)=\($0.typeDescription): \($0.help)") })
            }
        } else if let (command, used) = try? resolve(words.map { Token(text: $0, column: 0, raw: $0) }) {
            let given = Array(words.dropFirst(used))
            if let eq = partial.firstIndex(of: "=") {
                // A value: `key=par|`.
                let key = String(partial[..<eq])
                var valuePrefix = String(partial[partial.index(after: eq)...])
                start = wordStart + key.unicodeScalars.count + 1
                if let spec = command.options.first(where: { $0.name == key }), case .choiceList = spec.type,
                   let comma = valuePrefix.lastIndex(of: ",") {
                    // A list: complete its last item.
                    start += valuePrefix[...comma].unicodeScalars.count
                    valuePrefix = String(valuePrefix[valuePrefix.index(after: comma)...])
                }
                if let spec = command.options.first(where: { $0.name == key }) {
                    for value in spec.choices where value.hasPrefix(valuePrefix) {
                        matches.append(value)
                        kinds[value] = ("value", "\(key)=\(value)")
                    }
                }
            } else {
                let usedKeys = Set(given.compactMap { $0.split(separator: "=", maxSplits: 1).count == 2 ? String($0.split(separator: "=")[0]) : nil })
                let positionalCount = given.filter { !$0.contains("=") }.count
                if positionalCount < command.positionals.count {
                    let spec = command.positionals[positionalCount]
                    if command.name == "help" {
                        offer(verbs.map { ($0, "command", "help \($0)") })
                    }
                    offer(spec.choices.map { ($0, "value", spec.help) })
                } else if command.name == "help", given.count == 1, family(given[0]).count > 1 {
                    offer(family(given[0]).compactMap { $0.nameWords.count == 2 ? ($0.nameWords[1], "command", $0.summary) : nil })
                }
                offer(command.options.filter { !usedKeys.contains($0.name) }.map { ($0.name + "=", "option", "\($0.name)=\($0.typeDescription): \($0.help)") })
            }
        }
        return Suggestions(matches: matches, start: start, end: cursor, kinds: kinds)
    }

    /// The help page of the command on the cursor's line, or nil when that line names none.
    public func inspect(_ code: String, cursor: Int) -> MimeBundle? {
        let scalars = Array(code.unicodeScalars)
        let cursor = min(max(0, cursor), scalars.count)
        var lineStart = cursor
        while lineStart > 0 && scalars[lineStart - 1] != "\n" { lineStart -= 1 }
        var lineEnd = cursor
        while lineEnd < scalars.count && scalars[lineEnd] != "\n" { lineEnd += 1 }
        let line = String(String.UnicodeScalarView(scalars[lineStart..<lineEnd]))
            .trimmingCharacters(in: CharacterSet(charactersIn: "?").union(.whitespaces))
        guard let tokens = try? LineParser.tokenize(line), !tokens.isEmpty else { return nil }
        if let (command, _) = try? resolve(tokens) {
            // `help model load` inspects `model load`, not `help`.
            if command.name == "help", tokens.count > 1, let target = try? help(for: tokens.dropFirst().map(\.text).joined(separator: " ")) {
                return target
            }
            return page(for: command)
        }
        let members = family(tokens[0].text)
        return members.isEmpty ? nil : try? help(for: tokens[0].text)
    }

    /// Whether a cell can run as is: unterminated quotes and trailing `\` are incomplete,
    /// a line that names no command is invalid.
    public func completeness(_ code: String) -> Completeness {
        if LineParser.endsWithContinuation(code) { return .incomplete }
        for line in LineParser.logicalLines(code) {
            let tokens: [Token]
            do {
                tokens = try LineParser.tokenize(line.text)
            } catch {
                return .incomplete
            }
            guard !tokens.isEmpty else { continue }
            if let page = CellRunner.pagerTarget(tokens) {
                if (try? help(for: page)) == nil { return .invalid }
                continue
            }
            if (try? resolve(tokens)) == nil { return .invalid }
        }
        return .complete
    }

    public enum Completeness: Equatable { case complete, incomplete, invalid }
}

extension Token {
    init(text: String, column: Int, raw: String) {
        self.init(text: text, key: nil, value: nil, column: column, raw: raw)
    }
}
