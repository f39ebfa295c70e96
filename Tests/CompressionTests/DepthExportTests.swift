@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

/// A model with skipped layers exports as the smaller model it computes: only the kept blocks,
/// numbered from 0, which load back and give the same logits.
final class DepthExportTests: XCTestCase {
    func testSkippedLayersAreLeftOutOfTheFile() throws {
        let config = try LlamaConfiguration(layers: 4, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        let model = LlamaModel.random(config: config, seed: 25)
        var shape = model.activeShape
        shape.layers[1].kept = false
        shape.layers[3].mlpWidth = 32
        model.activeShape = shape
        let path = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString)-depth.gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        let report = try GGUFExport.write(model: model, to: path, type: .f32, name: "depth", recipe: [])
        XCTAssertEqual(report.ffnWidths, [64, 64, 32])
        XCTAssertEqual(report.architecture, "deci")
        let file = try GGUFFile(path: path)
        XCTAssertNil(file.tensors.first { $0.name.hasPrefix("blk.3.") })
        let reloaded = try LlamaModel.load(file, keep: true)
        XCTAssertEqual(reloaded.config.layers, 3)
        let tokens: [Int32] = [3, 41, 99, 250, 17, 8]
        let ours = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        let theirs = reloaded.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        XCTAssertLessThan(zip(ours, theirs).map { abs($0 - $1) }.max()!, 1e-4)
        XCTAssertEqual(model.activeShape, shape, "the export leaves the shape as it was")
    }
}
