@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class LoRAGradientTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 2, dim: 16, ffnDim: 32, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 32)

    /// The whole model's adapter gradients against finite differences of its loss.
    func testFullModelAdapterGradientsMatchFiniteDifferences() throws {
        let model = LlamaModel.random(config: config, seed: 11)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, targets: Projection.allCases), seed: 3)
        // Give B non-zero values so every path carries gradient.
        var rng = SeededGenerator(seed: 4)
        for (_, _, adapter) in lora.ordered { rng.fillNormal(adapter.b, std: 0.3) }
        let (batch, seq) = (2, 6)
        let tokens: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 37 + 11) % 256) }
        var targets: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 53 + 5) % 256) }
        targets[3] = -1
        let workspace = TrainingWorkspace(config: config, batch: batch, seq: seq)

        lora.zeroGradients()
        let (sum, counted) = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace)
        XCTAssertEqual(counted, batch * seq - 1)
        // The training forward's loss equals the inference path's.
        let (inference, _) = model.loss(tokens: tokens, targets: targets, batch: batch, seq: seq)
        XCTAssertEqual(sum, inference, accuracy: 1e-3)

        func meanLoss() -> Double {
            let (s, c) = model.loss(tokens: tokens, targets: targets, batch: batch, seq: seq)
            return s / Double(c)
        }
        XCTAssertGreaterThan(assertAdapterGradientsMatch(lora, every: 5, loss: meanLoss), 100)
    }

    /// Rank gates (ALoRA): with some ranks closed, the gradients still match finite differences,
    /// and a closed rank's A row and B column get none.
    func testGatedAdapterGradientsMatchFiniteDifferences() throws {
        let model = LlamaModel.random(config: config, seed: 12)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 3, alpha: 6, targets: [.q, .v, .up, .down]), seed: 5)
        var rng = SeededGenerator(seed: 6)
        for (_, _, adapter) in lora.ordered {
            rng.fillNormal(adapter.b, std: 0.3)
            adapter.setGates([1, 0, 1])
        }
        let (batch, seq) = (2, 5)
        let tokens: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 41 + 7) % 256) }
        let targets: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 29 + 3) % 256) }
        let workspace = TrainingWorkspace(config: config, batch: batch, seq: seq)
        lora.zeroGradients()
        _ = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace)
        for (_, _, adapter) in lora.ordered {
            XCTAssertTrue((0..<adapter.inFeatures).allSatisfy { adapter.gradA[1 * adapter.inFeatures + $0] == 0 }, "closed rank: no gradient in A")
            XCTAssertTrue((0..<adapter.outFeatures).allSatisfy { adapter.gradB[$0 * 3 + 1] == 0 }, "closed rank: no gradient in B")
        }
        func meanLoss() -> Double {
            let (s, c) = model.loss(tokens: tokens, targets: targets, batch: batch, seq: seq)
            return s / Double(c)
        }
        XCTAssertGreaterThan(assertAdapterGradientsMatch(lora, every: 4, loss: meanLoss), 50)
    }

    /// A closed gate removes exactly its rank: the same output as an adapter without that rank.
    func testClosedGateEqualsARankRemovedAndMergeFollowsTheGates() throws {
        let model = LlamaModel.random(config: config, seed: 13)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, targets: [.q]), seed: 7)
        var rng = SeededGenerator(seed: 8)
        for (_, _, adapter) in lora.ordered { rng.fillNormal(adapter.b, std: 0.5) }
        let tokens: [Int32] = [5, 9, 77, 3]
        let gated = { () -> [Float] in
            for (_, _, a) in lora.ordered { a.setGates([1, 0]) }
            return model.forward(tokens: tokens, batch: 1, seq: 4, logits: .all).array
        }()
        for (_, _, a) in lora.ordered {
            a.setGates(nil)
            for row in 0..<a.outFeatures { a.b[row * 2 + 1] = 0 }   // rank 1 removed by hand
        }
        let removed = model.forward(tokens: tokens, batch: 1, seq: 4, logits: .all).array
        XCTAssertEqual(zip(gated, removed).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5)
        // Merging a gated adapter folds only its open ranks.
        for (_, _, a) in lora.ordered { rng.fillNormal(a.b, std: 0.5); a.setGates([0, 1]) }
        let unmerged = model.forward(tokens: tokens, batch: 1, seq: 4, logits: .all).array
        lora.merge(into: model)
        let merged = model.forward(tokens: tokens, batch: 1, seq: 4, logits: .all).array
        XCTAssertEqual(zip(unmerged, merged).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)
        lora.unmerge(from: model)
    }

    /// Central differences of `loss` against the adapters' accumulated gradients, at every
    /// `every`-th element of each A and B; returns how many elements were checked.

    /// Distillation through the whole model: the adapters' gradients match finite differences of
    /// the distillation loss against a fixed teacher, and a step that teaches itself learns nothing.
    func testFullModelDistillationGradientsMatchFiniteDifferences() throws {
        let model = LlamaModel.random(config: config, seed: 13)
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, targets: [.q, .v, .gate, .down]), seed: 7)
        var rng = SeededGenerator(seed: 8)
        for (_, _, adapter) in lora.ordered { rng.fillNormal(adapter.b, std: 0.3) }
        let (batch, seq) = (2, 5)
        let rows = batch * seq
        let tokens: [Int32] = (0..<rows).map { Int32(($0 * 41 + 3) % 256) }
        var targets: [Int32] = (0..<rows).map { Int32(($0 * 29 + 7) % 256) }
        targets[4] = -1
        let workspace = TrainingWorkspace(config: config, batch: batch, seq: seq)

        // Teaching writes the model's own distribution; learning from it on the same weights adds no gradient.
        let teacher = Tensor(zeros: [rows, config.vocabSize])
        lora.zeroGradients()
        let taught = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace, learning: .labelsTeaching(teacher))
        for i in 0..<rows { XCTAssertEqual((0..<config.vocabSize).reduce(Float(0)) { $0 + teacher[i * config.vocabSize + $1] }, 1, accuracy: 1e-4) }
        let afterTeaching = lora.ordered.map { $0.2.gradA.array + $0.2.gradB.array }
        let learned = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace, learning: .teacher(teacher))
        XCTAssertEqual(learned.lossSum, taught.lossSum, accuracy: 1e-3, "the reported loss is the labels' cross-entropy")
        for (before, (_, _, adapter)) in zip(afterTeaching, lora.ordered) {
            XCTAssertLessThan(zip(adapter.gradA.array + adapter.gradB.array, before).map { abs($0 - $1) }.max()!, 1e-5)
        }

        // Another teacher: the distillation gradient against finite differences of its loss.
        let teacherLogits = Tensor(zeros: [rows, config.vocabSize])
        rng.fillNormal(teacherLogits, std: 2)
        softmaxForward(out: teacher.data, input: teacherLogits.data, rows: rows, columns: config.vocabSize)
        lora.zeroGradients()
        _ = model.trainingStep(tokens: tokens, targets: targets, workspace: workspace, learning: .teacher(teacher))
        let losses = Tensor(zeros: [rows])
        func meanDistillationLoss() -> Double {
            let logits = model.forward(tokens: tokens, batch: batch, seq: seq, logits: .all)
            let counted = targets.withUnsafeBufferPointer {
                distillationForward(losses: losses.data, logits: logits.data, teacher: teacher.data, targets: $0.baseAddress!,
                                    rows: rows, vocab: config.vocabSize)
            }
            return (0..<rows).reduce(0.0) { $0 + Double(losses[$1]) } / Double(counted)
        }
        XCTAssertGreaterThan(assertAdapterGradientsMatch(lora, every: 7, loss: meanDistillationLoss), 40)
    }

    func testDropoutGradientMatchesItsOwnMask() {
        // One adapter alone: with dropout, the backward must use the forward's mask.
        let adapter = LoRAAdapter(inFeatures: 6, outFeatures: 5, rank: 2, alpha: 2, dropout: 0.5, seed: 1)
        var rng = SeededGenerator(seed: 2)
        rng.fillNormal(adapter.b, std: 1)
        let x = Tensor(zeros: [3, 6]); rng.fillNormal(x, std: 1)
        let r = Tensor(zeros: [3, 5]); rng.fillNormal(r, std: 1)
        let y = Tensor(zeros: [3, 5])
        adapter.forward(input: x.data, out: y.data, rows: 3, inFeatures: 6, outFeatures: 5, training: true)
        let dx = Tensor(zeros: [3, 6])
        adapter.backward(dOut: r.data, input: x.data, dInput: dx.data, rows: 3, inFeatures: 6, outFeatures: 5)
        // Recompute Σ r ⊙ Δ(x) with the same mask by replaying the forward on a copy of the state:
        // dX is zero exactly where the mask dropped the input.
        let dropped = (0..<18).filter { dx[$0] == 0 }.count
        XCTAssertGreaterThan(dropped, 0)
        XCTAssertLessThan(dropped, 18)
    }

    func testMergeEqualsTheAdapterPathAndUnmergeRestores() throws {
        let model = LlamaModel.random(config: config, seed: 12)
        let original = model.layers[0].wq.array
        let lora = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: [.q, .v, .down]), seed: 5)
        var rng = SeededGenerator(seed: 6)
        for (_, _, adapter) in lora.ordered { rng.fillNormal(adapter.b, std: 0.2) }
        let tokens: [Int32] = [1, 2, 3, 4, 5]
        let adapted = model.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array
        lora.merge(into: model)
        let merged = model.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array
        XCTAssertLessThan(zip(adapted, merged).map { abs($0 - $1) }.max()!, 1e-4)
        lora.unmerge(from: model)
        XCTAssertLessThan(zip(original, model.layers[0].wq.array).map { abs($0 - $1) }.max()!, 1e-6)
    }

    func testScheduleWarmsUpThenDecays() {
        let s = LearningRateSchedule(peak: 1, warmup: 4, total: 20)
        XCTAssertEqual(s.rate(at: 0), 0.25)
        XCTAssertEqual(s.rate(at: 3), 1)
        XCTAssertEqual(s.rate(at: 4), 1, accuracy: 1e-6)
        XCTAssertLessThan(s.rate(at: 12), 1)
        XCTAssertEqual(s.rate(at: 20), 0, accuracy: 1e-6)
    }

    func testAdamWDecouplesWeightDecay() {
        let p = Tensor(shape: [1], values: [1]), g = Tensor(shape: [1], values: [0])
        let opt = AdamW(parameters: [(p, g)], weightDecay: 0.1)
        opt.update(learningRate: 0.5)
        // Zero gradient: only decay acts, p ← p − lr·λ·p.
        XCTAssertEqual(p[0], 1 - 0.5 * 0.1, accuracy: 1e-6)
        g[0] = 3
        XCTAssertEqual(opt.clipGradients(maxNorm: 1), 3)
        XCTAssertEqual(g[0], 1, accuracy: 1e-5)
    }
}

extension XCTestCase {
    /// Every `every`-th parameter of A and B against a central finite difference of `loss`.
    func assertAdapterGradientsMatch(_ lora: LoRASet, every: Int, loss: () -> Double,
                                             file: StaticString = #filePath, line: UInt = #line) -> Int {
        var checked = 0
        for (l, p, adapter) in lora.ordered {
            for (name, parameter, gradient) in [("A", adapter.a, adapter.gradA), ("B", adapter.b, adapter.gradB)] {
                for i in stride(from: 0, to: parameter.count, by: every) {
                    let saved = parameter[i]
                    parameter[i] = saved + 1e-2; let plus = loss()
                    parameter[i] = saved - 1e-2; let minus = loss()
                    parameter[i] = saved
                    let numeric = Float((plus - minus) / 2e-2)
                    let error = abs(numeric - gradient[i]) / max(1e-2, abs(numeric), abs(gradient[i]))
                    XCTAssertLessThan(error, 5e-2, "layer \(l) \(p) \(name)[\(i)]: numeric \(numeric), analytic \(gradient[i])",
                                      file: file, line: line)
                    checked += 1
                }
            }
        }
        return checked
    }
}
