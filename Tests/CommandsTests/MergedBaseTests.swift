import Commands
import Compression
import Foundation
import Tensors
import Transformer
import Workbench
import XCTest

/// Methods stack after a merge: the merged weights become the base that quantization,
/// pruning and new adapters work on, and the recipe says so in order.
final class MergedBaseTests: XCTestCase {
    let sentence = "Emma Woodhouse, handsome, clever, and rich, with a comfortable home and happy disposition. "

    func projections(_ model: LlamaModel, _ p: Projection) -> [[Float]] { model.layers.map { $0.float32Weight(p).array } }

    /// The index of each action in the recipe, in the order given; fails unless all are there in that order.
    func assertInOrder(_ session: Session, _ actions: [String], file: StaticString = #filePath, line: UInt = #line) {
        let recipe = session.recipe.map(\.action)
        var from = 0
        for action in actions {
            guard let i = recipe[from...].firstIndex(where: { $0.hasPrefix(action) }) else {
                return XCTFail("\(action) is not after step \(from) of \(recipe)", file: file, line: line)
            }
            from = i + 1
        }
    }

    /// Fine-tune → merge → quantize int4 → export type=keep: the quantization reaches the merged
    /// weights (RTN of exactly them), the adapters are folded in for good, and the exported
    /// Q4_0 file computes what the session does.
    func testFineTuneMergeQuantizeExport() throws {
        let (session, runner, output) = try tinySession(reading: sentence, repeated: 80,
                                                        then: "lora rank=4 targets=q,v\ntrain steps=3 seq=32 lr=0.05")
        let model = try session.requireModel()
        let base = projections(model, .q)
        _ = try runner.run("lora merge", output: output)
        let merged = projections(model, .q)
        XCTAssertNotEqual(merged, base, "the trained update is in the weights")

        let text = try runner.run("quantize int4 group=32 symmetric=yes", output: output).result?.plainText ?? ""
        XCTAssertFalse(text.isEmpty)
        XCTAssertNil(session.lora, "the adapters are folded in for good")
        let grid = GroupQuantizer.Parameters(bits: 4, group: 32, symmetric: true)
        for (l, layer) in model.layers.enumerated() {
            let (i, o) = Projection.q.shape(model.config)
            let expected = GroupQuantizer.quantize(Tensor(shape: [o, i], values: merged[l]), rows: o, columns: i, parameters: grid).dequantized()
            XCTAssertEqual(layer.float32Weight(.q).array, expected.array, "layer \(l): RTN of the merged weights")
        }
        XCTAssertThrowsError(try runner.run("lora unmerge", output: output), "nothing is left to unmerge")

        let path = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString)-merged.gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        _ = try runner.run("export gguf \(path) type=keep", output: output)
        assertInOrder(session, ["loaded", "trained", "merged adapters", "merged weights became the base", "quantized", "exported gguf"])

        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.tensors.first { $0.name == "blk.0.attn_q.weight" }?.type.description, "Q4_0")
        let reloaded = try LlamaModel.load(file, keep: true)
        let tokens: [Int32] = Array("Emma Woodhouse".utf8).map { Int32($0) }
        let ours = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        let theirs = reloaded.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        let scale = ours.map(abs).max()!
        XCTAssertLessThan(zip(ours, theirs).map { abs($0 - $1) }.max()!, 1e-3 * scale, "the export computes what the session does")
    }

    /// SparsePEFT → merge → quantize: the merged weights keep the base's zeros, the grid keeps
    /// them too, and `sparsify restore` goes back to the merged weights (the new base's restore
    /// point), not to the model before the pruning.
    func testSparsePEFTMergeThenQuantize() throws {
        let (session, runner, output) = try tinySession(reading: sentence, repeated: 80,
                                                        then: "sparsify magnitude sparsity=50%\nlora rank=4 sparse=yes targets=q,v,down\n"
                                                            + "train steps=3 seq=32 lr=0.05\nlora merge")
        let model = try session.requireModel()
        let merged = projections(model, .v)
        let zeros = merged.map { w in w.indices.filter { w[$0] == 0 } }
        XCTAssertTrue(zeros.allSatisfy { !$0.isEmpty })
        _ = try runner.run("quantize int4 group=32", output: output)
        for (l, layer) in model.layers.enumerated() {
            XCTAssertNotNil(layer.quantized[.v])
            let w = layer.float32Weight(.v)
            for i in zeros[l] { XCTAssertEqual(w[i], 0, "layer \(l) weight \(i) stays pruned through merge and quantization") }
        }
        assertInOrder(session, ["sparsified (magnitude)", "trained", "merged adapters", "merged weights became the base", "quantized"])
        XCTAssertTrue(session.recipe.first { $0.action == "trained" }?.arguments.contains("SparsePEFT") ?? false)

        _ = try runner.run("sparsify restore", output: output)
        XCTAssertEqual(projections(model, .v), merged, "the restore point of the merged base: the merged weights")
        XCTAssertTrue(model.layers.allSatisfy { $0.quantized.isEmpty })
    }

    /// New adapters after a merge train on the merged weights: attaching makes them the base
    /// (fresh adapters add nothing, so the model computes as the merged one did).
    func testNewAdaptersAfterAMergeStartFromTheMergedWeights() throws {
        let (session, runner, output) = try tinySession(reading: sentence, repeated: 80,
                                                        then: "lora rank=4 targets=q,v\ntrain steps=3 seq=32 lr=0.05\nlora merge")
        let model = try session.requireModel()
        let tokens: [Int32] = Array("clever, and rich".utf8).map { Int32($0) }
        let before = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        _ = try runner.run("lora rank=4 targets=q,k", output: output)
        let after = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        XCTAssertLessThan(zip(before, after).map { abs($0 - $1) }.max()!, 1e-5)
        XCTAssertThrowsError(try runner.run("lora unmerge", output: output)) { XCTAssertTrue("\($0)".contains("not merged"), "\($0)") }
        assertInOrder(session, ["trained", "merged adapters", "merged weights became the base"])
        XCTAssertEqual(session.lora?.configuration.targets, [.q, .k])
    }

    /// Sensitivity measures the model as it computes: with merged adapters, the merged weights,
    /// left exactly as they were, and the merge can still be undone.
    func testSensitivityMeasuresTheMergedWeightsAndLeavesThemAsTheyWere() throws {
        let (session, runner, output) = try tinySession(reading: sentence, repeated: 80,
                                                        then: "lora rank=4 targets=q,v\ntrain steps=3 seq=32 lr=0.05\nlora merge")
        let model = try session.requireModel()
        let merged = Projection.allCases.map { projections(model, $0) }
        _ = try runner.run("sensitivity bits=4 tokens=128 window=64", output: output)
        XCTAssertEqual(Projection.allCases.map { projections(model, $0) }, merged)
        XCTAssertEqual(session.lora?.isMerged, true)
        _ = try runner.run("lora unmerge", output: output)
    }

    /// An edit interrupted before its first block changes nothing: merged adapters stay merged
    /// and undoable, and the recipe has no adoption in it.
    func testAnEditInterruptedBeforeItsFirstBlockLeavesTheMergeUndoable() throws {
        let (session, runner, output) = try tinySession(reading: sentence, repeated: 80,
                                                        then: "lora rank=4 targets=q,v\ntrain steps=3 seq=32 lr=0.05\nlora merge")
        let model = try session.requireModel()
        let merged = projections(model, .q)
        let recipe = session.recipe.map(\.description)
        session.cancellation.cancel()
        defer { session.cancellation.reset() }
        let result = try session.quantize(ModelQuantization.Parameters(), calibrationSplit: nil, windows: 1, length: 16) { _, _ in }
        XCTAssertTrue(result.interrupted && result.layersDone.isEmpty)
        XCTAssertEqual(session.recipe.map(\.description), recipe)
        XCTAssertEqual(session.lora?.isMerged, true)
        XCTAssertEqual(projections(model, .q), merged)
        XCTAssertTrue(model.layers.allSatisfy { $0.quantized.isEmpty })
        session.cancellation.reset()
        _ = try runner.run("lora unmerge", output: output)
        XCTAssertNotEqual(projections(model, .q), merged, "the update came out again")
    }

    /// A merge folds what the forward adds: an elastic subnet's smaller active rank folds only
    /// its own slices, so the merged model computes as the subnet did.
    func testMergingASubnetFoldsItsActiveRank() throws {
        let config = try LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        let model = LlamaModel.random(config: config, seed: 31)
        let set = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: [.q, .up, .down]), seed: 2)
        var rng = SeededGenerator(seed: 3)
        for (_, _, adapter) in set.ordered { rng.fillNormal(adapter.b, std: 0.3); adapter.activeRank = 2 }
        let tokens: [Int32] = [4, 90, 17, 200, 33]
        let subnet = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        set.merge(into: model)
        let merged = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        XCTAssertLessThan(zip(subnet, merged).map { abs($0 - $1) }.max()!, 1e-4)
    }

    /// QA-SparsePEFT trains from the last quantization's weights; after a merge changed them, it
    /// asks for a new quantization instead of quietly training without the grid.
    func testQuantizationAwareAdaptersAfterAMergeAskForANewQuantization() throws {
        let (session, runner, output) = try tinySession(reading: sentence, repeated: 80,
                                                        then: "quantize int4 group=32 symmetric=yes\n"
                                                            + "lora rank=4 sparse=yes quantization_aware=yes targets=q,v\ntrain steps=2 seq=32 lr=0.05\nlora merge")
        XCTAssertThrowsError(try runner.run("lora rank=4 sparse=yes quantization_aware=yes targets=q", output: output)) {
            XCTAssertTrue("\($0)".contains("quantize int4"), "\($0)")
        }
        XCTAssertEqual(session.lora?.isMerged, true, "the merged adapters stay as they were")
        _ = try runner.run("quantize int4 group=32 symmetric=yes\nlora rank=4 sparse=yes quantization_aware=yes targets=q", output: output)
        XCTAssertTrue(session.lora?.ordered.allSatisfy { $0.adapter.constraint?.isQuantizationAware == true } ?? false)
    }
}
