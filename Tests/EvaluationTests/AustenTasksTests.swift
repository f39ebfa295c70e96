@testable import Evaluation
import Foundation
import Transformer
import XCTest

/// The tasks generated from the Austen novels: sentence cutting on text made here, then every
/// example of both tasks and both splits checked against the rules of their construction, on the
/// novels as the set-up puts them in the cache (they ship in the repository).
final class AustenTasksTests: XCTestCase {
    func testSentencesFollowTheTextsLayout() {
        let text = """
            Persuasion

            by Jane Austen

            Chapter 1

            Sir Walter Elliot was vain.  He read the _Baronetage_ daily. Mr. Shepherd
            agreed!  "Did he?" asked Anne.  "Yes."

            "Oh! no," said Mrs. Clay, "not at all."

            CHAPTER II

            A second chapter. It ends here
            """
        let chapters = NovelSentences(text: text).chapters
        XCTAssertEqual(chapters.count, 2, "the title before the first heading is left out")
        XCTAssertEqual(chapters[0].map(\.text), ["Sir Walter Elliot was vain.", "He read the Baronetage daily.", "Mr. Shepherd agreed!",
                                                  "\"Did he?\" asked Anne.", "\"Yes.\"", "\"Oh! no,\" said Mrs. Clay, \"not at all.\""])
        XCTAssertEqual(chapters[0].map(\.startsParagraph), [true, false, false, false, false, true])
        XCTAssertEqual(chapters[0][2].wordCount, 3)
        XCTAssertEqual(chapters[1].map(\.text), ["A second chapter.", "It ends here"])
        XCTAssertEqual(NovelSentences.join(chapters[0][3...5]), "\"Did he?\" asked Anne. \"Yes.\"\n\"Oh! no,\" said Mrs. Clay, \"not at all.\"")
    }

    func austen() throws -> TextCorpus {
        do { return try TextCorpus.austen() } catch {
            XCTFail("\(error): the test command's set-up puts the novels in the cache")
            throw error
        }
    }

    func testLambadaExamplesFollowTheirConstruction() throws {
        let corpus = try austen()
        // Persuasion as the passages read it: one space between words, no emphasis marks.
        let flattened = try corpus.text("persuasion").replacingOccurrences(of: "_", with: "")
            .split(whereSeparator: { $0 == " " || $0 == "\n" }).joined(separator: " ")
        for split in AustenTasks.Split.allCases {
            let task = try AustenTasks.task("austen_lambada", split: split, corpus: corpus)
            XCTAssertEqual(task.name, split == .test ? "austen_lambada" : "austen_lambada.train")
            XCTAssertTrue(task.scoresGreedy)
            XCTAssertGreaterThanOrEqual(task.examples.count, split == .test ? 200 : 1000, "\(split)")
            for (index, example) in task.examples.enumerated() {
                XCTAssertEqual(example.choices.count, 4)
                XCTAssertEqual(Set(example.choices.map { $0.lowercased() }).count, 4, "distinct choices: \(example.choices)")
                XCTAssertEqual(example.scores.filter { $0 == 1 }.count, 1)
                XCTAssertEqual(example.scores.reduce(0, +), 1)
                let prompt = task.format.prompt(example)
                XCTAssertEqual(prompt, example.input, "the passage alone, nothing added")
                let words = Set(AustenTasks.words(prompt).map { $0.lowercased() })
                for choice in example.choices {
                    XCTAssertTrue(choice.hasPrefix(" ") && AustenTasks.isContentWord(Substring(choice.dropFirst())), choice)
                    // (The target may occur capitalised at a sentence's start: "Well" for "well".)
                    XCTAssertTrue(words.contains(choice.dropFirst().lowercased()), "every choice is a word of the passage: \(choice)")
                }
                XCTAssertEqual(Set(example.choices.map { $0.dropFirst().first!.isUppercase }).count, 1, "one capitalisation: \(example.choices)")
                // (The answer is among the passage's words above: the target occurs in the context.)
                XCTAssertGreaterThanOrEqual(prompt.split(whereSeparator: { $0 == " " || $0 == "\n" }).count, 50)
                let end = String(prompt.suffix(60)).replacingOccurrences(of: "\n", with: " ")
                guard index < 100 else { continue }  // (a search through the novel each: the first hundred)
                XCTAssertEqual(flattened.contains(end), split == .test, "test passages from Persuasion, train passages never: \(end)")
            }
        }
    }

    func testNextSentenceExamplesFollowTheirConstruction() throws {
        let corpus = try austen()
        let task = try AustenTasks.task("austen_next_sentence", split: .test, corpus: corpus)
        XCTAssertFalse(task.scoresGreedy)
        XCTAssertGreaterThanOrEqual(task.examples.count, 500)
        for example in task.examples {
            XCTAssertEqual(Set(example.choices).count, 4)
            XCTAssertEqual(example.scores.filter { $0 == 1 }.count, 1)
            let separators = Set(example.choices.map(\.first))
            XCTAssertEqual(separators.count, 1, "every choice follows the passage the same way")
            XCTAssertTrue(separators.first! == " " || separators.first! == "\n")
            let lengths = example.choices.map { Double($0.split(separator: " ").count) }
            let truth = lengths[example.scores.firstIndex(of: 1)!]
            for length in lengths { XCTAssertTrue(length >= truth * 2 / 3 - 1e-9 && length <= truth * 3 / 2 + 1e-9, "\(lengths)") }
            XCTAssertFalse(example.choices.contains { example.input.contains($0.dropFirst()) }, "no choice is part of the passage")
        }
    }

    func testTasksAreFixedAndLoadByName() throws {
        let corpus = try austen()
        let made = try AustenTasks.generate("austen_next_sentence", split: .test, corpus: corpus)
        let loaded = try MultipleChoiceTask.load("austen_next_sentence")
        XCTAssertEqual(loaded.map(\.name), ["austen_next_sentence"])
        XCTAssertEqual(loaded[0].examples, made.examples, "by name, the test split: the same examples in the same order, every time")
        XCTAssertEqual(try MultipleChoiceTask.load("austen_lambada", split: .train)[0].name, "austen_lambada.train")
        XCTAssertThrowsError(try MultipleChoiceTask.load("winowhy", split: .train)) {
            XCTAssertTrue("\($0)".contains("applies to the generated tasks"), "\($0)")
        }
        XCTAssertThrowsError(try MultipleChoiceTask.load("austen_lambad")) {
            XCTAssertTrue("\($0)".contains("austen_lambada, austen_next_sentence"), "\($0)")
        }
    }

    /// The point of the tasks: SmolLM2-135M is far above chance on them (measured on the whole test
    /// split: acc 87 %, greedy 42 %, chance 25 %). On the first 40 examples the bounds sit 3.5 or more
    /// standard errors below those figures, so a broken prompt, choice or split fails here.
    func testSmolLM2IsFarAboveChanceOnTheLambadaTask() throws {
        let path = TextCorpus.cacheDirectory() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"
        guard FileManager.default.fileExists(atPath: path) else {
            XCTFail("the real model is not at \(path): the test command's set-up fetches it")
            return
        }
        let model = try LlamaModel.load(path: path)
        var task = try MultipleChoiceTask.load("austen_lambada")[0]
        task.examples = Array(task.examples.prefix(40))
        let (results, interrupted) = MultipleChoiceScoring.evaluate(model: model, tasks: [task])
        XCTAssertFalse(interrupted)
        let r = try XCTUnwrap(results.first)
        XCTAssertEqual(r.chance, 0.25, accuracy: 1e-9)
        XCTAssertGreaterThan(r.accuracy, 0.6, "acc \(r.accuracy)")
        XCTAssertGreaterThan(try XCTUnwrap(r.greedyAccuracy), 0.15)
    }
}
