@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class PEFTAdapterTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 32)

    func directory() -> String {
        let path = NSTemporaryDirectory() + "sculpt-peft-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testSavedThenLoadedAdaptersGiveIdenticalOutputs() throws {
        let model = LlamaModel.random(config: config, seed: 1)
        let set = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: Projection.allCases, dropout: 0.1), seed: 2)
        var rng = SeededGenerator(seed: 3)
        for (_, _, adapter) in set.ordered { rng.fillNormal(adapter.b, std: 0.1) }
        let tokens: [Int32] = [5, 9, 77, 120, 3, 250]
        let before = model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array
        let path = directory()
        try PEFTAdapters.save(set, model: model, baseModel: "tiny", to: path)
        set.detach(from: model)
        XCTAssertNotEqual(model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array, before)
        let loaded = try PEFTAdapters.load(from: path, into: model)
        XCTAssertEqual(loaded.configuration, set.configuration)
        XCTAssertEqual(model.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array, before)
    }

    /// Adapters trained on a model whose MLP channels were sorted are saved in the loaded order:
    /// on a model as loaded they give the same outputs, and loading them back onto the sorted
    /// model does too.
    func testAdaptersOfAReorderedMLPAreSavedInTheLoadedOrder() throws {
        let sorted = LlamaModel.random(config: config, seed: 1)
        let calibration: [[Int32]] = [(0..<16).map { Int32($0 * 13 % 256) }, (0..<16).map { Int32(($0 * 7 + 100) % 256) }]
        sorted.orderMLPChannels(byImportance: sorted.mlpChannelImportance(sequences: calibration)!)
        XCTAssertNotEqual(sorted.layers[0].mlpChannelOrder, Array(0..<config.ffnDim))
        let set = try LoRASet(model: sorted, configuration: LoRAConfiguration(rank: 4, alpha: 8, targets: [.gate, .up, .down]), seed: 2)
        var rng = SeededGenerator(seed: 3)
        for (_, _, adapter) in set.ordered { rng.fillNormal(adapter.b, std: 0.2) }
        let tokens: [Int32] = [5, 9, 77, 120, 3, 250]
        let expected = sorted.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array
        let path = directory()
        try PEFTAdapters.save(set, model: sorted, baseModel: "tiny", to: path)

        let loaded = LlamaModel.random(config: config, seed: 1)
        _ = try PEFTAdapters.load(from: path, into: loaded)
        XCTAssertLessThan(zip(loaded.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array, expected).map { abs($0 - $1) }.max()!, 1e-4)

        set.detach(from: sorted)
        _ = try PEFTAdapters.load(from: path, into: sorted)
        XCTAssertEqual(sorted.forward(tokens: tokens, batch: 1, seq: 6, logits: .all).array, expected)
    }

    func testFilesUsePEFTNamesShapesAndHuggingFaceRowOrder() throws {
        let model = LlamaModel.random(config: config, seed: 1)
        let set = try LoRASet(model: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, targets: [.q, .k, .v]), seed: 2)
        let qB = set.adapters[1][.q]!.b
        for i in 0..<qB.count { qB[i] = Float(i) }
        let path = directory()
        try PEFTAdapters.save(set, model: model, baseModel: "tiny", to: path)
        let config = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path + "/adapter_config.json"))) as! [String: Any]
        XCTAssertEqual(config["r"] as? Int, 2)
        XCTAssertEqual(config["lora_alpha"] as? Double, 4)
        XCTAssertEqual(config["target_modules"] as? [String], ["q_proj", "k_proj", "v_proj"])
        XCTAssertEqual(config["peft_type"] as? String, "LORA")
        let tensors = try Safetensors.decode(Data(contentsOf: URL(fileURLWithPath: path + "/adapter_model.safetensors")), path: path)
        XCTAssertEqual(tensors.count, 2 * 3 * 2)
        let a = try XCTUnwrap(tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight"])
        let b = try XCTUnwrap(tensors["base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight"])
        XCTAssertEqual(a.shape, [2, 32])
        XCTAssertEqual(b.shape, [32, 2])
        // Head dim 8: Hugging Face row c·4 + p holds GGUF row 2p + c. HF row 1 = GGUF row 2; HF row 4 = GGUF row 1.
        XCTAssertEqual(Array(b.array[2..<4]), Array(qB.array[4..<6]))
        XCTAssertEqual(Array(b.array[8..<10]), Array(qB.array[2..<4]))
        // v is not permuted.
        let vB = try XCTUnwrap(tensors["base_model.model.model.layers.1.self_attn.v_proj.lora_B.weight"])
        XCTAssertEqual(vB.array, set.adapters[1][.v]!.b.array)
    }

    func testAdaptersForAnotherModelAreRefused() throws {
        let model = LlamaModel.random(config: config, seed: 1)
        let path = directory()
        try PEFTAdapters.save(try LoRASet(model: model, configuration: LoRAConfiguration(rank: 2, alpha: 4, targets: [.q]), seed: 2),
                              model: model, baseModel: "tiny", to: path)
        let other = LlamaModel.random(config: try LlamaConfiguration(layers: 2, dim: 64, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256), seed: 1)
        XCTAssertThrowsError(try PEFTAdapters.load(from: path, into: other)) { XCTAssertTrue("\($0)".contains("this model needs"), "\($0)") }
        XCTAssertNil(other.layers[0].adapters[.q], "a refused load leaves nothing attached")
        XCTAssertThrowsError(try PEFTAdapters.load(from: "/nonexistent", into: model)) { XCTAssertTrue("\($0)".contains("no such directory")) }
        try Data("garbage".utf8).write(to: URL(fileURLWithPath: path + "/adapter_model.safetensors"))
        XCTAssertThrowsError(try PEFTAdapters.load(from: path, into: model))
    }
}

/// Safetensors headers that claim sizes the file cannot hold.
final class SafetensorsHostileTests: XCTestCase {
    func file(header: String, data: Int = 16) -> Data {
        var out = Data()
        var json = Data(header.utf8)
        while json.count % 8 != 0 { json.append(UInt8(ascii: " ")) }
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        return out + json + Data(count: data)
    }

    func error(_ data: Data) -> String {
        do { _ = try Safetensors.decode(data, path: "x.safetensors"); return "no error" } catch { return "\(error)" }
    }

    func testHeaderLengthsOffsetsAndShapesBeyondTheFile() {
        var huge = file(header: "{}")
        withUnsafeBytes(of: (UInt64(1) << 63).littleEndian) { huge.replaceSubrange(0..<8, with: $0) }
        XCTAssertTrue(error(huge).contains("runs past the file"), error(huge))
        withUnsafeBytes(of: UInt64.max.littleEndian) { huge.replaceSubrange(0..<8, with: $0) }
        XCTAssertTrue(error(huge).contains("runs past the file"), error(huge))

        let cases = [
            #"{"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [9223372036854775800, 9223372036854775807]}}"#,
            #"{"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 9223372036854775807]}}"#,
            #"{"t": {"dtype": "F32", "shape": [-2, 2], "data_offsets": [0, 16]}}"#,
            #"{"t": {"dtype": "F32", "shape": [4611686018427387904, 4], "data_offsets": [0, 16]}}"#,
            #"{"t": {"dtype": "F32", "shape": [1000000000000], "data_offsets": [0, 16]}}"#,
            #"{"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [16, 0]}}"#,
            #"{"t": {"dtype": "F32", "shape": [2.5, 2], "data_offsets": [0, 16]}}"#,
            #"{"t": {"dtype": "F32", "shape": [1e300], "data_offsets": [0, 16]}}"#,
        ]
        for header in cases {
            let message = error(file(header: header))
            XCTAssertTrue(message.hasPrefix("cannot read adapters from x.safetensors"), "\(header): \(message)")
        }
        // The well-formed one still reads.
        XCTAssertEqual(error(file(header: #"{"t": {"dtype": "F32", "shape": [2, 2], "data_offsets": [0, 16]}}"#)), "no error")
    }
}
