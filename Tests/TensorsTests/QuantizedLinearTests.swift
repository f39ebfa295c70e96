import Foundation
import Tensors
import XCTest

/// Every quantized product path against a plain reference, on random blocks of every format.
final class QuantizedLinearTests: XCTestCase {
    /// Random GGUF blocks of `type` (Q4_0, Q4_1 or Q8_0) with half scales in a sane range.
    static func ggmlMatrix(_ type: GGMLTypeTraits, rows: Int, columns: Int, seed: UInt64) -> BlockQuantizedMatrix {
        var rng = SeededGenerator(seed: seed)
        let blockBytes = type.bytesPerBlock
        var bytes = [UInt8](repeating: 0, count: type.byteCount(elements: rows * columns))
        for b in 0..<(rows * columns / type.blockSize) {
            let base = b * blockBytes
            let halves = type == .q4_1 ? 2 : 1
            for h in 0..<halves {
                let value = Float16(Float.random(in: (h == 0 ? 0.001 : -0.05)...0.05, using: &rng))
                bytes[base + 2 * h] = UInt8(value.bitPattern & 0xFF)
                bytes[base + 2 * h + 1] = UInt8(value.bitPattern >> 8)
            }
            for j in (2 * halves)..<blockBytes {
                // Q8_0 codes −127…127, as llama.cpp writes them; also −128 now and then.
                bytes[base + j] = type == .q8_0 ? UInt8(bitPattern: Int8.random(in: (j == 5 ? -128 : -127)...127, using: &rng)) : UInt8.random(in: 0...255, using: &rng)
            }
        }
        return bytes.withUnsafeBytes { BlockQuantizedMatrix(ggmlType: Int(type.id), blocks: $0.baseAddress!, rows: rows, columns: columns)! }
    }

    /// A random `quantize`-style grid: per-group scales and zero points.
    static func gridMatrix(bits: Int, group: Int, symmetric: Bool, rows: Int, columns: Int, seed: UInt64) -> BlockQuantizedMatrix {
        var rng = SeededGenerator(seed: seed)
        var grid = GroupQuantizedMatrix(rows: rows, columns: columns, bits: bits, group: group, symmetric: symmetric)
        for r in 0..<rows {
            for g in 0..<grid.groupsPerRow {
                let zero = symmetric ? 1 << (bits - 1) : Int.random(in: 0...grid.largestCode, using: &rng)
                grid.setGroup(r, g, scale: Float(Float16(Float.random(in: 0.001...0.03, using: &rng))), zero: zero)
            }
            for c in 0..<columns { grid.setCode(r, c, Int.random(in: 0...grid.largestCode, using: &rng)) }
        }
        let packed = BlockQuantizedMatrix(grid)!
        // The packed form holds the same weights as the grid.
        let a = grid.dequantized(), b = packed.dequantized()
        for i in 0..<a.count { XCTAssertEqual(a[i], b[i], accuracy: 1e-6 * max(1, abs(a[i]))) }
        return packed
    }

    static var formats: [(String, (Int, Int, UInt64) -> BlockQuantizedMatrix)] {
        [("Q4_0", { ggmlMatrix(.q4_0, rows: $0, columns: $1, seed: $2) }),
         ("Q4_1", { ggmlMatrix(.q4_1, rows: $0, columns: $1, seed: $2) }),
         ("Q8_0", { ggmlMatrix(.q8_0, rows: $0, columns: $1, seed: $2) }),
         ("INT4 g64", { gridMatrix(bits: 4, group: 64, symmetric: false, rows: $0, columns: $1, seed: $2) }),
         ("INT4 g32 sym", { gridMatrix(bits: 4, group: 32, symmetric: true, rows: $0, columns: $1, seed: $2) }),
         ("INT8 g32", { gridMatrix(bits: 8, group: 32, symmetric: false, rows: $0, columns: $1, seed: $2) }),
         ("INT8 g32 sym", { gridMatrix(bits: 8, group: 32, symmetric: true, rows: $0, columns: $1, seed: $2) })]
    }

    /// The definition in Float64: dequantized weights times dequantized activations.
    static func reference(_ w: BlockQuantizedMatrix, _ x: Tensor, rows: Int, inFeatures: Int, outFeatures: Int) -> [Double] {
        let acts = QuantizedActivations(x.data, rows: rows, columns: inFeatures)
        let weights = w.dequantized()
        var out = [Double](repeating: 0, count: rows * outFeatures)
        for t in 0..<rows {
            for n in 0..<outFeatures {
                var sum = 0.0
                for c in 0..<inFeatures {
                    let a = Double(acts.codes[t * acts.blocks * 32 + c]) * Double(acts.scales[t * acts.blocks + c / 32])
                    sum += a * Double(weights[n * w.columns + c])
                }
                out[t * outFeatures + n] = sum
            }
        }
        return out
    }

    func testEveryPathMatchesTheReferenceOnEveryFormat() {
        XCTAssertTrue(KernelPath.supported.contains(.avx2), "every machine here has AVX2 + FMA")
        // Shapes that leave partial tiles: rows not a multiple of 4, odd block counts (AVX-512's
        // tails), an input narrower than the weight (elastic width), one row (decode) and a few.
        let shapes: [(rows: Int, out: Int, columns: Int, inFeatures: Int)] =
            [(1, 8, 64, 64), (1, 7, 160, 160), (3, 13, 96, 96), (5, 12, 224, 200), (9, 6, 256, 256), (17, 9, 32, 32),
             // Sixteen-block groups (the matrix-vector kernels' main loop) with every kind of remainder.
             (1, 5, 576, 576), (1, 6, 1536, 1500), (2, 5, 544, 544), (6, 4, 1024, 1024), (5, 7, 576, 576), (9, 5, 608, 600), (4, 9, 1600, 1600),
             // SmolLM2's own widths under a prefill of a sentence.
             (21, 8, 576, 576), (21, 8, 1536, 1536), (8, 5, 1536, 1536),
             // Enough token rows for the AVX2 path's SGEMM on dequantized panels: one panel, and
             // two (256 rows and a part) of an elastic width.
             (48, 7, 576, 576), (49, 260, 96, 64)]
        for (name, make) in Self.formats {
            for (i, s) in shapes.enumerated() {
                let w = make(s.out + 3, s.columns, UInt64(100 + i))
                let x = GradientCheck.random([s.rows, s.inFeatures], seed: UInt64(7 + i))
                let expected = Self.reference(w, x, rows: s.rows, inFeatures: s.inFeatures, outFeatures: s.out)
                let scale = expected.map(abs).max()! + 1e-3
                for path in KernelPath.supported {
                    let out = Tensor(zeros: [s.rows, s.out])
                    out.fill(0.5)
                    quantizedLinear(out: out.data, input: x.data, weight: w, rows: s.rows, inFeatures: s.inFeatures, outFeatures: s.out,
                                    accumulate: true, scale: 2, path: path)
                    var worst = 0.0
                    for k in 0..<expected.count { worst = max(worst, abs(Double(out[k]) - 0.5 - 2 * expected[k]) / scale) }
                    XCTAssertLessThan(worst, 1e-5, "\(name) on \(path.rawValue), \(s)")
                }
            }
        }
    }

    func testSerialAndThreadedSplitsAgree() {
        Self.assertSerialAndThreadedSplitsAgree(Self.ggmlMatrix(.q4_0, rows: 256, columns: 512, seed: 3), tokens: 6)
    }

    /// One thread and all of them give the same product (to float rounding: the splits differ).
    static func assertSerialAndThreadedSplitsAgree(_ w: BlockQuantizedMatrix, tokens: Int, file: StaticString = #filePath, line: UInt = #line) {
        let x = GradientCheck.random([tokens, w.columns], seed: 4)
        let serial = Tensor(zeros: [tokens, w.rows]), threaded = Tensor(zeros: [tokens, w.rows])
        let saved = quantizedLinearSerialWork
        defer { quantizedLinearSerialWork = saved }
        quantizedLinearSerialWork = .max
        quantizedLinear(out: serial.data, input: x.data, weight: w, rows: tokens, inFeatures: w.columns, outFeatures: w.rows)
        quantizedLinearSerialWork = 0
        quantizedLinear(out: threaded.data, input: x.data, weight: w, rows: tokens, inFeatures: w.columns, outFeatures: w.rows)
        for i in 0..<serial.count { XCTAssertEqual(serial[i], threaded[i], accuracy: 1e-5 * max(1, abs(serial[i])), file: file, line: line) }
    }

    func testActivationQuantizationRoundsWithinHalfAStep() {
        let x = GradientCheck.random([3, 70], seed: 9, std: 3)
        x[5] = 0
        let acts = QuantizedActivations(x.data, rows: 3, columns: 70)
        XCTAssertEqual(acts.blocks, 3)
        for r in 0..<3 {
            for c in 0..<96 {
                let code = acts.codes[r * 96 + c], d = acts.scales[r * 3 + c / 32]
                XCTAssertTrue((-127...127).contains(code))
                if c >= 70 { XCTAssertEqual(code, 0, "padding is zero"); continue }
                XCTAssertLessThanOrEqual(abs(Float(code) * d - x[r * 70 + c]), d / 2 * 1.0001)
            }
            for b in 0..<3 {
                let sum = (0..<32).reduce(Float(0)) { $0 + Float(acts.codes[r * 96 + b * 32 + $1]) }
                XCTAssertEqual(acts.sums[r * 3 + b], sum * acts.scales[r * 3 + b], accuracy: 1e-4)
            }
        }
    }

    func testTheQuantizedProductIsCloseToTheFloatProduct() {
        // What the 8-bit activations cost: a few tenths of a percent of the output's size.
        let w = Self.ggmlMatrix(.q8_0, rows: 64, columns: 256, seed: 11)
        let x = GradientCheck.random([4, 256], seed: 12)
        let dense = w.dequantized()
        let exact = Tensor(zeros: [4, 64]), quantized = Tensor(zeros: [4, 64])
        linearForward(out: exact.data, input: x.data, weight: dense.data, rows: 4, inFeatures: 256, outFeatures: 64)
        quantizedLinear(out: quantized.data, input: x.data, weight: w, rows: 4, inFeatures: 256, outFeatures: 64)
        let size = exact.array.map(abs).max()!
        for i in 0..<exact.count { XCTAssertEqual(quantized[i], exact[i], accuracy: 0.02 * size) }
    }

    func testForcingANarrowerPathIsScopedAndAWiderOneTheCPULacksIsNotOffered() {
        let before = KernelPath.current
        KernelPath.with(.scalar) { XCTAssertEqual(KernelPath.current, .scalar) }
        XCTAssertEqual(KernelPath.current, before)
        XCTAssertEqual(KernelPath.supported.contains(.avx512vnni), KernelPath.cpuFlags.contains("avx512_vnni") && KernelPath.cpuFlags.contains("avx512bw"))
    }

    /// Interleaving (the AVX-512 layout) changes where codes and scales are, never what they
    /// are: every code, scale and additive term reads back the same, the GGUF blocks export byte
    /// for byte, and every path computes the same products from it as from the rows, including
    /// the narrower paths that unpack a group at a time and a partial last group.
    func testInterleavedRowsReadAndComputeAsTheRowsDid() {
        let formats: [(String, (Int, Int, UInt64) -> BlockQuantizedMatrix)] =
            [("Q4_0", { Self.ggmlMatrix(.q4_0, rows: $0, columns: $1, seed: $2) }),
             ("Q4_1", { Self.ggmlMatrix(.q4_1, rows: $0, columns: $1, seed: $2) }),
             ("Q8_0", { Self.ggmlMatrix(.q8_0, rows: $0, columns: $1, seed: $2) }),
             ("INT4 g32 sym", { Self.gridMatrix(bits: 4, group: 32, symmetric: true, rows: $0, columns: $1, seed: $2) }),
             ("INT8 g32 sym", { Self.gridMatrix(bits: 8, group: 32, symmetric: true, rows: $0, columns: $1, seed: $2) })]
        // (tokens, outputs, rows, columns, inputs): a whole matrix, a partial last group, a
        // narrower input (elastic width), 5 tokens (a tile of 4 and one), SmolLM2's width.
        // Every path runs on them: AVX-512 VNNI and AVX2 on interleaved kernels of their own, the
        // scalar reference unpacking a group at a time.
        let shapes: [(tokens: Int, out: Int, rows: Int, columns: Int, inFeatures: Int)] =
            [(1, 32, 32, 64, 64), (3, 29, 32, 96, 96), (5, 48, 48, 576, 544), (4, 16, 16, 1536, 1536), (1, 40, 48, 576, 576), (6, 17, 32, 32, 32),
             // Many tokens: twelve tiles of 4 (an interleaved matrix never takes AVX2's SGEMM panels).
             (48, 40, 48, 96, 64)]
        for (name, make) in formats {
            for (i, s) in shapes.enumerated() {
                let rows = make(s.rows, s.columns, UInt64(200 + i)), interleaved = make(s.rows, s.columns, UInt64(200 + i))
                XCTAssertTrue(interleaved.canInterleave, name)
                interleaved.interleaveRows()
                XCTAssertEqual(interleaved.interleavedRows, s.rows, name)
                var codesDiffer = 0, scalesDiffer = 0
                for r in 0..<s.rows {
                    for c in 0..<s.columns where rows.code(r, c) != interleaved.code(r, c) { codesDiffer += 1 }
                    for b in 0..<rows.blocksPerRow where rows.scale(row: r, block: b) != interleaved.scale(row: r, block: b)
                        || rows.additive(row: r, block: b) != interleaved.additive(row: r, block: b) { scalesDiffer += 1 }
                }
                XCTAssertEqual(codesDiffer, 0, "\(name) \(s): codes read back")
                XCTAssertEqual(scalesDiffer, 0, "\(name) \(s): scales and offsets read back")
                XCTAssertEqual(rows.dequantized().array, interleaved.dequantized().array, "\(name) \(s)")
                if let a = rows.ggmlBlocks(rows: s.out), let b = interleaved.ggmlBlocks(rows: s.out) {
                    XCTAssertEqual(a.type, b.type)
                    XCTAssertTrue(a.bytes == b.bytes, "\(name) \(s): GGUF blocks byte for byte")
                }
                let x = GradientCheck.random([s.tokens, s.inFeatures], seed: UInt64(30 + i))
                let expected = Self.reference(rows, x, rows: s.tokens, inFeatures: s.inFeatures, outFeatures: s.out)
                let scale = expected.map(abs).max()! + 1e-3
                for path in KernelPath.supported {
                    let out = Tensor(zeros: [s.tokens, s.out])
                    out.fill(0.5)
                    quantizedLinear(out: out.data, input: x.data, weight: interleaved, rows: s.tokens, inFeatures: s.inFeatures,
                                    outFeatures: s.out, accumulate: true, scale: 2, path: path)
                    var worst = 0.0
                    for k in 0..<expected.count { worst = max(worst, abs(Double(out[k]) - 0.5 - 2 * expected[k]) / scale) }
                    XCTAssertLessThan(worst, 1e-5, "interleaved \(name) on \(path.rawValue), \(s)")
                }
            }
        }
        // Per-block zero points stay in rows, and only whole groups of 16 rows interleave.
        let zeros = Self.gridMatrix(bits: 4, group: 32, symmetric: false, rows: 32, columns: 64, seed: 1)
        let odd = Self.ggmlMatrix(.q8_0, rows: 20, columns: 64, seed: 1)
        XCTAssertFalse(zeros.canInterleave)
        XCTAssertFalse(odd.canInterleave)
        zeros.interleaveRows(); odd.interleaveRows()
        XCTAssertEqual(zeros.interleavedRows + odd.interleavedRows, 0)
    }

    func testSerialAndThreadedSplitsAgreeOnInterleavedRows() {
        let w = Self.ggmlMatrix(.q8_0, rows: 256, columns: 512, seed: 5)
        w.interleaveRows()
        Self.assertSerialAndThreadedSplitsAgree(w, tokens: 5)
    }
}
