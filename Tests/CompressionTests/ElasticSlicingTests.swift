@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class ElasticSlicingTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 2, dim: 16, ffnDim: 32, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 32)

    /// A narrower MLP computed in place equals a model whose weights were cut to that width.
    func testElasticWidthEqualsATruncatedModel() throws {
        let model = LlamaModel.random(config: config, seed: 3)
        let tokens: [Int32] = [3, 40, 99, 200, 7]
        model.activeShape.layers[0].mlpWidth = 24
        model.activeShape.layers[1].mlpWidth = 16
        let elastic = model.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array

        // The same weights with the channels beyond each width zeroed: silu(0)·0 = 0 and zero
        // down columns, so those channels add nothing.
        let cut = LlamaModel.random(config: config, seed: 3)
        for (l, width) in [(0, 24), (1, 16)] {
            let layer = cut.layers[l]
            for row in width..<32 {
                for c in 0..<16 { layer.wGate[row * 16 + c] = 0; layer.wUp[row * 16 + c] = 0 }
            }
            for row in 0..<16 { for c in width..<32 { layer.wDown[row * 32 + c] = 0 } }
        }
        let truncated = cut.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array
        XCTAssertLessThan(zip(elastic, truncated).map { abs($0 - $1) }.max()!, 1e-5)
    }

    /// Gradients of an elastic subnet (smaller rank, narrower MLP) match finite differences, and
    /// the inactive slices of the adapters get none.
    func testElasticSubnetGradientsMatchFiniteDifferences() throws {
        let model = LlamaModel.random(config: config, seed: 4)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: Projection.allCases), seed: 1)
        var rng = SeededGenerator(seed: 2)
        for (_, _, adapter) in lora.ordered { rng.fillNormal(adapter.b, std: 0.3); adapter.activeRank = 2 }
        model.activeShape.layers[0].mlpWidth = 24
        model.activeShape.layers[1].mlpWidth = 16
        let tokens: [Int32] = (0..<8).map { Int32(($0 * 29 + 3) % 256) }
        let targets: [Int32] = (0..<8).map { Int32(($0 * 31 + 9) % 256) }
        let workspace = TrainingWorkspace(config: config, batch: 2, seq: 4)
        lora.zeroGradients()
        _ = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace)
        func meanLoss() -> Double {
            let (s, c) = model.loss(tokens: tokens, targets: targets, batch: 2, seq: 4)
            return s / Double(c)
        }
        for (l, p, adapter) in lora.ordered {
            let (i, o) = p.shape(config, ffn: model.activeShape.layers[l].mlpWidth)
            for (name, parameter, gradient, rows, cols, active) in [
                ("A", adapter.a, adapter.gradA, 4, adapter.inFeatures, { (r: Int, c: Int) in r < 2 && c < i }),
                ("B", adapter.b, adapter.gradB, adapter.outFeatures, 4, { (r: Int, c: Int) in r < o && c < 2 }),
            ] {
                for index in stride(from: 0, to: rows * cols, by: 3) {
                    let (r, c) = (index / cols, index % cols)
                    if !active(r, c) {
                        XCTAssertEqual(gradient[index], 0, "layer \(l) \(p) \(name)[\(r),\(c)] is outside the subnet")
                        continue
                    }
                    let saved = parameter[index]
                    parameter[index] = saved + 1e-2; let plus = meanLoss()
                    parameter[index] = saved - 1e-2; let minus = meanLoss()
                    parameter[index] = saved
                    let numeric = Float((plus - minus) / 2e-2)
                    let error = abs(numeric - gradient[index]) / max(1e-2, abs(numeric), abs(gradient[index]))
                    XCTAssertLessThan(error, 5e-2, "layer \(l) \(p) \(name)[\(r),\(c)]: numeric \(numeric), analytic \(gradient[index])")
                }
            }
        }
    }
}
