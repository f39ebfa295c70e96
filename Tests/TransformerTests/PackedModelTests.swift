import Foundation
import Tensors
@testable import Transformer
import XCTest

/// A quantized GGUF loaded with its blocks kept computes on the integer kernels; the same file
/// dequantized to Float32 computes on BLAS. The two must agree within what 8-bit activations cost.
final class PackedModelTests: XCTestCase {
    func model() throws -> LlamaModel {
        let config = try LlamaConfiguration(layers: 2, dim: 64, ffnDim: 128, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        return LlamaModel.random(config: config, seed: 5)
    }

    func written(_ type: GGMLType) throws -> String {
        let path = NSTemporaryDirectory() + "sculpt-packed-\(UUID().uuidString).gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try model().gguf(type: type).write(to: path)
        return path
    }

    let tokens: [Int32] = (0..<24).map { Int32(($0 * 37 + 11) % 256) }

    func testKeptBlocksGiveTheLogitsOfTheDequantizedModelOnEveryPath() throws {
        for type in [GGMLType.q8_0, .q4_0, .q4_1] {
            let path = try written(type)
            let float32 = try LlamaModel.load(path: path, keep: false)
            let packed = try LlamaModel.load(path: path, keep: true)
            XCTAssertFalse(float32.isPacked)
            XCTAssertTrue(packed.isPacked)
            XCTAssertEqual(packed.storageSummary.packed.values.reduce(0, +), 2 * 7 + 1, "every matrix of \(type) kept")
            XCTAssertLessThan(packed.weightBytes * 3, float32.weightBytes, "\(type) blocks take less than a third")
            let expected = float32.forward(tokens: tokens, batch: 2, seq: 12, logits: .all).array
            let size = expected.map(abs).max()!
            for path in KernelPath.supported {
                let logits = KernelPath.with(path) { packed.forward(tokens: tokens, batch: 2, seq: 12, logits: .all).array }
                let worst = zip(logits, expected).map { abs($0 - $1) }.max()!
                // 8-bit activations: a relative error of about 1/254 per product, a few of them in a row.
                XCTAssertLessThan(worst, 0.03 * size, "\(type) on \(path.rawValue): worst logit difference \(worst) of \(size)")
            }
        }
    }

    func testDecodingAPackedModelFollowsItsForward() throws {
        let packed = try LlamaModel.load(path: try written(.q4_0), keep: true)
        let whole = packed.forward(tokens: tokens, batch: 1, seq: 24, logits: .all)
        let cache = KVCache(config: packed.config, capacity: 24)
        _ = packed.forward(tokens: Array(tokens[0..<20]), batch: 1, seq: 20, logits: .last, cache: cache)
        for i in 20..<24 {
            let step = packed.decode(token: tokens[i], cache: cache)
            let row = Array(whole.array[(i * 256)..<((i + 1) * 256)])
            let size = row.map(abs).max()!
            // Same weights and the same activations, one row instead of a batch: only the order of additions differs.
            for (a, b) in zip(step.array, row) { XCTAssertEqual(a, b, accuracy: 1e-4 * size) }
        }
    }

    func testReadingWeightsKeepsThePackedFormAndChangingThemConvertsIt() throws {
        let packed = try LlamaModel.load(path: try written(.q8_0), keep: true)
        let layer = packed.layers[0]
        let read = layer.float32Weight(.q)
        XCTAssertNotNil(layer.packed[.q], "reading does not convert")
        XCTAssertFalse(layer.hasFloat32(.q))
        let w = layer.weight(.q)
        XCTAssertNil(layer.packed[.q], "asking for a weight to change converts it")
        XCTAssertEqual(w.array, read.array, "to the same values")
        let before = packed.weightBytes
        packed.unpackAll()
        XCTAssertFalse(packed.isPacked)
        XCTAssertGreaterThan(packed.weightBytes, before)
    }

    func testFloat32CopiesLastForTheirScopeOnly() throws {
        let packed = try LlamaModel.load(path: try written(.q4_1), keep: true)
        let bytes = packed.weightBytes
        XCTAssertGreaterThan(packed.float32CopyBytes, 0)
        packed.withFloat32Copies {
            XCTAssertTrue(packed.layers.allSatisfy { layer in Projection.allCases.allSatisfy { layer.hasFloat32($0) && layer.packed[$0] != nil } })
            XCTAssertEqual(packed.float32CopyBytes, 0)
            XCTAssertEqual(packed.layers[1].float32Weight(.up).array, packed.layers[1].packed[.up]!.dequantized().array)
        }
        XCTAssertEqual(packed.weightBytes, bytes, "the copies are gone")
        XCTAssertTrue(packed.layers.allSatisfy { layer in Projection.allCases.allSatisfy { !layer.hasFloat32($0) } })
    }
}
