@testable import Compression
@testable import Transformer
import Foundation
import Tensors
import XCTest

final class QuantizationTests: XCTestCase {
    func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64, sparsity: Double = 0) -> Tensor {
        let w = Tensor(zeros: [rows, columns])
        var rng = SeededGenerator(seed: seed)
        rng.fillNormal(w, std: 0.05)
        if sparsity > 0 { for i in 0..<w.count where rng.nextUniform() < Float(sparsity) { w[i] = 0 } }
        return w
    }

    func testRoundToNearestKeepsZerosAndStaysWithinHalfAStep() {
        for (bits, symmetric) in [(4, false), (4, true), (8, false), (8, true)] {
            let (rows, columns) = (6, 80)   // groups of 32: the last of each row holds 16 (ragged)
            let w = randomMatrix(rows, columns, seed: UInt64(bits), sparsity: 0.5)
            let m = GroupQuantizer.quantize(w, rows: rows, columns: columns, parameters: .init(bits: bits, group: 32, symmetric: symmetric))
            XCTAssertEqual(m.groupsPerRow, 3)
            let q = m.dequantized()
            for r in 0..<rows {
                for c in 0..<columns {
                    let i = r * columns + c
                    if w[i] == 0 { XCTAssertEqual(q[i], 0, "a pruned weight stays exactly zero (\(bits) bits)") }
                    // Q4_0's grid runs −8…7 steps from the largest weight's side: the other side's
                    // extreme clips by up to one step.
                    let s = abs(m.scale(r, group: c / 32)) * (bits == 4 && symmetric ? 2 : 1)
                    XCTAssertLessThanOrEqual(abs(w[i] - q[i]), s / 2 * 1.001 + 1e-7, "\(bits) bits, symmetric \(symmetric), (\(r), \(c))")
                }
            }
            XCTAssertLessThan(GroupQuantizer.relativeError(w, m), bits == 4 ? 0.2 : 0.02)
        }
    }

    /// Symmetric INT4 (INT8) in groups of 32 is exactly what GGUF's Q4_0 (Q8_0) stores: encoding
    /// the dequantized weights as those blocks and decoding them gives the same floats.
    func testSymmetricGroupsOf32AreExactlyQ4_0AndQ8_0() {
        for (bits, type) in [(4, GGMLType.q4_0), (8, .q8_0)] {
            let w = randomMatrix(4, 64, seed: 7, sparsity: 0.3)
            let m = GroupQuantizer.quantize(w, rows: 4, columns: 64, parameters: .init(bits: bits, group: 32, symmetric: true))
            let q = m.dequantized()
            let bytes = GGMLBlocks.quantize(type, q.data, count: q.count)
            let back = Tensor(zeros: [4, 64])
            bytes.withUnsafeBytes { GGMLBlocks.dequantize(type, $0.baseAddress!, into: back.data, count: back.count) }
            XCTAssertEqual(back.array, q.array, "\(type)")
        }
    }

    /// Every export type but `keep` is a writable row of the type-traits table, and every writable
    /// row is offered; the ids and llama.cpp file types are the ones export has always written.
    func testExportTypesAgreeWithGGMLTypeTraits() {
        XCTAssertNil(GGUFExport.TensorType.keep.traits)
        XCTAssertNil(GGUFExport.TensorType.keep.fileType)
        let offered = GGUFExport.TensorType.allCases.compactMap(\.traits)
        XCTAssertEqual(offered.map(\.name), GGMLTypeTraits.all.filter(\.isWritable).map(\.name))
        let expected: [GGUFExport.TensorType: (GGMLType, UInt32)] = [.f32: (.f32, 0), .f16: (.f16, 1), .q4_0: (.q4_0, 2), .q4_1: (.q4_1, 3), .q8_0: (.q8_0, 7)]
        for (type, (ggml, fileType)) in expected {
            XCTAssertEqual(type.ggml, ggml, "\(type)")
            XCTAssertEqual(type.fileType, fileType, "\(type)")
            XCTAssertEqual(type.traits, ggml.traits, "\(type)")
        }
    }

    func testInverseCholeskyFactorsTheDampedInverse() throws {
        let n = 5
        let x = randomMatrix(40, n, seed: 3)
        let gram = Tensor(zeros: [n, n])
        gemm(transposeA: true, transposeB: false, m: n, n: n, k: 40, a: x.data, lda: n, b: x.data, ldb: n, c: gram.data, ldc: n)
        let (u, dead) = try GPTQ.inverseCholesky(gram, n: n)
        XCTAssertTrue(dead.isEmpty)
        let mean = (0..<n).reduce(0.0) { $0 + Double(gram[$1 * n + $1]) } / Double(n)
        // (H + λI) · Uᵀ U = I
        for i in 0..<n {
            for j in 0..<n {
                var product = 0.0
                for k in 0..<n {
                    var inverse = 0.0
                    for t in 0..<n { inverse += u[t * n + k] * u[t * n + j] }
                    product += (Double(gram[i * n + k]) + (i == k ? GPTQ.dampening * mean : 0)) * inverse
                }
                XCTAssertEqual(product, i == j ? 1 : 0, accuracy: 1e-3, "(\(i), \(j))")
            }
            for j in 0..<i { XCTAssertEqual(u[i * n + j], 0, "upper triangular") }
        }
    }

    /// With uncorrelated inputs (H ∝ I) no error moves between columns: GPTQ is RTN. With
    /// correlated inputs it beats RTN on the layer's outputs, and keeps every pruned zero.
    func testGPTQIsRTNOnWhiteInputsAndBeatsItOnCorrelatedOnes() throws {
        let (rows, columns) = (8, 64)
        let p = GroupQuantizer.Parameters(bits: 4, group: 32, symmetric: false)
        let w = randomMatrix(rows, columns, seed: 11, sparsity: 0.5)
        let identity = Tensor(zeros: [columns, columns])
        for i in 0..<columns { identity[i * columns + i] = 1 }
        let (u, dead) = try GPTQ.inverseCholesky(identity, n: columns)
        let white = w.copy()
        let m = try GPTQ.quantize(white, rows: rows, columns: columns, u: u, dead: dead, parameters: p)
        XCTAssertEqual(m, GroupQuantizer.quantize(w, rows: rows, columns: columns, parameters: p))

        // Inputs with a strong shared component: x = a·z + noise.
        let tokens = 256
        let x = Tensor(zeros: [tokens, columns])
        var rng = SeededGenerator(seed: 12)
        for t in 0..<tokens {
            let shared = rng.nextNormal()
            for c in 0..<columns { x[t * columns + c] = shared * Float(1 + c % 3) + 0.3 * rng.nextNormal() }
        }
        let gram = Tensor(zeros: [columns, columns])
        gemm(transposeA: true, transposeB: false, m: columns, n: columns, k: tokens, a: x.data, lda: columns, b: x.data, ldb: columns,
             c: gram.data, ldc: columns)
        let (u2, dead2) = try GPTQ.inverseCholesky(gram, n: columns)
        let viaGPTQ = w.copy()
        let g = try GPTQ.quantize(viaGPTQ, rows: rows, columns: columns, u: u2, dead: dead2, parameters: p)
        XCTAssertEqual(viaGPTQ.array, g.dequantized().array, "the weight holds the dequantized result")
        let rtn = GroupQuantizer.quantize(w, rows: rows, columns: columns, parameters: p).dequantized()
        func outputError(_ q: Tensor) -> Double {
            var e = 0.0
            for t in 0..<tokens {
                for r in 0..<rows {
                    var d = 0.0
                    for c in 0..<columns { d += Double(x[t * columns + c]) * Double(w[r * columns + c] - q[r * columns + c]) }
                    e += d * d
                }
            }
            return e
        }
        XCTAssertLessThan(outputError(viaGPTQ), 0.8 * outputError(rtn), "GPTQ's outputs are closer")
        for i in 0..<w.count where w[i] == 0 { XCTAssertEqual(viaGPTQ[i], 0, "pruned weights stay zero") }
    }

    func testModelQuantizationStoresPackedCodesAndAnInterruptedGPTQLeavesWholeBlocks() throws {
        let config = try LlamaConfiguration(layers: 3, dim: 16, ffnDim: 32, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)
        let model = LlamaModel.random(config: config, seed: 5)
        var p = ModelQuantization.Parameters()
        p.grid = .init(bits: 4, group: 16, symmetric: false)
        p.method = .rtn
        try ModelQuantization.quantize(model: model, parameters: p)
        let packed = ModelQuantization.packedBytes(model)
        XCTAssertEqual(packed.projections, 21)
        XCTAssertLessThan(packed.packed * 5, packed.float32, "INT4 with scales is under a fifth of Float32")
        XCTAssertEqual(model.layers[1].wUp.array, model.layers[1].quantized[.up]!.dequantized().array)

        let fresh = LlamaModel.random(config: config, seed: 6)
        let dense = fresh.layers.map { layer in Projection.allCases.map { layer.weight($0).copy().array } }
        let cancellation = CancellationToken()
        p.method = .gptq
        let windows: [[Int32]] = (0..<2).map { (w: Int) -> [Int32] in (0..<10).map { (t: Int) -> Int32 in Int32((t * 29 + w * 7 + 1) % 256) } }
        var reported = [Int]()
        XCTAssertThrowsError(try ModelQuantization.quantize(model: fresh, parameters: p, windows: windows, cancellation: cancellation) { l, errors in
            reported.append(l)
            XCTAssertEqual(errors.count, 7)
            if l == 0 { cancellation.cancel() }
        })
        XCTAssertEqual(reported, [0])
        XCTAssertEqual(fresh.layers[0].quantized.count, 7)
        XCTAssertTrue(fresh.layers[1].quantized.isEmpty && fresh.layers[2].quantized.isEmpty)
        for l in 1...2 { XCTAssertEqual(Projection.allCases.map { fresh.layers[l].weight($0).array }, dense[l]) }
    }
}
