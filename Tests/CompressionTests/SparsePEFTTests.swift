@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class SparsePEFTTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 2, dim: 16, ffnDim: 32, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 32)

    func sparseModel(seed: UInt64) throws -> LlamaModel {
        let model = LlamaModel.random(config: config, seed: seed)
        var p = PruningParameters()
        p.pattern = .unstructured(0.5)
        try MagnitudePruning.prune(model: model, parameters: p)
        return model
    }

    func sparseSet(_ model: LlamaModel, targets: [Projection], quantized: [[Tensor]]? = nil) throws -> LoRASet {
        let set = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 3, alpha: 6, targets: targets, sparse: true), seed: 2)
        var rng = SeededGenerator(seed: 9)
        for (l, p, adapter) in set.ordered {
            rng.fillNormal(adapter.b, std: 0.3)
            if let quantized, let grid = model.layers[l].quantized[p] {
                let base = quantized[l][Projection.allCases.firstIndex(of: p)!]
                adapter.constrain(UpdateConstraint(mask: UpdateConstraint.nonZeros(of: base), quantization: (base, grid)))
            } else {
                adapter.constrain(UpdateConstraint(mask: UpdateConstraint.nonZeros(of: model.layers[l].weight(p))))
            }
        }
        return set
    }

    /// SparsePEFT's masked dense update, through the whole model, against finite differences;
    /// one adapter at a smaller active rank (elastic mode A).
    func testSparsePEFTGradientsMatchFiniteDifferences() throws {
        let model = try sparseModel(seed: 21)
        let lora = try sparseSet(model, targets: [.q, .o, .up, .down])
        lora.ordered[1].adapter.activeRank = 2
        let (batch, seq) = (2, 5)
        let tokens: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 43 + 1) % 256) }
        let targets: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 31 + 8) % 256) }
        let workspace = TrainingWorkspace(config: config, batch: batch, seq: seq)
        lora.zeroGradients()
        _ = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace)
        func meanLoss() -> Double {
            let (s, c) = model.loss(tokens: tokens, targets: targets, batch: batch, seq: seq)
            return s / Double(c)
        }
        XCTAssertGreaterThan(assertAdapterGradientsMatch(lora, every: 5, loss: meanLoss), 50)
        // The inactive rank gets no gradient.
        let elastic = lora.ordered[1].adapter
        XCTAssertTrue((0..<elastic.inFeatures).allSatisfy { elastic.gradA[2 * elastic.inFeatures + $0] == 0 })
    }

    func testSparsePEFTMergeKeepsEveryZeroAndTheOutputs() throws {
        let model = try sparseModel(seed: 22)
        let lora = try sparseSet(model, targets: Projection.allCases)
        let tokens: [Int32] = [3, 141, 59, 26, 5, 35]
        let unmerged = model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array
        let zerosBefore = model.layers.map { layer in Projection.allCases.map { p in (0..<layer.weight(p).count).filter { layer.weight(p)[$0] == 0 } } }
        lora.merge(into: model)
        let zerosAfter = model.layers.map { layer in Projection.allCases.map { p in (0..<layer.weight(p).count).filter { layer.weight(p)[$0] == 0 } } }
        XCTAssertEqual(zerosAfter, zerosBefore, "the same zeros, at the same places")
        XCTAssertEqual(Sparsity.totals(model).zeros * 2, Sparsity.totals(model).entries, "exactly 50 %")
        let merged = model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array
        XCTAssertEqual(zip(unmerged, merged).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)
    }

    /// QA-SparsePEFT: the forward computes with Q(W_fp + M ⊙ s·B·A); the merge gives one INT4
    /// model with the same outputs, every pruned weight still zero, every weight on the grid.
    func testQASparsePEFTMergeEqualsItsForwardAndStaysOnTheGrid() throws {
        let model = try sparseModel(seed: 23)
        let fp = model.layers.map { layer in Projection.allCases.map { layer.weight($0).copy() } }
        var q = ModelQuantization.Parameters()
        q.grid = .init(bits: 4, group: 16, symmetric: false)
        try ModelQuantization.quantize(model: model, parameters: q)
        let tokens: [Int32] = [3, 141, 59, 26, 5, 35]
        let base = model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array

        let lora = try sparseSet(model, targets: [.q, .v, .gate, .down], quantized: fp)
        for (_, _, adapter) in lora.ordered { adapter.b.zero() }
        XCTAssertEqual(model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array, base, "B = 0: exactly the quantized base")
        var rng = SeededGenerator(seed: 10)
        for (_, _, adapter) in lora.ordered { rng.fillNormal(adapter.b, std: 0.5) }
        let aware = model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array
        XCTAssertGreaterThan(zip(aware, base).map { abs($0 - $1) }.max()!, 1e-3, "the adapters move the outputs")

        lora.merge(into: model)
        let merged = model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array
        XCTAssertEqual(zip(aware, merged).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)
        for (l, layer) in model.layers.enumerated() {
            for (k, p) in Projection.allCases.enumerated() {
                let w = layer.weight(p)
                XCTAssertEqual(w.array, layer.quantized[p]!.dequantized().array, "\(l).\(p) on its grid")
                for i in 0..<w.count where fp[l][k][i] == 0 { XCTAssertEqual(w[i], 0, "\(l).\(p) pruned weight \(i)") }
            }
        }
        lora.unmerge(from: model)
        XCTAssertEqual(model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array.count, base.count)
        for (l, layer) in model.layers.enumerated() {
            XCTAssertEqual(layer.wq.array, layer.quantized[.q]!.dequantized().array, "\(l): unmerge restores the base codes")
        }
    }

    /// The straight-through gradient: G = (dYᵀ x) ⊙ M, dB = s·G Aᵀ, dA = s·Bᵀ G, dX = dY E with
    /// E = Q(W_fp + ΔW) − Q(W_fp), computed by hand for one adapter.
    func testQASparsePEFTBackwardIsStraightThrough() throws {
        let (rows, i, o) = (4, 16, 8)
        var rng = SeededGenerator(seed: 30)
        let base = Tensor(zeros: [o, i])
        rng.fillNormal(base, std: 0.1)
        for k in stride(from: 0, to: base.count, by: 3) { base[k] = 0 }
        let grid = GroupQuantizer.quantize(base, rows: o, columns: i, parameters: .init(bits: 4, group: 8, symmetric: false))
        let adapter = LoRAAdapter(inFeatures: i, outFeatures: o, rank: 2, alpha: 4, dropout: 0, seed: 5)
        rng.fillNormal(adapter.b, std: 0.3)
        adapter.constrain(UpdateConstraint(mask: UpdateConstraint.nonZeros(of: base), quantization: (base, grid)))
        let x = Tensor(zeros: [rows, i]), dY = Tensor(zeros: [rows, o])
        rng.fillNormal(x, std: 1)
        rng.fillNormal(dY, std: 1)
        let out = Tensor(zeros: [rows, o]), dX = Tensor(zeros: [rows, i])
        adapter.forward(input: x.data, out: out.data, rows: rows, inFeatures: i, outFeatures: o, training: true)
        adapter.zeroGradients()
        adapter.backward(dOut: dY.data, input: x.data, dInput: dX.data, rows: rows, inFeatures: i, outFeatures: o)

        let s = adapter.scale
        var e = [Float](repeating: 0, count: o * i), g = [Float](repeating: 0, count: o * i)
        for r in 0..<o {
            for c in 0..<i {
                var delta: Float = 0
                for k in 0..<2 { delta += s * adapter.b[r * 2 + k] * adapter.a[k * i + c] }
                let m: Float = base[r * i + c] == 0 ? 0 : 1
                let qMerged = grid.quantize(base[r * i + c] + m * delta, row: r, group: c / 8)
                let sc = grid.scale(r, group: c / 8), z = grid.zero(r, group: c / 8)
                e[r * i + c] = sc * Float(qMerged - z) - sc * Float(grid.code(r, c) - z)
                var gg: Float = 0
                for t in 0..<rows { gg += dY[t * o + r] * x[t * i + c] }
                g[r * i + c] = gg * m
            }
        }
        for t in 0..<rows {
            for r in 0..<o {
                var y: Float = 0
                for c in 0..<i { y += x[t * i + c] * e[r * i + c] }
                XCTAssertEqual(out[t * o + r], y, accuracy: 1e-4)
            }
            for c in 0..<i {
                var d: Float = 0
                for r in 0..<o { d += dY[t * o + r] * e[r * i + c] }
                XCTAssertEqual(dX[t * i + c], d, accuracy: 1e-4)
            }
        }
        for r in 0..<o {
            for k in 0..<2 {
                var db: Float = 0
                for c in 0..<i { db += s * g[r * i + c] * adapter.a[k * i + c] }
                XCTAssertEqual(adapter.gradB[r * 2 + k], db, accuracy: 1e-4)
            }
        }
        for k in 0..<2 {
            for c in 0..<i {
                var da: Float = 0
                for r in 0..<o { da += s * adapter.b[r * 2 + k] * g[r * i + c] }
                XCTAssertEqual(adapter.gradA[k * i + c], da, accuracy: 1e-4)
            }
        }
    }
}
