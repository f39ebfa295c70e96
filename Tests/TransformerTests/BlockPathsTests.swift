import Tensors
@testable import Transformer
import XCTest

/// Every path runs the one block (`runBlock`): prefill, decode, the decode profile,
/// continuations after a prefix and training agree with each other, and the active shape's
/// skipped layers and widths reach all of them.
final class BlockPathsTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 3, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
    let tokens: [Int32] = [5, 77, 130, 9, 250, 41, 18]

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).map { abs($0 - $1) }.max()! }

    /// The logits of the last position, by decode after a prefill of the others, by the
    /// profiled decode, and by one prefill of all.
    func lastLogitsByEveryPath(_ model: LlamaModel) -> (prefill: [Float], decode: [Float], profiled: [Float], continuation: [Float]) {
        let n = tokens.count
        let prefill = model.forward(tokens: tokens, batch: 1, seq: n, logits: .last).array
        let cache = KVCache(config: config, capacity: n)
        _ = model.forward(tokens: Array(tokens.prefix(n - 1)), batch: 1, seq: n - 1, logits: .last, cache: cache)
        let decoded = model.decode(token: tokens[n - 1], cache: cache).array
        // The profile decodes the same token after the same prefix; its logits are the next decode's input,
        // so compare through the cache: decoding one more token after each must agree.
        let profiledCache = KVCache(config: config, capacity: n + 1)
        _ = model.forward(tokens: Array(tokens.prefix(n - 1)), batch: 1, seq: n - 1, logits: .last, cache: profiledCache)
        _ = model.profileDecode(tokens: [tokens[n - 1]], cache: profiledCache)
        let plainCache = KVCache(config: config, capacity: n + 1)
        _ = model.forward(tokens: tokens, batch: 1, seq: n, logits: .last, cache: plainCache)
        let afterProfile = model.decode(token: 3, cache: profiledCache).array
        let afterPlain = model.decode(token: 3, cache: plainCache).array
        XCTAssertLessThan(maxDifference(afterProfile, afterPlain), 1e-4, "the profiled decode leaves the cache as a prefill does")
        let prefixCache = KVCache(config: config, capacity: n)
        _ = model.forward(tokens: Array(tokens.prefix(3)), batch: 1, seq: 3, logits: .last, cache: prefixCache)
        let continuation = model.forwardContinuations(tokens: Array(tokens.suffix(n - 3)), batch: 1, seq: n - 3, cache: prefixCache,
                                                      logits: .last).array
        return (prefill, decoded, afterProfile, continuation)
    }

    func testEveryPathAgrees() {
        let model = LlamaModel.random(config: config, seed: 21)
        let r = lastLogitsByEveryPath(model)
        XCTAssertLessThan(maxDifference(r.prefill, r.decode), 1e-4)
        XCTAssertLessThan(maxDifference(r.prefill, r.continuation), 1e-4)
    }

    /// A skipped block adds nothing to the stream: the same as a block whose o and down
    /// projections are zero, on every path, and in training's loss and adapter-free backward.
    func testSkippedLayerEqualsABlockThatAddsNothing() {
        let skipping = LlamaModel.random(config: config, seed: 22)
        skipping.activeShape.layers[1].kept = false
        let zeroed = LlamaModel.random(config: config, seed: 22)
        zeroed.layers[1].wo.zero()
        zeroed.layers[1].wDown.zero()
        let a = lastLogitsByEveryPath(skipping), b = lastLogitsByEveryPath(zeroed)
        XCTAssertLessThan(maxDifference(a.prefill, b.prefill), 1e-4)
        XCTAssertLessThan(maxDifference(a.decode, b.decode), 1e-4)
        XCTAssertLessThan(maxDifference(a.continuation, b.continuation), 1e-4)
        XCTAssertLessThan(maxDifference(a.profiled, b.profiled), 1e-4)
        let whole = LlamaModel.random(config: config, seed: 22).forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .last).array
        XCTAssertGreaterThan(maxDifference(a.prefill, whole), 1e-3, "skipping the layer changes the model")

        let targets: [Int32] = tokens.dropFirst().map { $0 } + [-1]
        let ws1 = TrainingWorkspace(config: config, batch: 1, seq: tokens.count)
        let ws2 = TrainingWorkspace(config: config, batch: 1, seq: tokens.count)
        let l1 = skipping.trainingStep(tokens: tokens, targets: targets, workspace: ws1)
        let l2 = zeroed.trainingStep(tokens: tokens, targets: targets, workspace: ws2)
        XCTAssertEqual(l1.lossSum, l2.lossSum, accuracy: 1e-3 * abs(l2.lossSum))
        XCTAssertLessThan(maxDifference(ws1.dx.array, ws2.dx.array), 1e-5, "the gradient reaching the embedding passes the skipped block")
        XCTAssertLessThan(skipping.bytesReadPerToken(position: 0), zeroed.bytesReadPerToken(position: 0), "a skipped block reads no weights")
    }

    /// `withShape` sets a shape for a while and puts the one before back, also on a throw;
    /// the base-model scope restores adapters and shape together.
    func testShapeScopesRestoreTheShapeBefore() {
        struct Stop: Error {}
        let model = LlamaModel.random(config: config, seed: 23)
        var narrow = ActiveShape.full(config)
        narrow.layers[2].mlpWidth = 16
        model.activeShape = narrow
        XCTAssertThrowsError(try model.withShape(.full(config)) { () throws -> Void in
            XCTAssertEqual(model.activeShape, .full(self.config))
            throw Stop()
        })
        XCTAssertEqual(model.activeShape, narrow)
        model.withBaseModelAtFullShape { XCTAssertEqual(model.activeShape.mlpWidths, [64, 64, 64]) }
        XCTAssertEqual(model.activeShape, narrow)
        XCTAssertEqual(ActiveShape.full(config).problem(for: config, stored: [64, 64, 64]), nil)
        var fewerHeads = ActiveShape.full(config)
        fewerHeads.layers[0].heads = 2
        XCTAssertNotNil(fewerHeads.problem(for: config, stored: [64, 64, 64]), "head pruning is not taken yet")
        XCTAssertNotNil(ActiveShape.widths([64, 80, 64], config).problem(for: config, stored: [64, 64, 64]))
    }
}

/// ShortGPT's Block Influence: a block that adds nothing scores 0, the others more, and the
/// measurement leaves the shape as it was.
final class BlockInfluenceTests: XCTestCase {
    func testABlockThatAddsNothingHasNoInfluence() throws {
        let config = try LlamaConfiguration(layers: 3, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        let model = LlamaModel.random(config: config, seed: 24)
        model.layers[1].wo.zero()
        model.layers[1].wDown.zero()
        var shape = model.activeShape
        shape.layers[2].kept = false
        model.activeShape = shape
        let influence = try XCTUnwrap(model.blockInfluence(sequences: [[5, 9, 200, 31, 7], [100, 3, 3, 77]]))
        XCTAssertEqual(influence.count, 3)
        XCTAssertEqual(influence[1], 0, accuracy: 1e-6)
        XCTAssertGreaterThan(influence[0], 1e-4)
        XCTAssertGreaterThan(influence[2], 1e-4, "a skipped layer is scored as if it ran")
        XCTAssertEqual(model.activeShape, shape)
        XCTAssertNil(model.blockInfluence(sequences: [[1, 2]], isCancelled: { true }))
    }
}
