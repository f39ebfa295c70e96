@testable import Commands
import Compression
import Display
import Foundation
import Tensors
import Transformer
import Workbench
import XCTest

/// `model load keep=`, the card's memory and kernels, `quantize` packing its grids, and
/// `export type=keep` writing loaded blocks back as they were.
final class PackedModelCommandTests: XCTestCase {
    func quantizedFile(_ type: GGMLType) throws -> String {
        let config = try LlamaConfiguration(layers: 2, dim: 64, ffnDim: 128, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 128)
        let path = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString).gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: path) }
        try LlamaModel.random(config: config, seed: 3).gguf(type: type).write(to: path)
        return path
    }

    func run(_ runner: CellRunner, _ line: String) throws -> String {
        let output = RecordingOutput()
        let result = try runner.run(line, output: output)
        let shown = output.events.compactMap { event -> String? in
            switch event {
            case .display(let bundle, _), .update(let bundle, _): return bundle.plainText
            case .text(let text, _): return text
            case .clear: return nil
            }
        }
        return (shown + [result.result?.plainText ?? ""]).joined(separator: "\n")
    }

    func testKeepIsTheDefaultAndTheCardShowsTheFormsAndTheKernels() throws {
        let path = try quantizedFile(.q4_0)
        let session = Session()
        let runner = CellRunner(session: session)
        let kept = try run(runner, "model load \(path)")
        XCTAssertTrue(kept.contains("15 matrices Q4_0"), kept)
        XCTAssertTrue(kept.contains("packed products on \(KernelPath.current.rawValue)"), kept)
        let packedBytes = try XCTUnwrap(session.modelCard?.weightBytes)
        XCTAssertTrue(try session.requireModel().isPacked)

        let float32 = try run(runner, "model load \(path) keep=no")
        XCTAssertTrue(float32.contains("(Float32)"), float32)
        XCTAssertFalse(float32.contains("packed products"), float32)
        XCTAssertGreaterThan(try XCTUnwrap(session.modelCard?.weightBytes), 4 * packedBytes)
        XCTAssertThrowsError(try runner.run("model load \(path) keep=maybe", output: RecordingOutput()))
    }

    func testTrainingAPackedModelConvertsNothingAndMethodsThatChangeWeightsConvertWhatTheyTouch() throws {
        let path = try quantizedFile(.q8_0)
        let text = try temporaryText("Emma Woodhouse, handsome, clever, and rich. ", repeated: 60)
        let session = Session()
        let runner = CellRunner(session: session)
        _ = try run(runner, "model load \(path)\ndata text \"\(text)\"")
        _ = try run(runner, "lora rank=4\ntrain steps=2 seq=32")
        let model = try session.requireModel()
        XCTAssertEqual(model.storageSummary.packed["Q8_0"], 15, "adapter training reads the packed base and leaves it packed")
        let adapted = model.layers.reduce(0) { $0 + $1.adapters.count }
        XCTAssertGreaterThan(adapted, 0)
        _ = try run(runner, "lora merge")
        XCTAssertEqual(model.storageSummary.packed["Q8_0"], 15 - adapted, "a merge writes Float32 weights into the adapted projections only")
        let card = try run(runner, "model info")
        let packed = 15 - adapted
        XCTAssertTrue(card.contains("\(packed) \(packed == 1 ? "matrix" : "matrices") Q8_0, \(adapted) Float32"), card)
    }

    func testQuantizePacksItsGridsAndTheProductsUseThem() throws {
        let (session, runner, _) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        let before = try run(runner, "eval ppl tokens=256 window=64")
        _ = try run(runner, "quantize int8 group=32 symmetric=yes")
        let model = try session.requireModel()
        XCTAssertEqual(model.storageSummary.packed["INT8 g32 sym"], 14)
        XCTAssertTrue(model.layers.allSatisfy { $0.hasFloat32(.q) }, "the Float32 copy stays for the methods")
        let card = try run(runner, "model info")
        XCTAssertTrue(card.contains("14 matrices INT8 g32 sym"), card)
        // The products read the codes: the same perplexity within what 8-bit weights and activations cost.
        let after = try run(runner, "eval ppl tokens=256 window=64")
        func ppl(_ s: String) -> Double? {
            guard let range = s.range(of: "perplexity per token") else { return nil }
            return s[range.upperBound...].split(whereSeparator: { $0 == " " || $0 == "\n" || $0 == "|" }).first.flatMap { Double($0) }
        }
        let (p0, p1) = (try XCTUnwrap(ppl(before)), try XCTUnwrap(ppl(after)))
        XCTAssertEqual(p1, p0, accuracy: 0.02 * p0)
    }

    func testExportKeepWritesLoadedBlocksBackByteForByte() throws {
        for type in [GGMLType.q4_0, .q4_1, .q8_0] {
            let path = try quantizedFile(type)
            let session = Session()
            let runner = CellRunner(session: session)
            _ = try run(runner, "model load \(path)")
            let out = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString)-kept.gguf"
            addTeardownBlock { try? FileManager.default.removeItem(atPath: out) }
            _ = try run(runner, "export gguf \(out) type=keep")
            let (a, b) = (try GGUFFile(path: path), try GGUFFile(path: out))
            for info in a.tensors where info.shape.count == 2 {
                let kept = try XCTUnwrap(b.info(info.name))
                XCTAssertEqual(kept.type, type, info.name)
                let bytes = { (file: GGUFFile, i: GGUFFile.TensorInfo) in file.withBytes(of: i) { Array(UnsafeRawBufferPointer(start: $0, count: i.byteCount)) } }
                XCTAssertEqual(bytes(a, info), bytes(b, kept), "\(type) \(info.name) byte for byte")
            }
        }
    }
}
