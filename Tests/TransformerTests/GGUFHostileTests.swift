import Foundation
import Tensors
@testable import Transformer
import XCTest

/// GGUF files whose header claims sizes the file cannot hold: each must be a clear error,
/// found before anything of that size is allocated.
final class GGUFHostileTests: XCTestCase {
    func tinyModelFile(_ change: (inout GGUFWriter) -> Void = { _ in }) throws -> Data {
        let config = try LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        var writer = try LlamaModel.random(config: config, seed: 1).gguf()
        change(&writer)
        return writer.encoded()
    }

    func loadError(_ data: Data) -> String {
        do { _ = try LlamaModel.load(GGUFFile(data: data)); return "no error" } catch { return "\(error)" }
    }

    /// The byte offset just after a tensor info's name.
    func afterName(_ name: String, in data: Data) -> Int {
        var pattern = Data()
        withUnsafeBytes(of: UInt64(name.utf8.count).littleEndian) { pattern.append(contentsOf: $0) }
        pattern.append(Data(name.utf8))
        return data.range(of: pattern)!.upperBound
    }

    func patch<T: FixedWidthInteger>(_ data: inout Data, at offset: Int, _ value: T) {
        withUnsafeBytes(of: value.littleEndian) { data.replaceSubrange(offset..<(offset + MemoryLayout<T>.size), with: $0) }
    }

    func testDimensionsWhoseProductOverflowsInt() throws {
        var writer = GGUFWriter()
        try writer.add("t", Tensor(zeros: [2, 32]), as: .f32)
        var data = writer.encoded()
        let at = afterName("t", in: data) + 4   // past the dimension count
        patch(&data, at: at, UInt64(0xFFFF_FFE0))
        patch(&data, at: at + 8, UInt64(0xFFFF_FFE0))
        XCTAssertThrowsError(try GGUFFile(data: data)) { XCTAssertTrue("\($0)".contains("need more bytes than the file has"), "\($0)") }
    }

    func testDataOffsetBeyondTheFile() throws {
        var writer = GGUFWriter()
        try writer.add("t", Tensor(zeros: [2, 32]), as: .f32)
        var data = writer.encoded()
        let at = afterName("t", in: data) + 4 + 2 * 8 + 4   // count, two dimensions, type
        for offset in [UInt64(1) << 63, UInt64.max - 31, UInt64(1) << 40] {
            patch(&data, at: at, offset)
            XCTAssertThrowsError(try GGUFFile(data: data), "\(offset)") { XCTAssertTrue("\($0)".contains("past the end of the file"), "\($0)") }
        }
    }

    func testMetadataSizesAreCheckedBeforeAllocating() throws {
        // Beyond any model: refused by the configuration.
        let wide = try tinyModelFile { $0.set("llama.embedding_length", .uint64(1 << 36)) }
        XCTAssertTrue(loadError(wide).contains("beyond any model"), loadError(wide))
        let long = try tinyModelFile { $0.set("llama.context_length", .uint64(1 << 40)) }
        XCTAssertTrue(loadError(long).contains("beyond any model"), loadError(long))
        // Within the limits but not what the tensors hold: a 2^20-wide model would need terabytes;
        // the shapes are compared first.
        let claimed = try tinyModelFile { $0.set("llama.embedding_length", .uint32(1 << 20)) }
        XCTAssertTrue(loadError(claimed).contains("the configuration needs"), loadError(claimed))
        // Shapes that match but a context whose RoPE table needs more memory than the machine has
        // (68 GB; machines here have 24).
        guard let available = MachineMemory.availableBytes(), available < 60_000_000_000 else {
            return XCTFail("this test needs a machine with less than 60 GB available")
        }
        let memory = try tinyModelFile { $0.set("llama.context_length", .uint32(UInt32((1 << 31) - 1))) }
        XCTAssertTrue(loadError(memory).contains("memory"), loadError(memory))
    }

    func testDeeplyNestedArraysAreRefusedWithoutRecursingAway() {
        var data = Data()
        func put<T: FixedWidthInteger>(_ v: T) { withUnsafeBytes(of: v.littleEndian) { data.append(contentsOf: $0) } }
        put(UInt32(0x4655_4747)); put(UInt32(3)); put(UInt64(0)); put(UInt64(1))
        put(UInt64(1)); data.append(UInt8(ascii: "k")); put(GGUFValueType.array.rawValue)
        for _ in 0..<100_000 { put(GGUFValueType.array.rawValue); put(UInt64(1)) }
        put(GGUFValueType.int32.rawValue); put(UInt64(0))
        XCTAssertThrowsError(try GGUFFile(data: data)) { XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)") }
    }

    func testWeightShapesMatchTheModel() throws {
        let config = try LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        for tied in [true, false] {
            let model = LlamaModel(config: config, tokenizer: .bytes(), tiedOutput: tied)
            XCTAssertEqual(config.weightShapes(tiedOutput: tied).map(\.0), model.namedWeights.map(\.0))
            XCTAssertEqual(config.weightShapes(tiedOutput: tied).map(\.1), model.namedWeights.map(\.1.shape))
            XCTAssertEqual(config.float32Bytes(tiedOutput: tied), Double(model.weightBytes + model.rope.cos.byteCount + model.rope.sin.byteCount))
        }
    }
}
