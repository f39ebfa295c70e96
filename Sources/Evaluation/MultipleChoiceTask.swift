import Foundation

/// Why a task file could not be used.
public enum TaskError: Error, CustomStringConvertible, Equatable {
    /// The file or directory is not there (for a name: not in the set-up's cache).
    case missing(path: String, hint: String)
    /// Not a BIG-bench task.json, or a JSONL file that is not prompt/answer lines.
    case malformed(path: String, reason: String)
    /// No example left to score or train on.
    case empty(String)
    /// Examples could not be written there.
    case unwritable(path: String, reason: String)

    public var description: String {
        switch self {
        case .missing(let path, let hint): return "no task at \(path)\(hint.isEmpty ? "" : ": " + hint)"
        case .malformed(let path, let reason): return "\(path) is not a usable task file: \(reason)"
        case .empty(let name): return "\(name) has no examples"
        case .unwritable(let path, let reason): return "cannot write \(path): \(reason)"
        }
    }
}

/// One multiple-choice question: the input, the choices (sorted) with their target scores
/// (1 for a correct choice, 0 otherwise), and the answer shown when it serves as a shot.
public struct MultipleChoiceExample: Sendable, Equatable {
    public var input: String
    public var choices: [String]
    public var scores: [Double]
    /// BIG-bench's `target` where given, else the first choice with the highest score.
    public var answer: String

    public init(input: String, choices: [String], scores: [Double], answer: String? = nil) {
        self.input = input
        self.choices = choices
        self.scores = scores
        let best = scores.indices.max { scores[$0] < scores[$1] || (scores[$0] == scores[$1] && $0 > $1) } ?? 0
        self.answer = answer ?? (choices.isEmpty ? "" : choices[best])
    }

    /// The chance of a uniform guess scoring: mean target score over the choices.
    public var chance: Double { choices.isEmpty ? 0 : scores.reduce(0, +) / Double(choices.count) }
}

/// How a BIG-bench JSON task turns an example into a prompt (`bigbench/api/json_task.py`):
/// `task_prefix + input_prefix + input [+ choice_prefix + choices…] + output_prefix`, with
/// BIG-bench's defaults where the file says nothing.
public struct PromptFormat: Sendable, Equatable {
    public var taskPrefix = ""
    public var inputPrefix = "\nQ: "
    public var outputPrefix = "\nA: "
    public var choicePrefix = "\n  choice: "
    public var appendChoices = true
    public var shotSeparator = "\n"

    public init() {}

    /// The order BIG-bench lists choices in when it appends them to the input: the choices sorted
    /// (by code point, as Python sorts), then permuted by `numpy.random.RandomState(42).permutation(n)`.
    /// The generator is reseeded for every example, so the permutation depends on n alone; these
    /// are its values for n ≤ 10 (every task here). Beyond 10 the sorted order is kept.
    static let bigBenchPermutations: [Int: [Int]] = [
        1: [0], 2: [1, 0], 3: [0, 1, 2], 4: [1, 3, 0, 2], 5: [1, 4, 2, 0, 3], 6: [0, 1, 5, 2, 4, 3],
        7: [0, 1, 5, 2, 4, 3, 6], 8: [1, 5, 0, 7, 2, 4, 3, 6], 9: [7, 1, 5, 0, 8, 2, 4, 3, 6],
        10: [8, 1, 5, 0, 7, 2, 9, 4, 3, 6],
    ]

    /// Python's string order: by Unicode code point.
    static func codePointOrder(_ a: String, _ b: String) -> Bool {
        a.unicodeScalars.map(\.value).lexicographicallyPrecedes(b.unicodeScalars.map(\.value))
    }

    /// Choices in the order they are listed in the prompt.
    public static func listedOrder(_ choices: [String]) -> [String] {
        let sorted = choices.sorted(by: codePointOrder)
        guard let permutation = bigBenchPermutations[sorted.count] else { return sorted }
        return permutation.map { sorted[$0] }
    }

    /// The example as the model reads it, before its answer.
    public func formattedInput(_ example: MultipleChoiceExample) -> String {
        var input = example.input
        if appendChoices {
            input += choicePrefix + PromptFormat.listedOrder(example.choices).joined(separator: choicePrefix)
        }
        return inputPrefix + input + outputPrefix
    }

    /// The whole prompt: the task prefix, the shots with their answers, then the example.
    public func prompt(_ example: MultipleChoiceExample, shots: [MultipleChoiceExample] = []) -> String {
        let context = shots.map { formattedInput($0) + $0.answer }
        return taskPrefix + (context + [formattedInput(example)]).joined(separator: shotSeparator)
    }
}

/// A multiple-choice task: one generated from the Austen novels, a BIG-bench task (or one of its
/// subtasks), or a file of the user's.
public struct MultipleChoiceTask: Sendable {
    public var name: String
    public var format: PromptFormat
    public var examples: [MultipleChoiceExample]
    /// Where the examples come from, for the task card.
    public var source: String
    /// Also report whether the correct choice is the greedy continuation (LAMBADA's exact match).
    public var scoresGreedy: Bool

    public init(name: String, format: PromptFormat = PromptFormat(), examples: [MultipleChoiceExample], source: String = "", scoresGreedy: Bool = false) {
        self.name = name
        self.format = format
        self.examples = examples
        self.source = source
        self.scoresGreedy = scoresGreedy
    }

    /// Mean chance of a uniform guess, for comparing accuracy against.
    public var chance: Double {
        examples.isEmpty ? 0 : examples.map(\.chance).reduce(0, +) / Double(examples.count)
    }

    /// Where the set-up puts the BIG-bench tasks.
    public static func cacheDirectory() -> String { TextCorpus.cacheDirectory() + "/tasks" }

    /// The BIG-bench tasks `scripts/fetch_data.py bigbench` can put in the cache (optional: the
    /// package index no longer serves the sdist they came from).
    public static let bigBench = ["arithmetic", "cause_and_effect", "elementary_math_qa", "physical_intuition",
                                  "social_iqa", "strategyqa", "winowhy"]

    /// Whether a BIG-bench task is in the cache.
    public static func isCached(_ name: String) -> Bool {
        FileManager.default.fileExists(atPath: cacheDirectory() + "/" + name + "/task.json")
    }

    /// A task by name: a generated Austen task (`split` chooses its novels), or a BIG-bench task from
    /// the cache; or from a path (a task.json or a directory holding one). A task whose task.json
    /// has no examples is made of subtasks, one per subdirectory, read in sorted order as BIG-bench
    /// does.
    public static func load(_ nameOrPath: String, split: AustenTasks.Split? = nil) throws -> [MultipleChoiceTask] {
        if AustenTasks.names.contains(nameOrPath) {
            return [try AustenTasks.task(nameOrPath, split: split ?? .test, corpus: try TextCorpus.austen())]
        }
        if let split {
            throw TaskError.missing(path: nameOrPath, hint: "split=\(split.rawValue) applies to the generated tasks (\(AustenTasks.names.joined(separator: ", "))) only")
        }
        let byName = !nameOrPath.contains("/") && !nameOrPath.hasSuffix(".json")
        var path = byName ? cacheDirectory() + "/" + nameOrPath : (nameOrPath as NSString).expandingTildeInPath
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            let hint: String
            if !byName {
                hint = "no such file"
            } else if bigBench.contains(nameOrPath) {
                hint = "BIG-bench's files are optional and not in the cache (the package index no longer serves bigbench 1.0.0): "
                    + "`python3 scripts/fetch_data.py bigbench` with SCULPT_BIGBENCH set to a BIG-bench checkout puts them there, "
                    + "or load a task.json by path; the generated tasks are \(AustenTasks.names.joined(separator: ", "))"
            } else {
                hint = "the tasks are \((AustenTasks.names + bigBench).joined(separator: ", ")), or a task.json path"
            }
            throw TaskError.missing(path: path, hint: hint)
        }
        if isDirectory.boolValue { path += "/task.json" }
        return try loadBigBench(path: path, name: byName ? nameOrPath : URL(fileURLWithPath: path).deletingLastPathComponent().lastPathComponent)
    }

    /// The task as a BIG-bench task.json (its prompt format, each example's input, target scores and
    /// answer), which `load` reads back as the same task: to score it elsewhere, or to keep it.
    public func bigBenchJSON() throws -> Data {
        let object: [String: Any] = [
            "name": name, "description": source,
            "task_prefix": format.taskPrefix, "example_input_prefix": format.inputPrefix, "example_output_prefix": format.outputPrefix,
            "choice_prefix": format.choicePrefix, "append_choices_to_input": format.appendChoices,
            "few_shot_example_separator": format.shotSeparator,
            "examples": examples.map { e -> [String: Any] in
                ["input": e.input, "target_scores": Dictionary(uniqueKeysWithValues: zip(e.choices, e.scores)), "target": e.answer]
            },
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes])
    }

    static func loadBigBench(path: String, name: String) throws -> [MultipleChoiceTask] {
        guard let data = FileManager.default.contents(atPath: path) else { throw TaskError.missing(path: path, hint: "not readable") }
        guard let json = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
            throw TaskError.malformed(path: path, reason: "not a JSON object")
        }
        guard let rawExamples = json["examples"] as? [[String: Any]] else {
            // A parent task: its examples are in the subtasks' files.
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            let children = ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).sorted()
                .filter { FileManager.default.fileExists(atPath: directory.path + "/" + $0 + "/task.json") }
            guard !children.isEmpty else { throw TaskError.malformed(path: path, reason: "no `examples` and no subtasks") }
            return try children.flatMap { try loadBigBench(path: directory.path + "/" + $0 + "/task.json", name: name + ":" + $0) }
        }
        var format = PromptFormat()
        if let v = json["task_prefix"] as? String { format.taskPrefix = v }
        if let v = json["example_input_prefix"] as? String { format.inputPrefix = v }
        if let v = json["example_output_prefix"] as? String { format.outputPrefix = v }
        if let v = json["choice_prefix"] as? String { format.choicePrefix = v }
        if let v = json["append_choices_to_input"] as? Bool { format.appendChoices = v }
        if let v = json["few_shot_example_separator"] as? String { format.shotSeparator = v }
        var examples = [MultipleChoiceExample]()
        var seen = Set<Data>()
        for raw in rawExamples {
            // BIG-bench drops exact duplicates, keeping the first.
            if let key = try? JSONSerialization.data(withJSONObject: raw, options: [.sortedKeys]), !seen.insert(key).inserted { continue }
            guard let input = raw["input"] as? String, let scores = raw["target_scores"] as? [String: Any] else { continue }
            // Choices sorted by code point: Foundation's parser does not keep the file's key order,
            // and the order only matters for ties (the first of the tied choices wins).
            let keys = scores.keys.sorted(by: PromptFormat.codePointOrder)
            let values = keys.compactMap { (scores[$0] as? NSNumber)?.doubleValue }
            guard values.count == keys.count, keys.count >= 2 else { continue }
            let target = raw["target"] as? String ?? (raw["target"] as? [String])?.first
            examples.append(MultipleChoiceExample(input: input, choices: keys, scores: values, answer: target))
        }
        guard !examples.isEmpty else { throw TaskError.empty(name) }
        return [MultipleChoiceTask(name: name, format: format, examples: examples, source: "BIG-bench task.json: " + path)]
    }

}
