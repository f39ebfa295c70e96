@testable import Commands
import Compression
import Display
import Foundation
import Tensors
import Transformer
import Workbench
import XCTest

final class ExportCommandTests: XCTestCase {
    func temporaryPath(_ name: String) -> String {
        let path = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString)-\(name)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func logits(_ model: LlamaModel) -> [Float] {
        model.forward(tokens: [1, 50, 99, 200, 7, 13], batch: 1, seq: 6, logits: .all).array
    }

    /// A mode-B subnet with adapters folded in, written with per-layer widths (deci) and loaded
    /// back: the same function, and the narrower MLP is narrower in the file.
    func testASubnetExportsAsDeciAndLoadsBackComputingTheSame() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                        then: "elastic mode=B ranks=4,2 widths=100%,50%\ntrain steps=3 seq=32\nsubnet genome=0,0,1,0,0,0")
        let before = logits(try session.requireModel())
        let path = temporaryPath("subnet.gguf")
        let text = try runner.run("export gguf \(path)", output: output).result?.plainText ?? ""
        XCTAssertTrue(text.contains("deci"), text)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.metadata["general.architecture"]?.string, "deci")
        XCTAssertEqual(file.info("blk.0.ffn_up.weight")?.shape, [32, 32], "layer 0 written at half its MLP width")
        XCTAssertEqual(file.info("blk.1.ffn_down.weight")?.shape, [32, 64])
        XCTAssertTrue(file.metadata["sculpt.recipe"]?.array?.compactMap(\.string).contains { $0.hasPrefix("trained") } ?? false)
        let reloaded = try LlamaModel.load(path: path)
        XCTAssertEqual(reloaded.activeShape.mlpWidths, [32, 64])
        XCTAssertEqual(zip(before, logits(reloaded)).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)
    }

    /// `keep`: symmetric INT4 in groups of 32 becomes Q4_0 holding the very same floats; an
    /// asymmetric grid has no exact GGUF type and the error says why.
    func testKeepWritesSymmetricInt4AsExactQ4_0AndExplainsWhatItCannot() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                        then: "sparsify magnitude sparsity=50%\nquantize int4 group=32 symmetric=yes")
        let model = try session.requireModel()
        let path = temporaryPath("int4.gguf")
        _ = try runner.run("export gguf \(path) type=keep", output: output)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.info("blk.1.attn_v.weight")?.type, .q4_0)
        XCTAssertEqual(file.info("token_embd.weight")?.type, .f32)
        let reloaded = try LlamaModel.load(path: path)
        for (a, b) in zip(model.layers, reloaded.layers) {
            for p in Projection.allCases { XCTAssertEqual(a.weight(p).array, b.weight(p).array, "\(p) exactly") }
        }
        // QA-SparsePEFT moves codes within each group: the blocks are written from the codes, not re-derived.
        _ = try runner.run("lora rank=4 sparse=yes quantization_aware=yes targets=q,v,down\ntrain steps=3 seq=32 lr=0.05", output: output)
        let unmergedPath = temporaryPath("qa-unmerged.gguf")
        let baseQ = model.layers.map { $0.wq.array }
        _ = try runner.run("export gguf \(unmergedPath) type=keep\nlora merge", output: output)
        XCTAssertNotEqual(model.layers.map { $0.wq.array }, baseQ, "training moved codes")
        let mergedPath = temporaryPath("qa-merged.gguf")
        _ = try runner.run("export gguf \(mergedPath) type=keep", output: output)
        for path in [unmergedPath, mergedPath] {
            let back = try LlamaModel.load(path: path)
            XCTAssertEqual(try GGUFFile(path: path).info("blk.0.attn_q.weight")?.type, .q4_0)
            for (a, b) in zip(model.layers, back.layers) {
                for p in Projection.allCases { XCTAssertEqual(a.weight(p).array, b.weight(p).array, "\(path): \(p) exactly") }
            }
        }
        _ = try runner.run("lora remove", output: output)
        _ = try runner.run("sparsify restore\nquantize int4 group=32", output: output)
        XCTAssertThrowsError(try runner.run("export gguf \(temporaryPath("asym.gguf")) type=keep", output: output)) {
            XCTAssertTrue("\($0)".contains("symmetric=yes"), "\($0)")
        }
        _ = try runner.run("sparsify restore\nquantize int4 group=16 symmetric=yes", output: output)
        XCTAssertThrowsError(try runner.run("export gguf \(temporaryPath("g16.gguf")) type=keep", output: output)) {
            XCTAssertTrue("\($0)".contains("group=32"), "\($0)")
        }
    }

    /// llama.cpp's LoRA GGUF: lora_a (rank × in), lora_b (out × rank), alpha = s · rank; with
    /// ALoRA's uneven ranks the scale is folded into lora_b and alpha is 0.
    func testAdapterGGUFHoldsTheActiveRanksAndTheScaleLlamaCppApplies() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                        then: "lora rank=4 alpha=8 targets=q,down\ntrain steps=2 seq=32")
        let path = temporaryPath("lora.gguf")
        _ = try runner.run("export adapters gguf \(path)", output: output)
        let file = try GGUFFile(path: path)
        XCTAssertEqual(file.metadata["general.type"]?.string, "adapter")
        XCTAssertEqual(file.metadata["adapter.lora.alpha"]?.double ?? 0, 8, accuracy: 1e-6)
        XCTAssertEqual(file.info("blk.0.attn_q.weight.lora_a")?.shape, [4, 32])
        XCTAssertEqual(file.info("blk.1.ffn_down.weight.lora_b")?.shape, [32, 4])
        // Base + the file's adapters as llama.cpp applies them = the session's model.
        let model = try session.requireModel()
        let base = temporaryPath("base.gguf")
        _ = try runner.run("export gguf \(base) merge=no", output: output)
        let reloaded = try LlamaModel.load(path: base)
        for l in 0..<2 {
            for p in [Projection.q, .down] {
                let name = "blk.\(l).\(p == .q ? "attn_q" : "ffn_down").weight"
                let a = Tensor(zeros: file.info(name + ".lora_a")!.shape), b = Tensor(zeros: file.info(name + ".lora_b")!.shape)
                file.decode(file.info(name + ".lora_a")!, into: a.data)
                file.decode(file.info(name + ".lora_b")!, into: b.data)
                let (i, o) = p.shape(model.config)
                gemm(transposeA: false, transposeB: false, m: o, n: i, k: 4, alpha: 8 / 4, a: b.data, lda: 4, b: a.data, ldb: i,
                     beta: 1, c: reloaded.layers[l].weight(p).data, ldc: i)
            }
        }
        XCTAssertEqual(zip(logits(model), logits(reloaded)).map { abs($0 - $1) }.max()!, 0, accuracy: 1e-4)

        _ = try runner.run("alora budget=2 rounds=1 warmup_steps=2 round_steps=1 seq=32 val_batch=1 val_seq=16 targets=q,v", output: output)
        let uneven = temporaryPath("alora.gguf")
        let text = try runner.run("export adapters gguf \(uneven)", output: output).result?.plainText ?? ""
        XCTAssertTrue(text.contains("folded into lora_b"), text)
        XCTAssertEqual(try GGUFFile(path: uneven).metadata["adapter.lora.alpha"]?.double, 0)
    }
}

final class CompressionBadInputTests: XCTestCase {
    /// Each new command's bad input ends the cell with a clear error and changes nothing.
    func testBadInputToTheCompressionCommandsIsAClearErrorAndChangesNothing() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80,
                                                        then: "lora rank=4 sparse=yes targets=q")
        let model = try session.requireModel()
        let before = model.layers.map { layer in Projection.allCases.map { layer.weight($0).array } }
        for (line, expected) in [("quantize int4 group=0", "group"), ("quantize int3", "int4"), ("quantize int4 method=awq", "method"),
                                 ("quantize int4 layers=5-1", "layers"), ("sensitivity", "exactly one"), ("sensitivity pattern=1:1", "N:M"),
                                 ("export gguf /nonexistent-folder/x.gguf", "does not exist"), ("export gguf", "needs PATH"),
                                 ("export gguf /tmp/x.gguf type=q5_k", "type"), ("export adapters gguf /tmp/sculpt-a.gguf", "not a low-rank"),
                                 ("export adapters safetensors /tmp/a", "gguf"), ("sparsify restore", "never pruned")] {
            XCTAssertThrowsError(try runner.run(line, output: output), line) { XCTAssertTrue("\($0)".contains(expected), "\(line): \($0)") }
        }
        XCTAssertEqual(model.layers.map { layer in Projection.allCases.map { layer.weight($0).array } }, before, "the model is as it was")
        XCTAssertNotNil(session.lora, "the adapters stay")
    }
}
