import Display
import Foundation
import Workbench

/// What a cell left behind when it succeeded.
public struct CellOutcome {
    /// The last line's result: the cell's `execute_result`.
    public var result: MimeBundle?
    /// Help pages asked for with `?command`, for the frontend's pager.
    public var pages: [MimeBundle]
}

/// Runs a cell's lines in order and stops at the first error, which names the line and word.
public final class CellRunner {
    public let table: CommandTable
    public let session: Session

    public init(session: Session, table: CommandTable = .standard) {
        self.session = session
        self.table = table
    }

    public func run(_ code: String, output: CommandOutput) throws -> CellOutcome {
        var outcome = CellOutcome(result: nil, pages: [])
        let context = CommandContext(session: session, output: output, table: table)
        for line in LineParser.logicalLines(code) {
            do {
                let tokens: [Token]
                do {
                    tokens = try LineParser.tokenize(line.text)
                } catch LineParser.Failure.unterminatedQuote(let column) {
                    throw CommandError(.syntax, "unterminated quote", word: "\"", column: column)
                }
                if tokens.isEmpty { continue }
                // A result held back for being last is shown once another line runs.
                if let pending = outcome.result {
                    output.display(pending, id: nil)
                    outcome.result = nil
                }
                try session.cancellation.check()
                if let target = CellRunner.pagerTarget(tokens) {
                    outcome.pages.append(try table.help(for: target))
                    continue
                }
                let (command, used) = try table.resolve(tokens)
                let arguments = try command.parseArguments(Array(tokens.dropFirst(used)))
                outcome.result = try command.run(arguments, context)
            } catch var error as CommandError {
                error.line = line.number
                error.sourceLine = line.text
                throw error
            } catch is CancellationError {
                var error = CommandError(.interrupted, "interrupted; everything finished before the interrupt is kept")
                error.line = line.number
                error.sourceLine = line.text
                throw error
            } catch {
                var failure = CommandError(.failed, String(describing: error))
                failure.line = line.number
                failure.sourceLine = line.text
                throw failure
            }
        }
        return outcome
    }

    /// `?status`, `status?`, `?model load`: the command whose help goes to the pager.
    static func pagerTarget(_ tokens: [Token]) -> String? {
        guard let first = tokens.first, let last = tokens.last, tokens.allSatisfy({ $0.key == nil }) else { return nil }
        var words = tokens.map(\.text)
        if first.text.hasPrefix("?") {
            words[0].removeFirst()
        } else if last.text.hasSuffix("?") {
            words[words.count - 1].removeLast()
        } else {
            return nil
        }
        words.removeAll { $0.isEmpty }
        return words.isEmpty ? nil : words.joined(separator: " ")
    }
}
