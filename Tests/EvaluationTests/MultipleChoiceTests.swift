@testable import Evaluation
import Foundation
import Tensors
import Transformer
import XCTest

final class MultipleChoiceTests: XCTestCase {
    let model = LlamaModel.random(config: try! LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2,
                                                                  vocabSize: 256, contextLength: 64), seed: 5)

    func directory() -> String {
        let path = NSTemporaryDirectory() + "sculpt-task-\(UUID().uuidString)"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func write(_ object: [String: Any], to path: String) throws {
        try FileManager.default.createDirectory(atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try JSONSerialization.data(withJSONObject: object).write(to: URL(fileURLWithPath: path))
    }

    /// log p(choice | prompt) one token at a time, each from its own forward pass, and whether each
    /// token was the most likely: a path that shares nothing with the batched scorer.
    func bruteForce(prompt: [Int32], choice: [Int32]) -> (logLikelihood: Double, isGreedy: Bool) {
        var total = 0.0
        var greedy = true
        var context = prompt
        for token in choice {
            let logits = model.forward(tokens: context, batch: 1, seq: context.count, logits: .last).array
            let lse = logits.withUnsafeBufferPointer { logSumExp($0.baseAddress!, $0.count) }
            total += Double(logits[Int(token)] - lse)
            if logits.contains(where: { $0 > logits[Int(token)] }) { greedy = false }
            context.append(token)
        }
        return (total, greedy)
    }

    func testBatchedLogLikelihoodsMatchTokenByTokenScoring() {
        let prompt = model.tokenizer.encode("\nQ: What is 2 plus 2?\nA: ")
        let choices = ["4", "22", "banana"].map { model.tokenizer.encode($0) }
        let batched = MultipleChoiceScoring.logLikelihoods(model: model, prompt: prompt, choices: choices)
        for (i, choice) in choices.enumerated() {
            XCTAssertEqual(batched[i].logLikelihood, bruteForce(prompt: prompt, choice: choice).logLikelihood, accuracy: 1e-3, "choice \(i)")
        }
        // A prompt longer than the context keeps its end.
        let long = [Int32](repeating: 65, count: 200) + prompt
        let clipped = MultipleChoiceScoring.logLikelihoods(model: model, prompt: long, choices: [choices[2]])
        XCTAssertEqual(clipped[0].logLikelihood, bruteForce(prompt: Array(long.suffix(64 - choices[2].count)), choice: choices[2]).logLikelihood, accuracy: 1e-3)
    }

    /// The prompt computed once with its keys and values cached, the choices as continuations
    /// over it, against every choice run whole with the prompt (different shapes: a tolerance).
    func testCachedPromptContinuationsMatchWholeRows() {
        let prompt = model.tokenizer.encode("\nQ: Which is heavier?\nA: ")
        let choices = ["lead", "a feather", "x", "both weigh the same"].map { model.tokenizer.encode($0) }
        let cached = MultipleChoiceScoring.logLikelihoods(model: model, prompt: prompt, choices: choices)
        let whole = MultipleChoiceScoring.batchedLogLikelihoods(model: model, prompt: prompt, choices: choices)
        for i in choices.indices {
            let reference = bruteForce(prompt: prompt, choice: choices[i])
            XCTAssertEqual(cached[i].logLikelihood, whole[i].logLikelihood, accuracy: 1e-3, "choice \(i)")
            XCTAssertEqual(cached[i].logLikelihood, reference.logLikelihood, accuracy: 1e-3, "choice \(i)")
            XCTAssertEqual(cached[i].isGreedy, reference.isGreedy, "choice \(i)")
            XCTAssertEqual(whole[i].isGreedy, reference.isGreedy, "choice \(i)")
        }
        // The model's own greedy continuation is greedy on both paths; one token changed is not.
        var written = [Int32]()
        for _ in 0..<3 {
            let logits = model.forward(tokens: prompt + written, batch: 1, seq: prompt.count + written.count, logits: .last).array
            let sorted = logits.sorted(by: >)
            XCTAssertGreaterThan(sorted[0] - sorted[1], 1e-3, "a near tie would make greedy depend on the path's rounding")
            written.append(Int32(logits.firstIndex(of: sorted[0])!))
        }
        var changed = written
        changed[1] = (changed[1] + 1) % 256
        for scores in [MultipleChoiceScoring.logLikelihoods(model: model, prompt: prompt, choices: [written, changed]),
                       MultipleChoiceScoring.batchedLogLikelihoods(model: model, prompt: prompt, choices: [written, changed])] {
            XCTAssertEqual(scores.map(\.isGreedy), [true, false])
        }
    }

    func testBigBenchPromptsDefaultsOverridesAndChoiceOrder() throws {
        // numpy.random.RandomState(42).permutation of the sorted choices.
        XCTAssertEqual(PromptFormat.listedOrder(["a", "b"]), ["b", "a"])
        XCTAssertEqual(PromptFormat.listedOrder(["d", "c", "b", "a"]), ["b", "d", "a", "c"])
        let example = MultipleChoiceExample(input: "What is 1 plus 1?", choices: ["2", "banana"], scores: [1, 0])
        XCTAssertEqual(PromptFormat().prompt(example), "\nQ: What is 1 plus 1?\n  choice: banana\n  choice: 2\nA: ")
        XCTAssertEqual(example.answer, "2")
        XCTAssertEqual(example.chance, 0.5)

        let root = directory()
        try write(["examples": [["input": "Is it?", "target_scores": ["Yes": 1, "No": 0]],
                                ["input": "Is it?", "target_scores": ["Yes": 1, "No": 0]],   // a duplicate: dropped
                                ["input": "Or not?", "target_scores": ["Yes": 0, "No": 1], "target": "No, it is not."]],
                   "task_prefix": "Answer.\n", "example_input_prefix": "\n", "example_output_prefix": "\nSo: ",
                   "append_choices_to_input": false], to: root + "/yesno/task.json")
        let tasks = try MultipleChoiceTask.load(root + "/yesno")
        XCTAssertEqual(tasks.count, 1)
        let task = tasks[0]
        XCTAssertEqual(task.name, "yesno")
        XCTAssertEqual(task.examples.count, 2)
        XCTAssertEqual(task.examples[0].choices, ["No", "Yes"], "choices sorted by code point")
        XCTAssertEqual(task.format.prompt(task.examples[0]), "Answer.\n\nIs it?\nSo: ")
        XCTAssertEqual(task.format.prompt(task.examples[0], shots: [task.examples[1]]), "Answer.\n\nOr not?\nSo: No, it is not.\n\nIs it?\nSo: ")
        XCTAssertEqual(task.chance, 0.5)
    }

    func testTasksMadeOfSubtasksAndBadFiles() throws {
        let root = directory()
        try write(["name": "parent", "description": "no examples here"], to: root + "/parent/task.json")
        for sub in ["b_second", "a_first"] {
            try write(["examples": [["input": sub, "target_scores": ["x": 1, "y": 0]]]], to: root + "/parent/\(sub)/task.json")
        }
        XCTAssertEqual(try MultipleChoiceTask.load(root + "/parent").map(\.name), ["parent:a_first", "parent:b_second"])

        XCTAssertThrowsError(try MultipleChoiceTask.load(root + "/none")) { XCTAssertTrue("\($0)".contains("no task at"), "\($0)") }
        try "not json".write(toFile: root + "/bad.json", atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try MultipleChoiceTask.load(root + "/bad.json")) { XCTAssertTrue("\($0)".contains("not a JSON object"), "\($0)") }
        try write(["examples": [["input": "one choice", "target_scores": ["x": 1]]]], to: root + "/thin/task.json")
        XCTAssertThrowsError(try MultipleChoiceTask.load(root + "/thin")) { XCTAssertTrue("\($0)".contains("has no examples"), "\($0)") }
    }

    func testAccuracyCountsChanceNormalizationAndInterrupt() throws {
        // A choice the model must prefer: the prompt's own continuation, repeated, against one of
        // the same length that never occurs. A random model copies poorly, so score what it says.
        let examples = (0..<6).map { i in
            MultipleChoiceExample(input: "abc\(i)", choices: ["zz", "qqqqqqqq"], scores: [1, 0])
        }
        let task = MultipleChoiceTask(name: "t", examples: examples)
        let (results, interrupted) = MultipleChoiceScoring.evaluate(model: model, tasks: [task])
        XCTAssertFalse(interrupted)
        let r = try XCTUnwrap(results.first)
        XCTAssertEqual(r.count, 6)
        XCTAssertEqual(r.chance, 0.5)
        // Recompute acc and acc_norm from the log-likelihoods, independently of `evaluate`.
        var acc = 0.0, norm = 0.0
        for example in examples {
            let prompt = MultipleChoiceScoring.promptTokens(task.format.prompt(example), tokenizer: model.tokenizer)
            let ll = example.choices.map { bruteForce(prompt: prompt, choice: model.tokenizer.encode($0)).logLikelihood }
            acc += ll[0] >= ll[1] ? 1 : 0
            norm += ll[0] / 2 >= ll[1] / 8 ? 1 : 0
        }
        XCTAssertEqual(r.accuracy, acc / 6, accuracy: 1e-9)
        XCTAssertEqual(r.normalizedAccuracy, norm / 6, accuracy: 1e-9)

        let cancellation = CancellationToken()
        let partial = MultipleChoiceScoring.evaluate(model: model, tasks: [task], cancellation: cancellation) { p in
            if p.done == 2 { cancellation.cancel() }
        }
        XCTAssertTrue(partial.interrupted)
        XCTAssertEqual(partial.results.first?.count, 2, "the examples scored before the interrupt are kept")
        XCTAssertEqual(MultipleChoiceScoring.evaluate(model: model, tasks: [task], parameters: .init(limit: 3)).results.first?.count, 3)
    }

    func testEmptyPromptsGetABeginningToken() {
        XCTAssertEqual(MultipleChoiceScoring.promptTokens("", tokenizer: model.tokenizer).count, 1)
        XCTAssertEqual(MultipleChoiceScoring.standardError([1, 0, 1, 0]), (1.0 / 3 / 4).squareRoot(), accuracy: 1e-12)
    }

    func testGeneratedArithmeticIsCorrectSeededAndDisjoint() {
        let a = ArithmeticExamples.generate(count: 300, maxDigits: 2, seed: 1)
        XCTAssertEqual(a.count, 300)
        XCTAssertEqual(a.map(\.input), ArithmeticExamples.generate(count: 300, maxDigits: 2, seed: 1).map(\.input))
        for example in a {
            // "What is A op B?": the marked answer is the arithmetic's.
            let words = example.input.dropFirst(8).dropLast().split(separator: " ")
            let x = Int(words.first!)!, y = Int(words.last!)!
            let op = words.dropFirst().dropLast().joined(separator: " ")
            let expected = ["plus": x + y, "minus": x - y, "times": x * y, "divided by": y == 0 ? 0 : x / y][op]!
            XCTAssertEqual(example.answer, String(expected), example.input)
            XCTAssertEqual(example.scores.reduce(0, +), 1, "one correct choice")
            XCTAssertEqual(Set(example.choices).count, example.choices.count)
        }
        let excluded = Set(a.prefix(100).map(\.input))
        let b = ArithmeticExamples.generate(count: 300, maxDigits: 2, seed: 1, excluding: excluded)
        XCTAssertTrue(excluded.isDisjoint(with: b.map(\.input)))
        let pairs = ArithmeticExamples.pairs(Array(a.prefix(1)))
        XCTAssertTrue(pairs[0].prompt.hasSuffix("\nA: ") && pairs[0].answer == a[0].answer)
    }

    func testExampleFilesAreJSONLinesOfPromptAndAnswer() throws {
        let path = directory() + "/qa.jsonl"
        try "{\"prompt\": \"2+2=\", \"answer\": \"4\"}\n\n{\"prompt\": \"3+3=\", \"answer\": \"6\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertEqual(try ExampleFile.load(path).map(\.answer), ["4", "6"])
        try "{\"prompt\": \"2+2=\"}\n".write(toFile: path, atomically: true, encoding: .utf8)
        XCTAssertThrowsError(try ExampleFile.load(path)) { XCTAssertTrue("\($0)".contains("line 1"), "\($0)") }
    }
}
