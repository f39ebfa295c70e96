import Foundation
import Tensors
@testable import Transformer
import XCTest

final class ChannelOrderTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 2, dim: 16, ffnDim: 48, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
    let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 11) % 256) }

    func logits(_ model: LlamaModel) -> [Float] { model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array }

    func calibration() -> [[Int32]] {
        var sequences = [[Int32]]()
        for s in 0..<4 {
            var sequence = [Int32]()
            for t in 0..<32 { sequence.append(Int32((t * 53 + s * 17 + 5) % 256)) }
            sequences.append(sequence)
        }
        return sequences
    }

    /// Moving an MLP's channels (gate/up rows, down columns together) leaves the function as it
    /// was; putting them back restores the weights bit for bit.
    func testPermutingChannelsKeepsTheFunctionAndRestoresExactly() {
        let model = LlamaModel.random(config: config, seed: 7)
        let before = logits(model)
        let weights = model.layers.map { [$0.wGate.array, $0.wUp.array, $0.wDown.array] }
        var rng = SeededGenerator(seed: 1)
        for l in 0..<config.layers {
            var order = Array(0..<config.ffnDim)
            order.shuffle(using: &rng)
            model.permuteMLPChannels(layer: l, order: order)
            XCTAssertEqual(model.layers[l].mlpChannelOrder, order)
        }
        XCTAssertNotEqual(model.layers[0].wGate.array, weights[0][0], "the weights moved")
        XCTAssertLessThan(zip(logits(model), before).map { abs($0 - $1) }.max()!, 1e-4)
        // A second permutation composes with the first.
        let reverse = Array((0..<config.ffnDim).reversed())
        let first = model.layers[1].mlpChannelOrder
        model.permuteMLPChannels(layer: 1, order: reverse)
        XCTAssertEqual(model.layers[1].mlpChannelOrder, reverse.map { first[$0] })
        model.restoreLoadedMLPOrder()
        XCTAssertEqual(model.layers.map { [$0.wGate.array, $0.wUp.array, $0.wDown.array] }, weights)
        XCTAssertEqual(model.layers[0].mlpChannelOrder, Array(0..<config.ffnDim))
    }

    /// Importance is ‖W_down[:, j]‖₂ · RMS(h_j): a channel whose down column is zero is worth
    /// nothing, and scaling a down column scales its importance.
    func testImportanceFollowsTheDownColumnAndTheActivation() {
        let model = LlamaModel.random(config: config, seed: 8)
        let down = model.layers[0].wDown
        for o in 0..<config.dim { down[o * config.ffnDim + 5] = 0; down[o * config.ffnDim + 9] *= 3 }
        let before = LlamaModel.random(config: config, seed: 8).mlpChannelImportance(sequences: calibration())!
        let importance = model.mlpChannelImportance(sequences: calibration())!
        XCTAssertEqual(importance[0][5], 0)
        XCTAssertEqual(importance[0][9], 3 * before[0][9], accuracy: 1e-9 * max(1, before[0][9]))
    }

    /// After sorting, the channels are in descending importance, the model computes the same
    /// function, and a narrower MLP then departs less from the full one than the loaded order does.
    func testSortedChannelsKeepTheFunctionAndMakeNarrowerMLPsCloser() {
        let model = LlamaModel.random(config: config, seed: 9)
        let full = logits(model)
        model.activeShape = .widths([24, 24], config)
        let loadedError = zip(logits(model), full).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +)
        model.activeShape = .full(config)

        model.orderMLPChannels(byImportance: model.mlpChannelImportance(sequences: calibration())!)
        XCTAssertLessThan(zip(logits(model), full).map { abs($0 - $1) }.max()!, 1e-4)
        for scores in model.mlpChannelImportance(sequences: calibration())! {
            // Measured again on the permuted model, down's sums run in another order: near-ties may
            // swap by rounding, so "descending" allows a relative 1e-5.
            XCTAssertTrue(zip(scores, scores.dropFirst()).allSatisfy { $0 >= $1 * (1 - 1e-5) },
                          "measured again, the importance is in descending order")
        }
        model.activeShape = .widths([24, 24], config)
        let sortedError = zip(logits(model), full).map { Double(($0 - $1) * ($0 - $1)) }.reduce(0, +)
        XCTAssertLessThan(sortedError, loadedError)
    }

    /// Calibration measures the frozen model: attached adapters are set aside and put back, and a
    /// cancelled calibration says so.
    func testCalibrationSetsAdaptersAsideAndStopsWhenCancelled() {
        final class AddOne: ProjectionAdapter {
            func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, training: Bool) {
                for i in 0..<(rows * outFeatures) { out[i] += 1 }
            }
            func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                          inFeatures: Int, outFeatures: Int) {}
        }
        let plain = LlamaModel.random(config: config, seed: 10).mlpChannelImportance(sequences: calibration())!
        let model = LlamaModel.random(config: config, seed: 10)
        let adapter = AddOne()
        model.layers[0].adapters[.up] = adapter
        model.activeShape.layers[1].mlpWidth = 16
        XCTAssertEqual(model.mlpChannelImportance(sequences: calibration())!, plain)
        XCTAssertTrue(model.layers[0].adapters[.up] === adapter)
        XCTAssertEqual(model.activeShape.layers[1].mlpWidth, 16)
        XCTAssertNil(model.mlpChannelImportance(sequences: calibration(), isCancelled: { true }))
        XCTAssertTrue(model.layers[0].adapters[.up] === adapter)
    }
}
