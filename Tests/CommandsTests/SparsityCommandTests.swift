@testable import Commands
import Compression
import Transformer
import Display
import Foundation
import Workbench
import XCTest

final class SparsityCommandTests: XCTestCase {
    func testSparsifyShowsAHeatMapRecordsTheRecipeAndRestores() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        let model = try session.requireModel()
        let dense = model.layers.map { $0.wq.array }
        let result = try runner.run("sparsify wanda sparsity=50% calibration_windows=2 calibration_len=64", output: output).result
        XCTAssertTrue(result?.plainText.contains("50.00 %") ?? false, result?.plainText ?? "")
        let totals = Sparsity.totals(model)
        XCTAssertEqual(Double(totals.zeros) / Double(totals.entries), 0.5, accuracy: 1e-9)
        // One live heat map, a chart.
        let ids = output.events.compactMap { event -> String? in
            if case .display(_, let id?) = event, id.hasPrefix("sparsify-") { return id }
            return nil
        }
        XCTAssertEqual(ids.count, 1)
        let status = try runner.run("status", output: output).result?.plainText ?? ""
        XCTAssertTrue(status.contains("sparsified (wanda)") && status.contains("loaded"), status)

        let map = try runner.run("sparsity", output: output).result?.plainText ?? ""
        XCTAssertTrue(map.contains("50"), map)
        _ = try runner.run("sparsify restore", output: output)
        XCTAssertEqual(model.layers.map { $0.wq.array }, dense, "the dense weights exactly")
        XCTAssertEqual(Sparsity.totals(model).zeros, 0)
        XCTAssertThrowsError(try runner.run("sparsify restore", output: output)) { XCTAssertTrue("\($0)".contains("never pruned"), "\($0)") }
    }

    func testMergingADenseAdapterIntoASparseBaseWarns() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        _ = try runner.run("sparsify magnitude pattern=2:4\nlora rank=4 targets=q,v\ntrain steps=2 seq=32", output: output)
        let merged = try runner.run("lora merge", output: output).result?.plainText ?? ""
        XCTAssertTrue(merged.contains("densified"), merged)
        _ = try runner.run("lora unmerge", output: output)
        let totals = Sparsity.totals(try session.requireModel())
        XCTAssertEqual(Double(totals.zeros) / Double(totals.entries), 0.5, accuracy: 1e-9, "unmerge gives the sparsity back")
        XCTAssertTrue(session.recipe.map(\.action).contains("merged adapters"))
    }

    func testBadSparsifyArgumentsAreClearErrors() throws {
        let (session, runner, output) = try tinySession(reading: "Emma. ", repeated: 80)
        for (line, expected) in [("sparsify prune", "wanda"), ("sparsify wanda pattern=3:3", "N:M"), ("sparsify wanda layers=9", "outside"),
                                 ("sparsify wanda calibration_windows=4000 calibration_len=100", "tokens")] {
            XCTAssertThrowsError(try runner.run(line, output: output), line) { XCTAssertTrue("\($0)".contains(expected), "\(line): \($0)") }
        }
        XCTAssertEqual(Sparsity.totals(try session.requireModel()).zeros, 0, "nothing pruned")
        XCTAssertTrue(session.recipe.allSatisfy { $0.action == "loaded" })
    }
}

final class CompressionStateTests: XCTestCase {
    /// Pruning a quantized model keeps its codes and QA-SparsePEFT's base in step: the pruned
    /// weights stay zero through a QA-SparsePEFT merge.
    func testPruningAfterQuantizingKeepsCodesAndQAMasksInStep() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                        then: "quantize int4 group=16 symmetric=yes\nsparsify magnitude sparsity=50%")
        let model = try session.requireModel()
        for layer in model.layers {
            for p in Projection.allCases { XCTAssertEqual(layer.weight(p).array, layer.quantized[p]!.dequantized().array, "\(p) codes follow the zeros") }
        }
        let zeros = model.layers.map { layer in Projection.allCases.map { p in (0..<layer.weight(p).count).filter { layer.weight(p)[$0] == 0 } } }
        _ = try runner.run("lora rank=4 sparse=yes quantization_aware=yes targets=q,v,down\ntrain steps=3 seq=32 lr=0.05\nlora merge", output: output)
        for (l, layer) in model.layers.enumerated() {
            for (k, p) in Projection.allCases.enumerated() {
                for i in zeros[l][k] { XCTAssertEqual(layer.weight(p)[i], 0, "\(l).\(p) weight \(i) stays pruned") }
            }
        }
        // Changing the base under SQFT adapters is refused, with the way out.
        _ = try runner.run("lora unmerge", output: output)
        for line in ["sparsify wanda", "quantize int8", "sparsify restore"] {
            XCTAssertThrowsError(try runner.run(line, output: output), line) { XCTAssertTrue("\($0)".contains("lora remove"), "\(line): \($0)") }
        }
    }

    /// A plain merge takes projections off their grid; unmerging puts them back exactly.
    func testUnmergeRestoresThePackedFormsAPlainMergeDropped() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                        then: "quantize int4 group=32 symmetric=yes\nlora rank=4 targets=q,v\ntrain steps=2 seq=32 lr=0.05")
        let model = try session.requireModel()
        let grids = model.layers.map(\.quantized)
        let text = try runner.run("lora merge", output: output).result?.plainText ?? ""
        XCTAssertTrue(text.contains("left their INT grid"), text)
        XCTAssertNil(model.layers[0].quantized[.q])
        _ = try runner.run("lora unmerge", output: output)
        XCTAssertEqual(model.layers.map(\.quantized), grids)
        for layer in model.layers { XCTAssertEqual(layer.wq.array, layer.quantized[.q]!.dequantized().array, "exactly on the grid again") }
    }

    func testAModelWithPerLayerWidthsRefusesWhatWouldTreatItsPaddingAsWeights() throws {
        let (_, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                  then: "elastic mode=B ranks=4,2 widths=100%,50%\nsubnet genome=0,0,1,0,0,0")
        let path = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString)-deci.gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        _ = try runner.run("export gguf \(path)\nmodel load \(path)", output: output)
        for line in ["lora rank=4", "sparsify magnitude", "quantize int4", "sensitivity bits=4 tokens=64 window=32"] {
            XCTAssertThrowsError(try runner.run(line, output: output), line) { XCTAssertTrue("\($0)".contains("per-layer MLP widths"), "\(line): \($0)") }
        }
        let ppl = try runner.run("eval ppl tokens=256 window=64", output: output).result?.plainText ?? ""
        XCTAssertTrue(ppl.contains("perplexity per token"), ppl)
    }
}
