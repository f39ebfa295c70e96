import Display
import Evaluation
import Foundation
import Workbench

extension CommandTable {
    static let taskCommands: [Command] = [
        Command("data tasks", summary: "Load multiple-choice tasks (BIG-bench task.json) for `eval accuracy`",
                details: "Names are the BIG-bench tasks the set-up fetches into ~/.cache/sculpt/tasks: "
                    + MultipleChoiceTask.fetched.joined(separator: ", ") + ". A path names a task.json (or its directory). Tasks "
                    + "made of subtasks (arithmetic, elementary_math_qa, cause_and_effect) load as their subtasks. Prompts follow "
                    + "BIG-bench: task prefix, `\\nQ: ` input, the choices listed after `\\n  choice: ` in BIG-bench's order, `\\nA: ` "
                    + "(or the file's own prefixes). BIG-bench's canary asks that these files never be trained on: evaluate only.",
                arguments: [
                    .positional("tasks", .words, help: "task names or paths, separated by spaces or commas"),
                    .option("limit", .integer(1...1_000_000), help: "keep the first N examples of each (sub)task"),
                ],
                examples: ["data tasks arithmetic", "data tasks social_iqa strategyqa winowhy limit=200", "data tasks ~/my_task/task.json"]) { arguments, context in
            let sources = (arguments.text("tasks") ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard !sources.isEmpty else { throw CommandError(.missingArgument, "`data tasks` needs task names or paths, e.g. `data tasks arithmetic`") }
            var tasks = try context.session.loadTasks(sources)
            if let limit = arguments.integer("limit") {
                tasks = tasks.map { var t = $0; t.examples = Array(t.examples.prefix(limit)); return t }
                context.session.useTasks(tasks)
            }
            return taskCard(tasks)
        },

        Command("data examples", summary: "Prompt/answer examples for `train` (loss on the answer only): a JSONL file, or generated arithmetic",
                details: "`arithmetic` makes `count` questions in BIG-bench's arithmetic format from the session's seed, leaving out "
                    + "every question BIG-bench's own arithmetic files ask (when the set-up fetched them), so training never sees "
                    + "what `eval accuracy` judges. A path names a JSONL file of {\"prompt\": …, \"answer\": …} lines. `train` then "
                    + "learns from these instead of the text (unless given `split=`), holding out the last tenth for validation.",
                arguments: [
                    .positional("source", .text, help: "`arithmetic` or the path of a .jsonl file"),
                    .option("count", .integer(2...1_000_000), default: "2000", help: "questions to generate (arithmetic)"),
                    .option("digits", .integer(1...5), default: "2", help: "largest operand size in digits (arithmetic)"),
                ],
                examples: ["data examples arithmetic count=2000", "data examples ~/qa.jsonl"]) { arguments, context in
            let source = arguments.text("source") ?? ""
            let pairs: [(prompt: String, answer: String)]
            let name: String
            var excluded = 0
            if source.lowercased() == "arithmetic" {
                let bigBench = Set(((try? MultipleChoiceTask.load("arithmetic")) ?? []).flatMap { $0.examples.map(\.input) })
                excluded = bigBench.count
                let generated = ArithmeticExamples.generate(count: arguments.integer("count")!, maxDigits: arguments.integer("digits")!,
                                                            seed: context.session.seed, excluding: bigBench)
                pairs = ArithmeticExamples.pairs(generated)
                name = "arithmetic (generated)"
            } else {
                pairs = try ExampleFile.load(source)
                name = URL(fileURLWithPath: source).lastPathComponent
            }
            try context.session.useExamples(name: name, pairs: pairs)
            let sample = pairs[0]
            let rows: [[String]] = [
                ["examples", "\(pairs.count) (\(max(1, pairs.count / 10)) held out for validation)"],
                ["excluded", source.lowercased() == "arithmetic" ? (excluded > 0 ? "the \(excluded) questions of BIG-bench's arithmetic" : "none: BIG-bench's arithmetic is not in the cache") : "—"],
                ["prompt (first)", sample.prompt.replacingOccurrences(of: "\n", with: "⏎")],
                ["answer (first)", sample.answer],
            ]
            return Table(title: "Training examples: \(name)", columns: ["", "value"], rows: rows).bundle
        },

        Command("eval accuracy", summary: "Multiple-choice accuracy on the loaded tasks (acc and length-normalized acc_norm)",
                details: "Each choice is scored by its log-likelihood after the prompt (all choices of one example in one batched "
                    + "forward pass); `acc` picks the most likely choice, `acc_norm` the most likely per character (lm-eval-harness). "
                    + "The table gives counts, the standard error of each accuracy, and chance (a uniform guess). Interrupt keeps "
                    + "the examples scored so far and says how many.",
                arguments: [
                    .option("tasks", .text, help: "comma-separated task names among the loaded ones (default: all)"),
                    .option("limit", .integer(1...1_000_000), help: "score the first N examples of each (sub)task"),
                    .option("shots", .integer(0...16), default: "0", help: "solved examples before each question (drawn with the seed)"),
                ],
                examples: ["eval accuracy", "eval accuracy tasks=strategyqa,winowhy limit=200", "eval accuracy shots=3"]) { arguments, context in
            let names = arguments.text("tasks").map { $0.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) } }
            let parameters = MultipleChoiceScoring.Parameters(limit: arguments.integer("limit"), shots: arguments.integer("shots")!)
            let chosen = try context.session.selectTasks(names)
            let total = chosen.reduce(0) { $0 + min($1.examples.count, parameters.limit ?? .max) }
            let progress = LiveProgress(context.output, title: "scoring", total: Double(total), unit: "examples")
            let (results, interrupted) = try progress.run {
                try context.session.accuracy(tasks: names, parameters: parameters) { p in
                    progress.update(done: Double(p.done), note: "\(p.task) · acc \(String(format: "%.1f%%", 100 * p.accuracy))")
                }
            }
            progress.finish(interrupted: interrupted)
            let table = accuracyTable(results, total: total, interrupted: interrupted, shots: parameters.shots)
            if interrupted {
                context.output.display(table, id: nil)
                throw CancellationError()
            }
            return table
        },
    ]

    static func taskCard(_ tasks: [MultipleChoiceTask]) -> MimeBundle {
        var rows = tasks.map { t -> [String] in
            [t.name, String(t.examples.count), String(format: "%.1f", Double(t.examples.map(\.choices.count).reduce(0, +)) / Double(max(1, t.examples.count))),
             String(format: "%.1f%%", 100 * t.chance)]
        }
        if tasks.count > 1 {
            rows.append(["all", String(tasks.reduce(0) { $0 + $1.examples.count }), "", ""])
        }
        let table = Table(title: "Tasks: \(tasks.count) loaded", columns: ["task", "examples", "choices (mean)", "chance"],
                          alignments: [.left, .right, .right, .right], rows: rows)
        // One rendered example, exactly as the model reads it.
        let first = tasks[0]
        let example = first.examples[0]
        let prompt = first.format.prompt(example)
        let sample = "Example from \(first.name) (the prompt, then each choice is scored after it):\n" + prompt
            + "\n\nchoices: " + example.choices.map { "\($0)\(example.scores[example.choices.firstIndex(of: $0)!] > 0 ? " ✓" : "")" }.joined(separator: " | ")
        return MimeBundle(plain: table.plainText + "\n\n" + sample)
            .adding("text/html", .text(table.html + "<pre>\(htmlEscaped(sample))</pre>"))
            .adding("text/markdown", .text(table.markdown + "\n\n```\n" + sample + "\n```"))
    }

    static func accuracyTable(_ results: [MultipleChoiceScoring.TaskResult], total: Int, interrupted: Bool, shots: Int) -> MimeBundle {
        func percent(_ x: Double) -> String { String(format: "%.1f%%", 100 * x) }
        var rows = results.map { r -> [String] in
            [r.name, "\(r.count)" + (r.count < r.available ? " of \(r.available)" : ""),
             percent(r.accuracy) + " ± " + percent(r.accuracyStandardError),
             percent(r.normalizedAccuracy) + " ± " + percent(r.normalizedStandardError),
             percent(r.chance), String(format: "%.1f", r.seconds)]
        }
        // A task split into subtasks: BIG-bench reports the unweighted mean of its subtasks.
        let parents = Dictionary(grouping: results.filter { $0.name.contains(":") }, by: { String($0.name.split(separator: ":")[0]) })
        for (parent, members) in parents.sorted(by: { $0.key < $1.key }) where members.count > 1 {
            func mean(_ f: (MultipleChoiceScoring.TaskResult) -> Double) -> Double { members.map(f).reduce(0, +) / Double(members.count) }
            rows.append(["\(parent) (mean of \(members.count) subtasks)", String(members.reduce(0) { $0 + $1.count }),
                         percent(mean(\.accuracy)), percent(mean(\.normalizedAccuracy)), percent(mean(\.chance)),
                         String(format: "%.1f", members.reduce(0) { $0 + $1.seconds })])
        }
        let scored = results.reduce(0) { $0 + $1.count }
        let title = "Multiple-choice accuracy, \(shots)-shot: \(scored) examples"
            + (interrupted ? " (interrupted after \(scored) of \(total))" : "") + " · acc: most likely choice; acc_norm: per character"
        return Table(title: title, columns: ["task", "examples", "acc ± s.e.", "acc_norm ± s.e.", "chance", "seconds"],
                     alignments: [.left, .right, .right, .right, .right, .right], rows: rows).bundle
    }
}
