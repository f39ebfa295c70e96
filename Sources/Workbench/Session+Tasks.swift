import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

/// Which tasks, and how many examples of each, measure a subnet's accuracy (`cost tasks=`, the
/// search objective `accuracy`).
public struct AccuracyProbe: Sendable {
    public var tasks: [String]?
    public var limit: Int

    public init(tasks: [String]? = nil, limit: Int = 100) {
        self.tasks = tasks
        self.limit = limit
    }
}

extension Session {
    /// Mean multiple-choice accuracy of a subnet (activated for the measurement).
    public func subnetAccuracy(_ genome: [Int], probe: AccuracyProbe) throws -> Double {
        try activate(genome)
        return try meanAccuracy(tasks: probe.tasks, limit: probe.limit)
    }

    /// Reads tasks by name (generated, or BIG-bench's from the cache) or path, without touching the
    /// session. A task made of subtasks comes in as its subtasks; `limit` keeps the first N
    /// examples of each.
    public func readTasks(_ sources: [String], split: AustenTasks.Split? = nil, limit: Int? = nil) throws -> [MultipleChoiceTask] {
        let read = try sources.flatMap { try MultipleChoiceTask.load($0, split: split) }
        guard let limit else { return read }
        return read.map { var t = $0; t.examples = Array(t.examples.prefix(limit)); return t }
    }

    /// Makes these the session's tasks (read by `readTasks`, or made by tests).
    public func useTasks(_ tasks: [MultipleChoiceTask]) {
        self.tasks = tasks
    }

    /// The session's tasks whose name is, or starts with, one of `names` (`arithmetic` selects
    /// `arithmetic:1_digit_addition` …); all of them for nil.
    public func selectTasks(_ names: [String]?) throws -> [MultipleChoiceTask] {
        guard !tasks.isEmpty else { throw WorkbenchError.invalid("no tasks are loaded: use `data tasks austen_lambada` (`data tasks` lists them) first") }
        guard let names else { return tasks }
        var chosen = [MultipleChoiceTask]()
        for name in names {
            let matching = tasks.filter { $0.name == name || $0.name.hasPrefix(name + ":") }
            guard !matching.isEmpty else {
                throw WorkbenchError.invalid("no loaded task `\(name)`; loaded: \(Set(tasks.map { $0.name.split(separator: ":").first.map(String.init) ?? $0.name }).sorted().joined(separator: ", "))")
            }
            chosen += matching
        }
        return chosen
    }

    /// Multiple-choice accuracy of the current model (and active subnet) on the chosen tasks.
    public func accuracy(tasks names: [String]? = nil, parameters: MultipleChoiceScoring.Parameters,
                         progress: ((MultipleChoiceScoring.Progress) -> Void)? = nil) throws -> (results: [MultipleChoiceScoring.TaskResult], interrupted: Bool) {
        let model = try requireModel()
        let chosen = try selectTasks(names)
        var p = parameters
        p.seed = seed
        return MultipleChoiceScoring.evaluate(model: model, tasks: chosen, parameters: p, cancellation: cancellation, progress: progress)
    }

    /// Mean accuracy over the chosen tasks (each task's own mean, averaged), for `cost` and search.
    public func meanAccuracy(tasks names: [String]? = nil, limit: Int) throws -> Double {
        let (results, interrupted) = try accuracy(tasks: names, parameters: .init(limit: limit))
        if interrupted { throw CancellationError() }
        return results.isEmpty ? 0 : results.map(\.accuracy).reduce(0, +) / Double(results.count)
    }

    /// Sets prompt/answer examples as what `train` learns from.
    public func useExamples(name: String, pairs: [(prompt: String, answer: String)]) throws {
        guard !pairs.isEmpty else { throw WorkbenchError.invalid("\(name) has no examples") }
        examples = (name, pairs)
    }

    /// Training and validation data from the examples: the last tenth (at least one) held out.
    func exampleData() throws -> (train: TrainingData, validation: TrainingData, name: String)? {
        guard let examples else { return nil }
        let model = try requireModel()
        let tokenized = examples.pairs.map { pair -> (prompt: [Int32], answer: [Int32]) in
            (MultipleChoiceScoring.promptTokens(pair.prompt, tokenizer: model.tokenizer), model.tokenizer.encode(pair.answer))
        }
        guard tokenized.count >= 2 else { throw WorkbenchError.invalid("\(examples.name) needs at least 2 examples (one is held out for validation)") }
        let held = max(1, tokenized.count / 10)
        let padding = model.tokenizer.eosID ?? 0
        return (InstructionExamples(examples: Array(tokenized.dropLast(held)), padding: padding),
                InstructionExamples(examples: Array(tokenized.suffix(held)), padding: padding), examples.name)
    }
}
