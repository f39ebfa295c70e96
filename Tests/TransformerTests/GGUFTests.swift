import Foundation
import Tensors
@testable import Transformer
import XCTest

final class GGUFTests: XCTestCase {
    func tinyModel(seed: UInt64 = 7) throws -> LlamaModel {
        let config = try LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        return LlamaModel.random(config: config, seed: seed)
    }

    func temporaryPath() -> String {
        let path = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString).gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        return path
    }

    func testTinyModelRoundTripsBitForBitInF32() throws {
        let model = try tinyModel()
        let path = temporaryPath()
        try model.gguf(type: .f32).write(to: path)
        let loaded = try LlamaModel.load(path: path)
        XCTAssertEqual(loaded.config, model.config)
        for ((name, a), (_, b)) in zip(model.namedWeights, loaded.namedWeights) {
            XCTAssertEqual(a.array.map(\.bitPattern), b.array.map(\.bitPattern), name)
        }
        XCTAssertEqual(loaded.tokenizer.tokens, model.tokenizer.tokens)
        let tokens: [Int32] = [72, 101, 108, 108, 111]
        XCTAssertEqual(model.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array,
                       loaded.forward(tokens: tokens, batch: 1, seq: 5, logits: .all).array)
    }

    func testEveryMetadataTypeRoundTrips() throws {
        var writer = GGUFWriter()
        let values: [(String, GGUFValue)] = [
            ("a.u8", .uint8(200)), ("a.i8", .int8(-5)), ("a.u16", .uint16(60000)), ("a.i16", .int16(-3000)),
            ("a.u32", .uint32(4_000_000_000)), ("a.i32", .int32(-2_000_000_000)), ("a.f32", .float32(1.5)),
            ("a.bool", .bool(true)), ("a.string", .string("héllo ✓")), ("a.u64", .uint64(1 << 40)), ("a.i64", .int64(-(1 << 40))),
            ("a.f64", .float64(-2.25)), ("a.array", .array(.string, [.string("x"), .string("y")])),
            ("a.nested", .array(.array, [.array(.int32, [.int32(1), .int32(2)])])),
        ]
        for (k, v) in values { writer.set(k, v) }
        try writer.add("t", Tensor(shape: [2, 32], values: (0..<64).map(Float.init)), as: .f32)
        let file = try GGUFFile(data: writer.encoded())
        XCTAssertEqual(file.version, 3)
        for (k, v) in values { XCTAssertEqual(file.metadata[k], v, k) }
        XCTAssertEqual(file.metadataKeys, values.map(\.0))
        XCTAssertEqual(try file.tensor("t").array, (0..<64).map(Float.init))
    }

    func testQuantizedTypesDecodeWithinTheirStep() throws {
        var rng = SeededGenerator(seed: 3)
        let x = Tensor(zeros: [4, 64])
        rng.fillNormal(x, std: 1)
        x[5] = 0
        var writer = GGUFWriter()
        for type in [GGMLType.f16, .q8_0, .q4_0] { try writer.add("w.\(type)", x, as: type) }
        let file = try GGUFFile(data: writer.encoded())
        let amax = x.array.map(abs).max()!
        for (type, tolerance) in [(GGMLType.f16, amax * 1e-3), (.q8_0, amax / 127), (.q4_0, amax / 7)] {
            let y = try file.tensor("w.\(type)").array
            let worst = zip(x.array, y).map { abs($0 - $1) }.max()!
            XCTAssertLessThanOrEqual(worst, tolerance, "\(type)")
            XCTAssertEqual(y[5], 0, "\(type) keeps an exact zero")
        }
    }

    func testQ4_1AndBF16DecodeAsGGMLDefinesThem() throws {
        // One Q4_1 block: d = 0.5, m = −1, nibbles 0..15 then 15..0 (low nibbles first).
        var block = [UInt8]()
        block += withUnsafeBytes(of: Float16(0.5).bitPattern.littleEndian, Array.init)
        block += withUnsafeBytes(of: Float16(-1).bitPattern.littleEndian, Array.init)
        for j in 0..<16 { block.append(UInt8(j) | UInt8(15 - j) << 4) }
        var out = [Float](repeating: 0, count: 32)
        block.withUnsafeBytes { GGMLBlocks.dequantize(.q4_1, $0.baseAddress!, into: &out, count: 32) }
        XCTAssertEqual(Array(out[0..<16]), (0..<16).map { Float($0) * 0.5 - 1 })
        XCTAssertEqual(Array(out[16..<32]), (0..<16).map { Float(15 - $0) * 0.5 - 1 })
        // bfloat16 0x3FC0 = 1.5
        var bf: [UInt8] = [0xC0, 0x3F]
        var one = [Float](repeating: 0, count: 1)
        bf.withUnsafeMutableBytes { GGMLBlocks.dequantize(.bf16, $0.baseAddress!, into: &one, count: 1) }
        XCTAssertEqual(one[0], 1.5)
    }

    func testCorruptFilesGiveErrorsThatNameTheProblem() throws {
        let good = try tinyModel().gguf().encoded()
        func error(_ data: Data) -> String {
            do { _ = try LlamaModel.load(GGUFFile(data: data)); return "no error" } catch { return "\(error)" }
        }
        XCTAssertTrue(error(Data("GGML".utf8) + good.dropFirst(4)).contains("not a GGUF file"))
        var version = good
        version[4] = 9
        XCTAssertTrue(error(version).contains("version 9"))
        XCTAssertTrue(error(good.prefix(100)).contains("truncated"))
        XCTAssertTrue(error(good.prefix(good.count - 10)).contains("truncated"), error(good.prefix(good.count - 10)))
        XCTAssertTrue(error(Data()).contains("truncated"))

        // A tensor of a type Sculpt does not read, and a model without one of its tensors.
        var writer = GGUFWriter()
        for (k, v) in try tinyModel().gguf().metadata { writer.set(k, v) }
        var bytes = writer.encoded()
        XCTAssertTrue(error(bytes).contains("token_embd.weight"), error(bytes))
        try writer.add("token_embd.weight", Tensor(zeros: [256, 32]), as: .f32)
        bytes = writer.encoded()
        XCTAssertTrue(error(bytes).contains("blk.0.attn_norm.weight"), error(bytes))
        // Patch the tensor's type id (after its name, dims) to Q4_K (12).
        let name = Data("token_embd.weight".utf8)
        let at = bytes.range(of: name)!.upperBound + 4 + 16
        bytes[at] = 12
        XCTAssertTrue(error(bytes).contains("Q4_K"), error(bytes))
    }

    func testMissingFileAndWrongArchitecture() throws {
        XCTAssertThrowsError(try GGUFFile(path: "/nonexistent/model.gguf")) { XCTAssertTrue("\($0)".contains("no such file")) }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("gpt2"))
        XCTAssertThrowsError(try LlamaModel.load(GGUFFile(data: writer.encoded()))) { XCTAssertTrue("\($0)".contains("not a LLaMA model")) }
    }

    func testConfigurationValidation() {
        XCTAssertThrowsError(try LlamaConfiguration(layers: 1, dim: 30, ffnDim: 8, heads: 4, kvHeads: 2, vocabSize: 256)) {
            XCTAssertTrue("\($0)".contains("do not divide the width"))
        }
        XCTAssertThrowsError(try LlamaConfiguration(layers: 1, dim: 32, ffnDim: 8, heads: 4, kvHeads: 3, vocabSize: 256))
        XCTAssertThrowsError(try LlamaConfiguration(layers: 0, dim: 32, ffnDim: 8, heads: 4, kvHeads: 2, vocabSize: 256))
    }
}
