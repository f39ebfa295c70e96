@testable import Commands
import Evaluation
import Foundation
import Workbench
import XCTest

/// `data tasks`, `data examples`, `eval accuracy`, and accuracy in `cost` and the search, on a
/// task file made here.
final class TaskCommandTests: XCTestCase {
    func taskFile() throws -> String {
        let directory = NSTemporaryDirectory() + "sculpt-tasks-\(UUID().uuidString)/sums"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        let examples: [[String: Any]] = (0..<12).map { (i: Int) -> [String: Any] in
            let scores: [String: Int] = [String(i + 1): 1, String(i + 7): 0, "banana": 0]
            return ["input": "What is \(i) plus 1?", "target_scores": scores]
        }
        try JSONSerialization.data(withJSONObject: ["examples": examples]).write(to: URL(fileURLWithPath: directory + "/task.json"))
        return directory
    }

    func testTasksAccuracyExamplesCostAndSearch() throws {
        let path = try taskFile()
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 40)
        let card = try runner.run("data tasks \"\(path)\"", output: output).result?.plainText ?? ""
        XCTAssertTrue(card.contains("sums") && card.contains("12") && card.contains("33.3%"), card)
        XCTAssertTrue(card.contains("\nQ: What is 0 plus 1?\n  choice: "), "the card renders one prompt")

        let table = try runner.run("eval accuracy limit=5", output: output).result?.plainText ?? ""
        XCTAssertTrue(table.contains("5 of 12") && table.contains("acc_norm"), table)

        let examples = try runner.run("data examples arithmetic count=40 digits=3", output: output).result?.plainText ?? ""
        XCTAssertTrue(examples.contains("40 (4 held out for validation)"), examples)
        _ = try runner.run("lora rank=4\ntrain steps=3 batch=2 seq=64", output: output)
        XCTAssertEqual(session.trainingHistory.last?.step, 3)
        XCTAssertNotNil(session.trainingHistory.first?.validationLoss, "validation on the held-out examples")

        _ = try runner.run("elastic mode=B ranks=4,2 widths=100%,50%", output: output)
        let cost = try runner.run("cost heuristic tasks=all task_limit=4 latency=no", output: output).result?.plainText ?? ""
        XCTAssertTrue(cost.contains("task accuracy (all tasks, 4 each)"), cost)
        _ = try runner.run("search nsga2 population=4 generations=1 objectives=accuracy,macs task_limit=4 as s", output: output)
        let record = try XCTUnwrap(session.fronts["s"])
        XCTAssertEqual(record.objectives, [.accuracy, .macs])
        for individual in record.evaluated { XCTAssertTrue((0...1).contains(individual.objectives[0]), "a task error in [0, 1]") }

        XCTAssertThrowsError(try runner.run("eval accuracy tasks=nosuch", output: output)) { XCTAssertTrue("\($0)".contains("no loaded task"), "\($0)") }
        XCTAssertThrowsError(try runner.run("data tasks /nonexistent/task.json", output: output)) { XCTAssertTrue("\($0)".contains("no task at"), "\($0)") }
        XCTAssertEqual(session.tasks.count, 1, "a failed load keeps the tasks")
    }

    /// The generated Austen tasks through the commands: the list, a card, accuracy with the greedy
    /// column, the train split as training examples, and what each refuses.
    func testGeneratedTasksListLoadScoreAndTrain() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 40)
        let list = try runner.run("data tasks", output: output).result?.plainText ?? ""
        for name in ["austen_lambada", "austen_next_sentence", "winowhy", "generated (Austen)", "BIG-bench"] {
            XCTAssertTrue(list.contains(name), "\(name) in\n\(list)")
        }
        XCTAssertTrue(session.tasks.isEmpty, "listing loads nothing")

        let card = try runner.run("data tasks austen_lambada,austen_next_sentence limit=6", output: output).result?.plainText ?? ""
        XCTAssertTrue(card.contains("generated from persuasion (test split)") && card.contains("25.0%"), card)
        XCTAssertEqual(session.tasks.map(\.name), ["austen_lambada", "austen_next_sentence"])
        XCTAssertEqual(session.tasks.map(\.examples.count), [6, 6])

        let table = try runner.run("eval accuracy", output: output).result?.plainText ?? ""
        XCTAssertTrue(table.contains("greedy ± s.e."), table)
        let nextRow = table.split(separator: "\n").first { $0.hasPrefix("austen_next_sentence") }.map(String.init) ?? ""
        XCTAssertTrue(nextRow.contains("—"), "no greedy figure for a sentence choice: \(nextRow)")

        let trainCard = try runner.run("data tasks austen_next_sentence split=train limit=3", output: output).result?.plainText ?? ""
        XCTAssertTrue(trainCard.contains("austen_next_sentence.train") && trainCard.contains("emma"), trainCard)
        let saved = NSTemporaryDirectory() + "sculpt-examples-\(UUID().uuidString).jsonl"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: saved) }
        let examples = try runner.run("data examples austen_lambada count=50 save=\(saved)", output: output).result?.plainText ?? ""
        XCTAssertTrue(examples.contains("50 (5 held out for validation)") && examples.contains("never trained on"), examples)
        let written = try ExampleFile.load(saved)
        XCTAssertEqual(written.count, 50)
        let train = try MultipleChoiceTask.load("austen_lambada", split: .train)[0]
        XCTAssertEqual(written[7].prompt, train.examples[7].input)
        XCTAssertEqual(written[7].answer, train.examples[7].answer)
        XCTAssertThrowsError(try runner.run("data examples austen_lambada save=/nonexistent/dir/x.jsonl", output: output)) {
            XCTAssertTrue("\($0)".contains("cannot write /nonexistent/dir/x.jsonl: no directory /nonexistent/dir"), "\($0)")
        }
        _ = try runner.run("lora rank=2\ntrain steps=2 batch=2 seq=64", output: output)
        XCTAssertNotNil(session.trainingHistory.first?.validationLoss, "validation on the held-out passages")

        // save= writes a task.json that loads back as the same task.
        let file = NSTemporaryDirectory() + "sculpt-task-\(UUID().uuidString)/austen_lambada/task.json"
        try FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(atPath: ((file as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent) }
        _ = try runner.run("data tasks austen_lambada limit=9 save=\(file)", output: output)
        let original = session.tasks[0]
        let reread = try MultipleChoiceTask.load(file)[0]
        XCTAssertEqual(reread.name, "austen_lambada")
        XCTAssertEqual(reread.format, original.format)
        XCTAssertEqual(reread.examples.count, 9)
        for (a, b) in zip(original.examples, reread.examples) {
            XCTAssertEqual(a.input, b.input)
            XCTAssertEqual(a.answer, b.answer)
            XCTAssertEqual(Dictionary(uniqueKeysWithValues: zip(a.choices, a.scores)), Dictionary(uniqueKeysWithValues: zip(b.choices, b.scores)))
        }
        XCTAssertThrowsError(try runner.run("data tasks austen_lambada austen_next_sentence save=\(file)", output: output)) {
            XCTAssertTrue("\($0)".contains("writes one task"), "\($0)")
        }

        XCTAssertThrowsError(try runner.run("data tasks winowhy split=train", output: output)) {
            XCTAssertTrue("\($0)".contains("applies to the generated tasks"), "\($0)")
        }
        XCTAssertThrowsError(try runner.run("data tasks austen_lambda", output: output)) {
            XCTAssertTrue("\($0)".contains("austen_lambada"), "\($0)")
        }
        XCTAssertThrowsError(try runner.run("data tasks austen_lambada split=validation", output: output))
        XCTAssertEqual(session.tasks.map(\.name), ["austen_lambada"], "a failed load keeps the tasks")
        XCTAssertEqual(session.tasks[0].examples.count, 9)
    }

    func testInterruptedAccuracyKeepsWhatWasScored() throws {
        let path = try taskFile()
        let (session, runner, _) = try tinySession(reading: "Emma Woodhouse. ", repeated: 40, then: "data tasks \"\(path)\"")
        let watch = CancellingOutput(cancellation: session.cancellation)
        XCTAssertThrowsError(try runner.run("eval accuracy", output: watch)) { XCTAssertEqual(($0 as? CommandError)?.kind, .interrupted) }
        let shown = watch.events.compactMap { event -> String? in
            if case .display(let bundle, nil) = event { return bundle.plainText }
            return nil
        }
        XCTAssertTrue(shown.contains { $0.contains("interrupted after") }, "the partial table says how many: \(shown)")
        session.cancellation.reset()
    }
}
