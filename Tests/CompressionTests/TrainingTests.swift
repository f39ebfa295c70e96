@testable import Compression
import Evaluation
import Foundation
import Tensors
import Transformer
import XCTest

final class TrainingTests: XCTestCase {
    /// Austen if the set-up fetched it, else a repetitive text made here: training must lower
    /// the validation loss either way.
    func text() -> (train: String, validation: String) {
        if let austen = try? TextCorpus.austen() {
            return (String(try! austen.text("emma").prefix(20_000)), String(try! austen.text("northangerabbey").prefix(6_000)))
        }
        let sentence = "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife. "
        return (String(repeating: sentence, count: 300), String(repeating: sentence, count: 60))
    }

    func run(seed: UInt64, steps: Int) throws -> (Training.Result, Double) {
        let config = try LlamaConfiguration(layers: 2, dim: 64, ffnDim: 128, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        let model = LlamaModel.random(config: config, seed: 1)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: Projection.allCases), seed: seed)
        let (trainText, validationText) = text()
        let train = TextWindows(model.tokenizer.encode(trainText)), validation = TextWindows(model.tokenizer.encode(validationText))
        var p = Training.Parameters(steps: steps)
        p.learningRate = 3e-2
        p.batch = 4
        p.seq = 32
        p.warmup = 5
        p.evalEvery = 20
        p.seed = seed
        let before = Training.validationLoss(model: model, data: validation, batch: 4, seq: 32, batches: 4)
        return (Training.run(model: model, adapters: lora, train: train, validation: validation, parameters: p), before)
    }

    func testTrainingLowersValidationLossByAClearMargin() throws {
        let started = Date()
        let (result, before) = try run(seed: 7, steps: 60)
        print("tiny training: 60 steps in \(Date().timeIntervalSince(started)) s")
        let after = try XCTUnwrap(result.finalValidationLoss)
        // A random model starts near ln 256 ≈ 5.5 nats; adapters on all seven projections learn the
        // byte statistics of English quickly.
        XCTAssertLessThan(after, before - 0.5, "validation loss \(before) → \(after)")
        XCTAssertEqual(result.events.count, 60)
        XCTAssertEqual(result.events.filter { $0.validationLoss != nil }.count, 3)
    }

    func testSameSeedSameLosses() throws {
        let a = try run(seed: 9, steps: 6).0.events.map(\.trainLoss)
        let b = try run(seed: 9, steps: 6).0.events.map(\.trainLoss)
        XCTAssertEqual(a, b)
        let c = try run(seed: 10, steps: 6).0.events.map(\.trainLoss)
        XCTAssertNotEqual(a, c)
    }

    func testInstructionMaskCountsOnlyTheAnswer() {
        let data = InstructionExamples(examples: [(prompt: [1, 2, 3], answer: [4, 5])], padding: 0)
        let (tokens, targets) = data.fixed(index: 0, batch: 1, seq: 6)
        XCTAssertEqual(tokens, [1, 2, 3, 4, 5, 0])
        // Position 2 (token 3) predicts 4, position 3 predicts 5; nothing else counts.
        XCTAssertEqual(targets, [-1, -1, 4, 5, -1, -1])
    }

    func testCancellationKeepsWhatWasTrained() throws {
        let config = try LlamaConfiguration(layers: 1, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        let model = LlamaModel.random(config: config, seed: 1)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: [.q, .v]), seed: 1)
        let token = CancellationToken()
        var p = Training.Parameters(steps: 1000)
        p.batch = 2
        p.seq = 16
        let data = TextWindows(model.tokenizer.encode(String(repeating: "abcdefgh ", count: 50)))
        let result = Training.run(model: model, adapters: lora, train: data, validation: nil, parameters: p, cancellation: token) { event in
            if event.step == 3 { token.cancel() }
        }
        XCTAssertTrue(result.interrupted)
        XCTAssertEqual(result.events.count, 3)
        XCTAssertNotEqual(lora.ordered[0].adapter.b.array, [Float](repeating: 0, count: lora.ordered[0].adapter.b.count), "steps done are kept")
    }
}

final class InstructionExampleTests: XCTestCase {
    func testALongPromptLosesItsStartNeverTheAnswer() {
        let data = InstructionExamples(examples: [(prompt: Array(1...20), answer: [100, 101])], padding: 0)
        let row = data.fixed(index: 0, batch: 1, seq: 8)
        // seq + 1 = 9 tokens: the prompt's last 7, then the answer; the last position predicts 101.
        XCTAssertEqual(row.tokens, [14, 15, 16, 17, 18, 19, 20, 100], "the prompt's end, then the answer")
        XCTAssertEqual(row.targets, [-1, -1, -1, -1, -1, -1, 100, 101], "the loss falls on the answer only")
    }
}
