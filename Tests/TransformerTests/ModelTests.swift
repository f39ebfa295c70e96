import Foundation
import Tensors
import Transformer
import XCTest

final class ModelTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)

    func testSameSeedSameModelAndBatchesAreIndependent() {
        let a = LlamaModel.random(config: config, seed: 1), b = LlamaModel.random(config: config, seed: 1)
        XCTAssertEqual(a.tokenEmbedding.array, b.tokenEmbedding.array)
        XCTAssertNotEqual(a.tokenEmbedding.array, LlamaModel.random(config: config, seed: 2).tokenEmbedding.array)
        let s1: [Int32] = [1, 2, 3, 4], s2: [Int32] = [9, 8, 7, 6]
        let batched = a.forward(tokens: s1 + s2, batch: 2, seq: 4, logits: .all).array
        let alone = a.forward(tokens: s2, batch: 1, seq: 4, logits: .all).array
        let second = Array(batched[(4 * 256)...])
        XCTAssertEqual(zip(second, alone).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5)
        let last = a.forward(tokens: s1 + s2, batch: 2, seq: 4, logits: .last).array
        // Different GEMM shapes (8 rows against 4): OpenBLAS may take another kernel path, so the
        // sums round differently in the last digits.
        XCTAssertEqual(zip(last[256...], alone[(3 * 256)...]).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5)
    }

    /// Accuracy counts the targets whose logit is the row's largest; left-out targets (−1) count
    /// in neither the loss nor the accuracy. A target set to each row's argmax scores 100 %.
    func testScoreCountsGreedyHitsAndSkipsMaskedTargets() {
        let model = LlamaModel.random(config: config, seed: 5)
        let tokens: [Int32] = [3, 14, 15, 92, 65, 35, 89, 79]
        let logits = model.forward(tokens: tokens, batch: 2, seq: 4, logits: .all).array
        var argmax = [Int32]()
        for r in 0..<8 {
            let row = Array(logits[(r * 256)..<((r + 1) * 256)])
            argmax.append(Int32(row.firstIndex(of: row.max()!)!))
        }
        var targets = argmax
        targets[1] = (argmax[1] + 1) % 256      // a miss
        targets[5] = -1                         // left out
        let scored = model.score(tokens: tokens, targets: targets, batch: 2, seq: 4)
        XCTAssertEqual(scored.counted, 7)
        XCTAssertEqual(scored.correct, 6)
        let (lossSum, counted) = model.loss(tokens: tokens, targets: targets, batch: 2, seq: 4)
        XCTAssertEqual(counted, 7)
        XCTAssertEqual(scored.lossSum, lossSum)
        XCTAssertEqual(model.score(tokens: tokens, targets: argmax, batch: 2, seq: 4).correct, 8)
    }

    func testParameterAndMACCounts() {
        let model = LlamaModel.random(config: config, seed: 1)
        XCTAssertEqual(model.parameterCount, config.parameterCount())
        // Per layer: q, o (32·32 each), k, v (16·32 each), gate, up, down (64·32 each); plus the head (256·32).
        XCTAssertEqual(config.macsPerToken, 2 * (2 * 1024 + 2 * 512 + 3 * 2048) + 256 * 32)
    }
}
