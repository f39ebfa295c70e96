@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class ALoRATests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 3, dim: 16, ffnDim: 32, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 32)

    func trainedLikeSet(_ model: LlamaModel, budget: Int = 2) throws -> LoRASet {
        var p = ALoRA.Parameters()
        p.budget = budget
        p.capacity = 2 * budget
        p.alpha = Float(2 * budget)
        p.targets = [.q, .v, .down]
        let set = try ALoRA.attach(model: model, parameters: p, seed: 1)
        var rng = SeededGenerator(seed: 2)
        for (_, _, adapter) in set.ordered { rng.fillNormal(adapter.b, std: 0.4) }
        return set
    }

    func testPartialForwardFromACachedResidualEqualsTheWholeForward() {
        let model = LlamaModel.random(config: config, seed: 3)
        let tokens: [Int32] = (0..<12).map { Int32(($0 * 31 + 5) % 256) }
        let whole = model.forward(tokens: tokens, batch: 2, seq: 6, logits: .all).array
        let streams = model.residualStreams(tokens: tokens, batch: 2, seq: 6)
        XCTAssertEqual(streams.count, config.layers + 1)
        for start in 0...config.layers {
            let resumed = model.forward(fromLayer: start, residual: streams[start], batch: 2, seq: 6, logits: .all).array
            XCTAssertEqual(zip(whole, resumed).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4, "from layer \(start)")
        }
    }

    /// CS(r) = CE(M \\ r) − CE(M_r), each from a whole forward with the gates set by hand: the
    /// definition, with no cache, against the scorer that resumes from cached residual streams.
    func testImportanceMatchesTheDefinitionAndLeavesTheGatesAsTheyWere() throws {
        let model = LlamaModel.random(config: config, seed: 4)
        let set = try trainedLikeSet(model)
        let (batch, seq) = (2, 6)
        let tokens: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 17 + 3) % 256) }
        let targets: [Int32] = (0..<(batch * seq)).map { Int32(($0 * 23 + 9) % 256) }
        func ce() -> Double {
            let (s, c) = model.loss(tokens: tokens, targets: targets, batch: batch, seq: seq)
            return s / Double(c)
        }
        let before = set.ordered.map { $0.adapter.gates }
        let importance = try ALoRA.importance(model: model, set: set, tokens: tokens, targets: targets, batch: batch, seq: seq)
        XCTAssertEqual(set.ordered.map { $0.adapter.gates }, before, "gates restored")
        // 3 layers × 3 modules × 2 open ranks: every module's ranks in one batched pass of each kind.
        XCTAssertEqual(importance.ranksScored, 3 * 3 * 2)
        XCTAssertEqual(importance.passes, 2 * 3 * 3)
        XCTAssertLessThan(importance.layersRun, importance.layersWithoutCache)
        // One rank per pass: twice the passes, the same scores (other GEMM shapes: a tolerance).
        let single = try ALoRA.importance(model: model, set: set, tokens: tokens, targets: targets, batch: batch, seq: seq, ranksPerPass: 1)
        XCTAssertEqual(single.passes, 2 * 3 * 3 * 2)
        XCTAssertEqual(set.ordered.map { $0.adapter.gates }, before, "gates restored")
        for (module, batched) in importance.scores {
            for (b, s) in zip(batched, single.scores[module]!) {
                XCTAssertEqual(b.rank, s.rank)
                XCTAssertEqual(b.score, s.score, accuracy: 1e-4, "\(module.name) rank \(b.rank)")
            }
        }

        for (l, p, adapter) in set.ordered {
            let gates = adapter.gates!
            for (rank, score) in importance.scores[ALoRA.Module(layer: l, projection: p)]! {
                var without = gates
                without[rank] = 0
                adapter.setGates(without)
                let lossWithout = ce()
                // The base model with only this rank open: every other adapter closed.
                let all = set.ordered.map { ($0.adapter, $0.adapter.gates) }
                for (_, _, other) in set.ordered { other.setGates([Float](repeating: 0, count: other.rank)) }
                var only = [Float](repeating: 0, count: adapter.rank)
                only[rank] = 1
                adapter.setGates(only)
                let lossOnly = ce()
                for (a, g) in all { a.setGates(g) }
                adapter.setGates(gates)
                XCTAssertEqual(score, lossWithout - lossOnly, accuracy: 1e-4, "\(l).\(p) rank \(rank)")
            }
        }
    }

    func testReallocationMovesTheLowestRanksToModulesThatLostNone() throws {
        let model = LlamaModel.random(config: config, seed: 5)
        let set = try trainedLikeSet(model)
        var scores = [ALoRA.Module: [(rank: Int, score: Double)]]()
        for (l, p, _) in set.ordered {
            // Layer 0's ranks are the weakest; layer 2's the strongest.
            scores[ALoRA.Module(layer: l, projection: p)] = [(0, Double(l) + (p == .q ? 0 : 0.5)), (1, Double(l) + 0.1)]
        }
        let importance = ALoRA.Importance(scores: scores, passes: 0, seconds: 0, layersRun: 0, layersWithoutCache: 0)
        let totalBefore = ALoRA.allocation(set).values.reduce(0, +)
        let moved = ALoRA.reallocate(set: set, importance: importance, count: 3)
        let after = ALoRA.allocation(set)
        XCTAssertEqual(after.values.reduce(0, +), totalBefore, "the budget is kept")
        XCTAssertEqual(moved.pruned.count, 3)
        XCTAssertTrue(moved.pruned.allSatisfy { $0.module.layer == 0 }, "the three lowest scores are in layer 0")
        let losers = Set(moved.pruned.map(\.module))
        XCTAssertTrue(moved.grown.keys.allSatisfy { !losers.contains($0) })
        XCTAssertEqual(moved.grown.values.reduce(0, +), 3)
        XCTAssertTrue(moved.grown.keys.allSatisfy { $0.layer == 2 }, "the most important modules receive first")
        XCTAssertTrue(after.values.allSatisfy { $0 <= 4 }, "no module beyond its capacity")
        // Fresh ranks start as LoRA does: B's column zero.
        for (m, _) in moved.grown {
            let adapter = set.adapters[m.layer][m.projection]!
            let open = adapter.gates!.indices.filter { adapter.gates![$0] == 1 }
            XCTAssertTrue(open.contains { j in (0..<adapter.outFeatures).allSatisfy { adapter.b[$0 * adapter.rank + j] == 0 } })
        }
    }

    func testUnevenRanksRoundTripThroughPEFTFiles() throws {
        let model = LlamaModel.random(config: config, seed: 6)
        let set = try trainedLikeSet(model)
        var scores = [ALoRA.Module: [(rank: Int, score: Double)]]()
        for (l, p, _) in set.ordered { scores[ALoRA.Module(layer: l, projection: p)] = [(0, Double(l * 10) + Double(p == .v ? 1 : 0)), (1, 50)] }
        _ = ALoRA.reallocate(set: set, importance: .init(scores: scores, passes: 0, seconds: 0, layersRun: 0, layersWithoutCache: 0), count: 2)
        let tokens: [Int32] = [3, 8, 200, 17, 42]
        let expected = model.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array
        let allocation = ALoRA.allocation(set)
        let path = NSTemporaryDirectory() + "sculpt-alora-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: path) }
        try PEFTAdapters.save(set, model: model, baseModel: "tiny", to: path)
        let config = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/adapter_config.json"))) as? [String: Any])
        let pattern = try XCTUnwrap(config["rank_pattern"] as? [String: Int])
        XCTAssertFalse(pattern.isEmpty, "uneven ranks are written as rank_pattern")
        set.detach(from: model)
        let loaded = try PEFTAdapters.load(from: path, into: model)
        XCTAssertEqual(ALoRA.allocation(loaded), allocation)
        let again = model.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array
        XCTAssertEqual(zip(expected, again).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-5)
    }
}
