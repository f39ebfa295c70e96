import Display
import Foundation

/// The command language's table. Parsing, help, completion and inspection all read it.
public struct CommandTable {
    public private(set) var commands: [Command]

    public init(_ commands: [Command]) {
        self.commands = commands.sorted { $0.name < $1.name }
    }

    public func command(named name: String) -> Command? {
        commands.first { $0.name == name }
    }

    /// Distinct first words, in order.
    var verbs: [String] {
        var seen = Set<String>()
        return commands.compactMap { seen.insert($0.nameWords[0]).inserted ? $0.nameWords[0] : nil }
    }

    /// Commands whose first word is `verb` (a family such as `model load`, `model tiny`).
    func family(_ verb: String) -> [Command] {
        commands.filter { $0.nameWords[0] == verb }
    }

    /// Finds the command a line starts with; returns it and how many tokens its name took.
    public func resolve(_ tokens: [Token]) throws -> (Command, Int) {
        guard let first = tokens.first else { throw CommandError(.syntax, "empty line") }
        let verb = first.text
        let members = family(verb)
        if members.isEmpty {
            throw CommandError(.unknownCommand, "unknown command `\(verb)`", word: first.raw,
                               suggestion: nearest(verb, in: verbs), column: first.column)
        }
        if tokens.count > 1, let two = members.first(where: { $0.nameWords.count == 2 && $0.nameWords[1] == tokens[1].text }) {
            return (two, 2)
        }
        if let one = members.first(where: { $0.nameWords.count == 1 }) { return (one, 1) }
        let subverbs = members.map { $0.nameWords[1] }
        if tokens.count > 1 {
            let word = tokens[1]
            throw CommandError(.unknownCommand, "`\(verb)` has no subcommand `\(word.raw)` (it has \(subverbs.joined(separator: ", ")))",
                               word: word.raw, suggestion: nearest(word.text, in: subverbs).map { "\(verb) \($0)" },
                               column: word.column)
        }
        throw CommandError(.missingArgument, "`\(verb)` needs a subcommand: \(subverbs.joined(separator: ", "))",
                           word: first.raw, column: first.column)
    }
}

// MARK: - Help, generated from the rows

extension CommandTable {
    /// The overview: every command with its one-line help.
    public func overview() -> MimeBundle {
        let table = Table(title: "Sculpt commands", columns: ["command", "what it does"],
                          rows: commands.map { [$0.shortUsage, $0.summary] })
        let footer = "Type `help COMMAND` for a command's page with its options; Tab completes, Shift-Tab shows help. "
            + "Charts keep their raw points in the output's metadata (`sculpt` key in the saved notebook); "
            + "`pareto NAME csv PATH` writes a search's points to a file."
        return MimeBundle(plain: table.plainText + "\n\n" + footer.replacingOccurrences(of: "`", with: ""))
            .adding("text/markdown", .text(table.markdown + "\n\n" + footer))
            .adding("text/html", .text(table.html + "<p>\(htmlWithCode(footer))</p>"))
    }

    /// One command's page: usage, summary, details, arguments, examples.
    public func page(for command: Command) -> MimeBundle {
        var plain = ["\(command.usage)", "", command.summary]
        var markdown = ["### `\(command.name)`", "", "`\(command.usage)`", "", command.summary]
        if !command.details.isEmpty {
            plain += ["", command.details]
            markdown += ["", command.details]
        }
        if !command.arguments.isEmpty {
            let rows = command.arguments.map { spec -> [String] in
                let name = spec.kind == .option ? "\(spec.name)=" : spec.name.uppercased()
                let notes = spec.defaultValue.map { " (default \($0))" } ?? (spec.required ? " (required)" : "")
                return [name, spec.typeDescription, spec.help + notes]
            }
            let table = Table(columns: ["argument", "type", "meaning"], rows: rows)
            plain += ["", table.plainText]
            markdown += ["", table.markdown]
        }
        if !command.examples.isEmpty {
            plain += ["", "Examples:"] + command.examples.map { "  " + $0 }
            markdown += ["", "Examples:", "", "```", command.examples.joined(separator: "\n"), "```"]
        }
        return MimeBundle.markdown(markdown.joined(separator: "\n"), plain: plain.joined(separator: "\n"))
    }

    /// The help for `help WORDS`: a command's page, a family's list, or an error with a hint.
    public func help(for words: String) throws -> MimeBundle {
        let tokens = try LineParser.tokenize(words)
        if let exact = command(named: tokens.map(\.text).joined(separator: " ")) { return page(for: exact) }
        guard let first = tokens.first else { return overview() }
        let members = family(first.text)
        if members.count == 1, tokens.count == 1 { return page(for: members[0]) }
        if !members.isEmpty && tokens.count == 1 {
            let table = Table(title: "`\(first.text)` commands", columns: ["command", "what it does"],
                              rows: members.map { [$0.shortUsage, $0.summary] })
            return table.bundle
        }
        do {
            _ = try resolve(tokens)
        } catch var error as CommandError {
            error.message = "no help for `\(words)`: " + error.message
            throw error
        }
        throw CommandError(.unknownCommand, "no help for `\(words)`")
    }
}
