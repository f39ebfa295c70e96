import Display
import Foundation
import Workbench

/// Where a command sends what it shows while it runs. The kernel maps these onto Jupyter
/// messages; the terminal REPL prints them.
public protocol CommandOutput: AnyObject {
    /// Text on stdout or stderr, batched by the receiver.
    func print(_ text: String, toStderr: Bool)
    /// A rich output; with an id it can be updated in place later.
    func display(_ bundle: MimeBundle, id: String?)
    /// Replaces every output shown with this id.
    func update(_ bundle: MimeBundle, id: String)
    /// Clears the cell's output, at once or (`wait`) when the next output arrives.
    func clear(wait: Bool)
    /// Asks the user for a line; throws when the frontend cannot answer prompts.
    func input(prompt: String, password: Bool) throws -> String
}

/// What a command's handler works with.
public struct CommandContext {
    public let session: Session
    public let output: CommandOutput
    public let table: CommandTable
}

/// One row of the command table: the name, one-line help, arguments and the handler.
/// The help pages, completion and the parser are all generated from these rows.
public struct Command {
    /// One or two words: `status`, `model load`.
    public let name: String
    public let summary: String
    public let details: String
    public let arguments: [ArgumentSpec]
    public let examples: [String]
    /// Runs the command; a returned bundle becomes the cell's result.
    public let run: (Arguments, CommandContext) throws -> MimeBundle?

    public init(_ name: String, summary: String, details: String = "", arguments: [ArgumentSpec] = [],
                examples: [String] = [], run: @escaping (Arguments, CommandContext) throws -> MimeBundle?) {
        self.name = name
        self.summary = summary
        self.details = details
        self.arguments = arguments
        self.examples = examples
        self.run = run
    }

    public var nameWords: [String] { name.split(separator: " ").map(String.init) }

    public var usage: String {
        ([name] + arguments.filter { $0.kind == .positional }.map(\.usage)
            + arguments.filter { $0.kind == .option }.map(\.usage)).joined(separator: " ")
    }

    /// The usage for a list of commands: the name and positionals, with the options folded into
    /// `[options]` so the column stays narrow; the command's page lists them.
    public var shortUsage: String {
        ([name] + positionals.map(\.usage) + (options.isEmpty ? [] : ["[options]"])).joined(separator: " ")
    }

    var options: [ArgumentSpec] { arguments.filter { $0.kind == .option } }
    var positionals: [ArgumentSpec] { arguments.filter { $0.kind == .positional } }

    /// Binds the words after the command name to its arguments.
    func parseArguments(_ tokens: [Token]) throws -> Arguments {
        var values = [String: ArgumentValue]()
        var positionalWords = [Token]()
        for token in tokens {
            if let key = token.key, let value = token.value {
                guard let spec = options.first(where: { $0.name == key }) else {
                    let names = options.map(\.name)
                    throw CommandError(.unknownOption, "unknown option `\(key)` for `\(name)`" +
                                       (names.isEmpty ? " (it takes no options)" : ""),
                                       word: token.raw, suggestion: nearest(key, in: names).map { "\($0)=" + value },
                                       column: token.column)
                }
                guard values[spec.name] == nil else {
                    throw CommandError(.badValue, "`\(key)=` is given twice; give each option once", word: token.raw, column: token.column)
                }
                do {
                    values[spec.name] = try spec.parse(value)
                } catch var error as CommandError {
                    error.word = token.raw
                    error.column = token.column
                    if let s = error.suggestion { error.suggestion = "\(key)=\(s)" }
                    throw error
                }
            } else {
                positionalWords.append(token)
            }
        }
        var index = 0
        for spec in positionals {
            if case .words = spec.type {
                if index < positionalWords.count {
                    values[spec.name] = .text(positionalWords[index...].map(\.text).joined(separator: " "))
                    index = positionalWords.count
                }
            } else if index < positionalWords.count {
                let token = positionalWords[index]
                do {
                    values[spec.name] = try spec.parse(token.text)
                } catch var error as CommandError {
                    error.column = token.column
                    throw error
                }
                index += 1
            }
            if values[spec.name] == nil && spec.required {
                throw CommandError(.missingArgument, "`\(name)` needs \(spec.name.uppercased()): \(spec.help) (usage: \(usage))",
                                   word: name)
            }
        }
        if index < positionalWords.count {
            let extra = positionalWords[index]
            let hint = extra.text.contains("=") ? "" : (options.isEmpty ? "" : "; options are written name=value")
            throw CommandError(.unexpectedArgument, "unexpected word `\(extra.raw)` for `\(name)`\(hint)",
                               word: extra.raw, suggestion: nearest(extra.text, in: options.map(\.name)).map { "\($0)=…" },
                               column: extra.column)
        }
        for spec in options where values[spec.name] == nil {
            if let value = spec.defaultValue { values[spec.name] = try spec.parse(value) }
        }
        return Arguments(values: values)
    }
}
