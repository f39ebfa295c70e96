import Display
import Evaluation
import Foundation
import Workbench

extension CommandTable {
    static let taskCommands: [Command] = [
        Command("data tasks", summary: "Load multiple-choice tasks for `eval accuracy`: generated from Austen, BIG-bench's, or a task.json; alone, list them",
                details: "Generated from the Austen novels that ship with Sculpt (always there): "
                    + AustenTasks.names.map { "`\($0)`: " + AustenTasks.describe($0) }.joined(separator: "; ")
                    + ". Their test split is Persuasion; `split=train` takes the other five novels instead (what `data examples` "
                    + "trains on). BIG-bench's tasks (" + MultipleChoiceTask.bigBench.joined(separator: ", ") + ") load by name when "
                    + "`scripts/fetch_data.py bigbench` has put them in ~/.cache/sculpt/tasks (optional). A path names a task.json "
                    + "(or its directory). Tasks made of subtasks (arithmetic, elementary_math_qa, cause_and_effect) load as their "
                    + "subtasks. BIG-bench prompts follow BIG-bench: task prefix, `\\nQ: ` input, the choices listed after "
                    + "`\\n  choice: ` in BIG-bench's order, `\\nA: ` (or the file's own prefixes); BIG-bench's canary asks that its "
                    + "files never be trained on: evaluate only. With no task named, lists every task and whether it is here.",
                arguments: [
                    .positional("tasks", .words, required: false, help: "task names or paths, separated by spaces or commas"),
                    .option("limit", .integer(1...1_000_000), help: "keep the first N examples of each (sub)task"),
                    .option("split", .choice(AustenTasks.Split.allCases.map(\.rawValue)), help: "generated tasks: test (Persuasion, the default) or train (the other novels)"),
                    .option("save", .text, help: "also write the (one) task as loaded as a BIG-bench task.json, which loads back as the same task (to score it with other tools)"),
                ],
                examples: ["data tasks", "data tasks austen_lambada austen_next_sentence limit=200", "data tasks austen_lambada split=train",
                           "data tasks austen_lambada save=lambada/task.json",
                           "data tasks ~/my_task/task.json"]) { arguments, context in
            let sources = (arguments.text("tasks") ?? "").split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard !sources.isEmpty else { return try taskList() }
            let split = arguments.text("split").flatMap(AustenTasks.Split.init(rawValue:))
            let tasks = try context.session.readTasks(sources, split: split, limit: arguments.integer("limit"))
            if let path = arguments.text("save") {
                guard tasks.count == 1 else {
                    throw CommandError(.badValue, "`save=` writes one task; \(sources.joined(separator: " ")) is \(tasks.count) (sub)tasks")
                }
                try ExampleFile.writeWhole(try tasks[0].bigBenchJSON(), to: path)
            }
            context.session.useTasks(tasks)
            return taskCard(tasks)
        },

        Command("data examples", summary: "Prompt/answer examples for `train` (loss on the answer only): a generated task's train split, arithmetic, or a JSONL file",
                details: "A generated task (" + AustenTasks.names.joined(separator: ", ") + ") gives the first `count` examples of its "
                    + "train split (five novels; its test split, Persuasion, is never trained on): the prompt as `eval accuracy` "
                    + "renders it, the correct choice as the answer. `arithmetic` makes `count` questions in BIG-bench's arithmetic "
                    + "format from the session's seed, leaving out every question BIG-bench's own arithmetic files ask (when they "
                    + "are in the cache). A path names a JSONL file of {\"prompt\": …, \"answer\": …} lines. `train` then "
                    + "learns from these instead of the text (unless given `split=`), holding out the last tenth for validation.",
                arguments: [
                    .positional("source", .text, help: AustenTasks.names.map { "`\($0)`" }.joined(separator: ", ") + ", `arithmetic` or the path of a .jsonl file"),
                    .option("count", .integer(2...1_000_000), default: "2000", help: "examples to take (a generated task) or questions to generate (arithmetic)"),
                    .option("digits", .integer(1...5), default: "2", help: "largest operand size in digits (arithmetic)"),
                    .option("save", .text, help: "also write the examples to this path as JSONL, the form a path here reads (for PEFT or other tools)"),
                ],
                examples: ["data examples austen_lambada count=2000", "data examples arithmetic count=2000",
                           "data examples austen_lambada save=lambada_train.jsonl", "data examples ~/qa.jsonl"]) { arguments, context in
            let source = arguments.text("source") ?? ""
            let pairs: [(prompt: String, answer: String)]
            let name: String
            var excluded = 0
            if AustenTasks.names.contains(source) {
                let task = try AustenTasks.task(source, split: .train, corpus: try TextCorpus.austen())
                pairs = task.examples.prefix(arguments.integer("count")!).map { (task.format.prompt($0), $0.answer) }
                name = task.name
            } else if source.lowercased() == "arithmetic" {
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
            if let path = arguments.text("save") { try ExampleFile.save(pairs, to: path) }
            try context.session.useExamples(name: name, pairs: pairs)
            let sample = pairs[0]
            let rows: [[String]] = [
                ["examples", "\(pairs.count) (\(max(1, pairs.count / 10)) held out for validation)"],
                ["excluded", AustenTasks.names.contains(source) ? "Persuasion: the test split is never trained on"
                    : source.lowercased() == "arithmetic" ? (excluded > 0 ? "the \(excluded) questions of BIG-bench's arithmetic" : "none: BIG-bench's arithmetic is not in the cache") : "—"],
                ["prompt (first)", sample.prompt.replacingOccurrences(of: "\n", with: "⏎")],
                ["answer (first)", sample.answer],
            ] + (arguments.text("save").map { [["saved as", ($0 as NSString).expandingTildeInPath]] } ?? [])
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

    /// Every task `data tasks` knows by name, with its size and whether it is here.
    static func taskList() throws -> MimeBundle {
        var rows = [[String]]()
        let corpus = Result { try TextCorpus.austen() }
        for name in AustenTasks.names {
            let sizes = AustenTasks.Split.allCases.map { split in
                (try? AustenTasks.task(name, split: split, corpus: try corpus.get())).map { "\($0.examples.count)" } ?? "—"
            }
            rows.append([name, "generated (Austen)", sizes[1], sizes[0], (try? corpus.get()) == nil ? "no: the Austen text is not in the cache (scripts/setup.sh)" : "yes",
                         AustenTasks.describe(name)])
        }
        for name in MultipleChoiceTask.bigBench {
            rows.append([name, "BIG-bench", "", "", MultipleChoiceTask.isCached(name) ? "yes" : "no (optional: scripts/fetch_data.py bigbench)", "evaluate only (canary)"])
        }
        return Table(title: "Tasks by name (`data tasks NAME…`; any task.json by path)",
                     columns: ["task", "kind", "test examples", "train examples", "here", "what"],
                     alignments: [.left, .left, .right, .right, .left, .left], rows: rows).bundle
    }

    static func taskCard(_ tasks: [MultipleChoiceTask]) -> MimeBundle {
        var rows = tasks.map { t -> [String] in
            [t.name, String(t.examples.count), String(format: "%.1f", Double(t.examples.map(\.choices.count).reduce(0, +)) / Double(max(1, t.examples.count))),
             String(format: "%.1f%%", 100 * t.chance), t.source]
        }
        if tasks.count > 1 {
            rows.append(["all", String(tasks.reduce(0) { $0 + $1.examples.count }), "", "", ""])
        }
        let table = Table(title: "Tasks: \(tasks.count) loaded", columns: ["task", "examples", "choices (mean)", "chance", "source"],
                          alignments: [.left, .right, .right, .right, .left], rows: rows)
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
        // LAMBADA-style tasks also report greedy exact match; the column shows only where one does.
        let showsGreedy = results.contains { $0.greedyAccuracy != nil }
        var rows = results.map { r -> [String] in
            [r.name, "\(r.count)" + (r.count < r.available ? " of \(r.available)" : ""),
             percent(r.accuracy) + " ± " + percent(r.accuracyStandardError),
             percent(r.normalizedAccuracy) + " ± " + percent(r.normalizedStandardError)]
                + (showsGreedy ? [r.greedyAccuracy.map { percent($0) + " ± " + percent(r.greedyStandardError ?? 0) } ?? "—"] : [])
                + [percent(r.chance), String(format: "%.1f", r.seconds)]
        }
        // A task split into subtasks: BIG-bench reports the unweighted mean of its subtasks.
        let parents = Dictionary(grouping: results.filter { $0.name.contains(":") }, by: { String($0.name.split(separator: ":")[0]) })
        for (parent, members) in parents.sorted(by: { $0.key < $1.key }) where members.count > 1 {
            func mean(_ f: (MultipleChoiceScoring.TaskResult) -> Double) -> Double { members.map(f).reduce(0, +) / Double(members.count) }
            rows.append(["\(parent) (mean of \(members.count) subtasks)", String(members.reduce(0) { $0 + $1.count }),
                         percent(mean(\.accuracy)), percent(mean(\.normalizedAccuracy))] + (showsGreedy ? [""] : [])
                         + [percent(mean(\.chance)), String(format: "%.1f", members.reduce(0) { $0 + $1.seconds })])
        }
        let scored = results.reduce(0) { $0 + $1.count }
        let title = "Multiple-choice accuracy, \(shots)-shot: \(scored) examples"
            + (interrupted ? " (interrupted after \(scored) of \(total))" : "") + " · acc: most likely choice; acc_norm: per character"
            + (showsGreedy ? "; greedy: the answer is what greedy decoding writes" : "")
        let columns = ["task", "examples", "acc ± s.e.", "acc_norm ± s.e."] + (showsGreedy ? ["greedy ± s.e."] : []) + ["chance", "seconds"]
        return Table(title: title, columns: columns, alignments: [.left] + Array(repeating: .right, count: columns.count - 1), rows: rows).bundle
    }
}
