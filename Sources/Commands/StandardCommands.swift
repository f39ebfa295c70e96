import Display
import Foundation
import Workbench

extension CommandTable {
    /// Every command Sculpt knows.
    public static let standard = CommandTable(sessionCommands + modelCommands + dataCommands + taskCommands + evaluationCommands + adapterCommands + elasticCommands + nasCommands + aloraCommands + sparsityCommands + quantizationCommands + sensitivityCommands + exportCommands)

    static let sessionCommands: [Command] = [
        Command("help", summary: "List the commands, or show one command's page",
                details: "`?COMMAND` or `COMMAND?` opens the same page in the pager; Shift-Tab shows it as you type.",
                arguments: [.positional("command", .words, required: false, help: "a command, e.g. `status` or `model load`")],
                examples: ["help", "help echo", "?seed"]) { arguments, context in
            guard let words = arguments.text("command") else { return context.table.overview() }
            return try context.table.help(for: words)
        },

        Command("echo", summary: "Print text on stdout (or stderr)",
                details: "Words are joined by single spaces; quote text to keep spacing or an `=` sign.",
                arguments: [
                    .positional("text", .words, required: false, help: "what to print"),
                    .option("to", .choice(["stdout", "stderr"]), default: "stdout", help: "the stream to print on"),
                ],
                examples: ["echo hello, world", "echo \"a = b\" to=stderr"]) { arguments, context in
            context.output.print((arguments.text("text") ?? "") + "\n", toStderr: arguments.text("to") == "stderr")
            return nil
        },

        Command("seed", summary: "Set or show the seed every random choice derives from",
                details: "The same seed gives the same random models, subnets and searches.",
                arguments: [.positional("n", .integer(0...Int.max), required: false, help: "the new seed")],
                examples: ["seed 42", "seed"]) { arguments, context in
            if let n = arguments.integer("n") { context.session.seed = UInt64(n) }
            return MimeBundle(plain: "seed = \(context.session.seed)")
        },

        Command("status", summary: "Show the session: seed, model, data, uptime") { _, context in
            Table(title: "Sculpt session", columns: ["", "value"], rows: context.session.summary().map { [$0.0, $0.1] }).bundle
        },

        Command("clear", summary: "Clear this cell's output",
                details: "With `wait=yes` the output is cleared when the next output arrives, which avoids flicker.",
                arguments: [.option("wait", .flag, default: "no", help: "clear only when the next output arrives")],
                examples: ["clear", "clear wait=yes"]) { arguments, context in
            context.output.clear(wait: arguments.flag("wait") ?? false)
            return nil
        },

        Command("sleep", summary: "Wait a number of seconds; an interrupt ends the wait",
                details: "Useful to pace a demo, or to try interrupting a running cell.",
                arguments: [.positional("seconds", .number(0...86_400), help: "how long to wait")],
                examples: ["sleep 2"]) { arguments, context in
            try context.session.cancellation.sleep(seconds: arguments.number("seconds") ?? 0)
            return nil
        },

        Command("reset", summary: "Forget the session's models, data and results, and restore the seed",
                details: "Asks for confirmation when the frontend can answer prompts; `force=yes` skips the question "
                    + "(needed where prompts are impossible, such as headless runs).",
                arguments: [.option("force", .flag, default: "no", help: "reset without asking")],
                examples: ["reset", "reset force=yes"]) { arguments, context in
            if arguments.flag("force") != true {
                let answer: String
                do {
                    answer = try context.output.input(prompt: "Reset the session (models, data, results, seed)? [y/N] ", password: false)
                } catch let interrupted as CancellationError {
                    throw interrupted
                } catch {
                    throw CommandError(.failed, "`reset` asks for confirmation, and this frontend cannot answer prompts",
                                       word: "reset", suggestion: "reset force=yes")
                }
                guard ["y", "yes"].contains(answer.trimmingCharacters(in: .whitespaces).lowercased()) else {
                    context.output.print("reset cancelled\n", toStderr: false)
                    return nil
                }
            }
            context.session.reset()
            context.output.print("session reset\n", toStderr: false)
            return nil
        },
    ]
}
