import Foundation
import QuantizedKernelsAVX512

// The product of Float32 activations with a block-quantized weight: y = x · Wᵀ, the quantized
// twin of `linearForward`. The activations are quantized to 8 bits per block (QuantizedActivations);
// then each output is
//
//     y_t,n = Σ_b [ d_n,b · d_t,b · Σ_j q_n,b,j · a_t,b,j  +  m_n,b · S_t,b ]
//
// from an integer kernel on the path KernelPath chose, which also adds the additive terms (zero
// points, Q4_1 minimums) in vectors: for an interleaved matrix (BlockQuantizedMatrix.interleaveRows)
// InterleavedBlockKernelsAVX512 or InterleavedBlockKernelsAVX2, 16 rows a call; for a matrix left in
// rows (per-block zero points) Int4/Int8BlockKernels, 4 rows a call, and on AVX2 from 48 token rows
// SGEMM on dequantized panels of the weight (`panelProduct`: the same values, summed in another
// order). The scalar reference unpacks interleaved groups into rows. Threads split the weight rows,
// by groups or tiles; a product too small to pay for a second thread runs on one.

/// Multiply-accumulates below which a product stays on one thread (a few microseconds of work:
/// waking a second core costs about as much).
public var quantizedLinearSerialWork = 1 << 16

/// Token rows from which the AVX2 path computes a product through SGEMM on dequantized panels of
/// a matrix left in rows (see `panelProduct`); 0 turns the route off. Measured on SmolLM2 while its
/// matrices were still read in rows on AVX2 (OpenBLAS's Haswell kernels, 2 threads): prefill 32
/// tokens 391 tokens/s on the row kernels against 319 through panels, 48: 371 against 391, 128: 398
/// against 575.
public var quantizedLinearPanelRows = 48

/// out = scale · input · Wᵀ (+ out when `accumulate`), for the first `outFeatures` rows and
/// `inFeatures` columns of W (an elastic width reads a narrower part in place).
public func quantizedLinear(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight w: BlockQuantizedMatrix,
                            rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false, scale: Float = 1,
                            path: KernelPath = KernelPath.current) {
    precondition(inFeatures <= w.columns && outFeatures <= w.rows, "a \(outFeatures) × \(inFeatures) product of a \(w.rows) × \(w.columns) weight")
    guard rows > 0, outFeatures > 0 else { return }
    let acts = QuantizedActivations(input, rows: rows, columns: inFeatures)
    if path == .avx2 && quantizedLinearPanelRows > 0 && rows >= quantizedLinearPanelRows && w.interleavedRows == 0 {
        panelProduct(out: out, acts: acts, weight: w, rows: rows, inFeatures: inFeatures, outFeatures: outFeatures,
                     accumulate: accumulate, scale: scale)
        return
    }
    let blocks = acts.blocks
    let tileRows = path == .avx512vnni ? 4 : 2
    var minimums: UnsafePointer<Float16>?, zeroPoints: UnsafePointer<Int8>?, zeroPoint = 0
    switch w.offset {
    case .minimums(let m): minimums = UnsafePointer(m)
    case .zeroPoints(let z): zeroPoints = UnsafePointer(z)
    case .zeroPoint(let z): zeroPoint = z
    }
    // Everything the tiles read, as plain values: no class access (and its reference counting) per tile.
    let (codes, codeBytesPerRow, scales, blocksPerRow, bits) = (UnsafeRawPointer(w.codes), w.codeBytesPerRow, UnsafePointer(w.scales), w.blocksPerRow, w.bits)
    let (actCodes, actScales, actSums) = (UnsafePointer(acts.codes), UnsafePointer(acts.scales), UnsafePointer(acts.sums))
    // An interleaved matrix goes in units of 16 rows (one group); rows otherwise, in tiles of 4.
    let interleaved = w.interleavedRows > 0
    let unitRows = interleaved ? BlockQuantizedMatrix.interleaveGroup : 4
    let units = (outFeatures + unitRows - 1) / unitRows

    /// Writes `count` outputs for `tokens` activation rows from a kernel's `sums`: output k of
    /// token t at sums[k · tokens + t] (the row kernels), or at sums[16 t + k] (`tokenMajor`, the
    /// interleaved ones).
    @inline(__always) func write(_ sums: UnsafePointer<Float>, firstOutput n0: Int, outputs count: Int, token t0: Int, tokens: Int, tokenMajor: Bool) {
        for t in 0..<tokens {
            let row = out + (t0 + t) * outFeatures + n0
            for k in 0..<count {
                let y = scale * (tokenMajor ? sums[t * 16 + k] : sums[k * tokens + t])
                row[k] = accumulate ? row[k] + y : y
            }
        }
    }

    /// Rows n0 ..< n0 + weightRows in the row layout (at `rowCodes`, `rowScales`), in tiles of 4,
    /// on the path chosen; their outputs go to out[…, n0 + k].
    func rowTiles(_ rowCodes: UnsafeRawPointer, _ rowScales: UnsafePointer<Float16>, _ rowMinimums: UnsafePointer<Float16>?,
                  firstOutput n0: Int, outputs: Int, sums: UnsafeMutablePointer<Float>) {
        for k0 in stride(from: 0, to: outputs, by: 4) {
            let weightRows = min(4, outputs - k0)
            var t0 = 0
            while t0 < rows {
                let actRows = min(rows - t0, rows - t0 == 1 ? 1 : tileRows)
                let o = TileOperands(codes: rowCodes + k0 * codeBytesPerRow, codeStride: codeBytesPerRow,
                                     scales: rowScales + k0 * blocksPerRow, scaleStride: blocksPerRow, weightRows: weightRows,
                                     acts: actCodes + t0 * blocks * 32, actStride: blocks * 32,
                                     actScales: actScales + t0 * blocks, actScaleStride: blocks, actRows: actRows,
                                     actSums: actSums + t0 * blocks, minimums: rowMinimums.map { $0 + k0 * blocksPerRow },
                                     zeroPoints: zeroPoints.map { $0 + (n0 + k0) * blocksPerRow }, zeroPoint: zeroPoint,
                                     blocks: blocks, out: sums)
                switch (bits, path, actRows) {
                case (4, .scalar, _): Int4BlockKernels.scalar(o, actRows: actRows)
                case (4, .avx2, 1): Int4BlockKernels.avx2Row(o)
                case (4, .avx2, _): Int4BlockKernels.avx2Tile(o)
                case (4, .avx512vnni, 1): Int4BlockKernelsAVX512.row(o)
                case (4, .avx512vnni, _): Int4BlockKernelsAVX512.tile(o)
                case (_, .scalar, _): Int8BlockKernels.scalar(o, actRows: actRows)
                case (_, .avx2, 1): Int8BlockKernels.avx2Row(o)
                case (_, .avx2, _): Int8BlockKernels.avx2Tile(o)
                case (_, .avx512vnni, 1): Int8BlockKernelsAVX512.row(o)
                case (_, .avx512vnni, _): Int8BlockKernelsAVX512.tile(o)
                }
                write(sums, firstOutput: n0 + k0, outputs: weightRows, token: t0, tokens: actRows, tokenMajor: false)
                t0 += actRows
            }
        }
    }

    /// Group g of an interleaved matrix on the AVX-512 VNNI or AVX2 kernels: 16 rows × up to 4
    /// tokens a call.
    func interleavedGroup(_ g: Int, outputs: Int, sums: UnsafeMutablePointer<Float>) {
        let n0 = g * 16
        var t0 = 0
        while t0 < rows {
            let actRows = min(rows - t0, 4)
            let o = TileOperands(codes: codes + n0 * codeBytesPerRow, codeStride: codeBytesPerRow,
                                 scales: scales + n0 * blocksPerRow, scaleStride: blocksPerRow, weightRows: 16,
                                 acts: actCodes + t0 * blocks * 32, actStride: blocks * 32,
                                 actScales: actScales + t0 * blocks, actScaleStride: blocks, actRows: actRows,
                                 actSums: actSums + t0 * blocks, minimums: minimums.map { $0 + n0 * blocksPerRow }, zeroPoints: nil, zeroPoint: zeroPoint,
                                 blocks: blocks, out: sums)
            switch (path == .avx512vnni, bits, actRows) {
            case (true, 4, 1): InterleavedBlockKernelsAVX512.int4Row(o)
            case (true, 4, _): InterleavedBlockKernelsAVX512.int4Tile(o)
            case (true, _, 1): InterleavedBlockKernelsAVX512.int8Row(o)
            case (true, _, _): InterleavedBlockKernelsAVX512.int8Tile(o)
            case (false, 4, 1): InterleavedBlockKernelsAVX2.int4Row(o)
            case (false, 4, _): InterleavedBlockKernelsAVX2.int4Tile(o)
            case (false, _, 1): InterleavedBlockKernelsAVX2.int8Row(o)
            case (false, _, _): InterleavedBlockKernelsAVX2.int8Tile(o)
            }
            write(sums, firstOutput: n0, outputs: outputs, token: t0, tokens: actRows, tokenMajor: true)
            t0 += actRows
        }
    }

    let run = { (range: Range<Int>) in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 64) { scratch in
            let sums = scratch.baseAddress!
            if !interleaved {
                for tile in range {
                    rowTiles(codes + tile * 4 * codeBytesPerRow, scales + tile * 4 * blocksPerRow, minimums.map { $0 + tile * 4 * blocksPerRow },
                             firstOutput: tile * 4, outputs: min(4, outFeatures - tile * 4), sums: sums)
                }
            } else if path == .avx512vnni || (path == .avx2 && (bits == 4 || minimums == nil)) {
                for g in range { interleavedGroup(g, outputs: min(16, outFeatures - g * 16), sums: sums) }
            } else {
                // The scalar reference on an interleaved matrix (or an 8-bit one with minimums, which
                // no format has): each group unpacked back into rows first.
                let groupCodes = UnsafeMutableRawPointer.allocate(byteCount: 16 * codeBytesPerRow, alignment: 64)
                let groupScales = UnsafeMutablePointer<Float16>.allocate(capacity: 32 * blocksPerRow)
                defer { groupCodes.deallocate(); groupScales.deallocate() }
                let groupMinimums = minimums == nil ? nil : groupScales + 16 * blocksPerRow
                for g in range {
                    w.unpackGroup(g, codes: groupCodes, scales: groupScales, minimums: groupMinimums)
                    rowTiles(groupCodes, groupScales, groupMinimums.map { UnsafePointer($0) },
                             firstOutput: g * 16, outputs: min(16, outFeatures - g * 16), sums: sums)
                }
            }
        }
    }
    withExtendedLifetime((w, acts)) {
        if rows * outFeatures * inFeatures < quantizedLinearSerialWork {
            run(0..<units)
        } else {
            // Contiguous shares of the units, one per core.
            let pool = SpinningWorkers.shared
            let share = (units + pool.workers) / (pool.workers + 1)
            pool.run { part in
                let start = min(units, part * share)
                run(start..<min(units, start + share))
            }
        }
    }
}

/// The same product for many token rows of a matrix left in rows, on CPUs without VNNI: the 8-bit
/// activations dequantized once, the weight dequantized 256 rows at a time, each panel multiplied
/// by SGEMM. The row kernels spend a multiply, a widening and horizontal sums per block and row; an
/// FMA does 8 multiply-adds in one, so from some 48 token rows on (where dequantizing a weight once
/// is paid back) Float32 products of the same values are faster: prefill 512 on SmolLM2, in rows,
/// went from about 360 to 600+ tokens/s on the AVX2 path. The values multiplied are the
/// same as the integer kernels' (y = Σ_b d_w·d_a·Σ_j q·a + m·S), only summed in another order.
func panelProduct(out: UnsafeMutablePointer<Float>, acts: QuantizedActivations, weight w: BlockQuantizedMatrix,
                  rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool, scale: Float) {
    let panelRows = 256
    let x = UnsafeMutablePointer<Float>.allocate(capacity: rows * inFeatures)
    let panel = UnsafeMutablePointer<Float>.allocate(capacity: min(panelRows, outFeatures) * inFeatures)
    defer { x.deallocate(); panel.deallocate() }
    let blocks = acts.blocks
    withExtendedLifetime(acts) {
        parallelChunks(rows, minimumChunk: 8) { range in
            for t in range {
                for c in 0..<inFeatures { x[t * inFeatures + c] = Float(acts.codes[t * blocks * 32 + c]) * acts.scales[t * blocks + c / 32] }
            }
        }
    }
    withExtendedLifetime(w) {
        for n0 in stride(from: 0, to: outFeatures, by: panelRows) {
            let count = min(panelRows, outFeatures - n0)
            parallelChunks(count, minimumChunk: 32) { range in
                for r in range { w.dequantizeRow(n0 + r, into: panel + r * inFeatures, count: inFeatures) }
            }
            gemm(transposeA: false, transposeB: true, m: rows, n: count, k: inFeatures, alpha: scale, a: x, lda: inFeatures,
                 b: panel, ldb: inFeatures, beta: accumulate ? 1 : 0, c: out + n0, ldc: outFeatures)
        }
    }
}
