import Foundation
import QuantizedKernelsAVX512

// The product of Float32 activations with a block-quantized weight: y = x · Wᵀ, the quantized
// twin of `linearForward`. The activations are quantized to 8 bits per block (QuantizedActivations);
// then each output is
//
//     y_t,n = Σ_b [ d_n,b · d_t,b · Σ_j q_n,b,j · a_t,b,j  +  m_n,b · S_t,b ]
//
// from an integer kernel (Int4/Int8BlockKernels, on the path KernelPath chose) that also adds
// the additive terms (zero points, Q4_1 minimums) in vectors. Threads split the weight rows, in
// tiles of 4; a product too small to pay for a second thread runs on one.

/// Multiply-accumulates below which a product stays on one thread (a few microseconds of work:
/// waking a second core costs about as much).
public var quantizedLinearSerialWork = 1 << 16

/// out = scale · input · Wᵀ (+ out when `accumulate`), for the first `outFeatures` rows and
/// `inFeatures` columns of W (an elastic width reads a narrower part in place).
public func quantizedLinear(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight w: BlockQuantizedMatrix,
                            rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false, scale: Float = 1,
                            path: KernelPath = KernelPath.current) {
    precondition(inFeatures <= w.columns && outFeatures <= w.rows, "a \(outFeatures) × \(inFeatures) product of a \(w.rows) × \(w.columns) weight")
    guard rows > 0, outFeatures > 0 else { return }
    let acts = QuantizedActivations(input, rows: rows, columns: inFeatures)
    let blocks = acts.blocks
    let tileRows = path == .avx512vnni ? 4 : 2
    let tiles = (outFeatures + 3) / 4
    var minimums: UnsafePointer<Float16>?, zeroPoints: UnsafePointer<Int8>?, zeroPoint = 0
    switch w.offset {
    case .minimums(let m): minimums = UnsafePointer(m)
    case .zeroPoints(let z): zeroPoints = UnsafePointer(z)
    case .zeroPoint(let z): zeroPoint = z
    }
    // Everything the tiles read, as plain values: no class access (and its reference counting) per tile.
    let (codes, codeBytesPerRow, scales, blocksPerRow, bits) = (UnsafeRawPointer(w.codes), w.codeBytesPerRow, UnsafePointer(w.scales), w.blocksPerRow, w.bits)
    let (actCodes, actScales, actSums) = (UnsafePointer(acts.codes), UnsafePointer(acts.scales), UnsafePointer(acts.sums))
    let run = { (range: Range<Int>) in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 16) { scratch in
            let sums = scratch.baseAddress!
            for tile in range {
                let n0 = tile * 4, weightRows = min(4, outFeatures - n0)
                var t0 = 0
                while t0 < rows {
                    let actRows = min(rows - t0, rows - t0 == 1 ? 1 : tileRows)
                    let o = TileOperands(codes: codes + n0 * codeBytesPerRow, codeStride: codeBytesPerRow,
                                         scales: scales + n0 * blocksPerRow, scaleStride: blocksPerRow, weightRows: weightRows,
                                         acts: actCodes + t0 * blocks * 32, actStride: blocks * 32,
                                         actScales: actScales + t0 * blocks, actScaleStride: blocks, actRows: actRows,
                                         actSums: actSums + t0 * blocks, minimums: minimums.map { $0 + n0 * blocksPerRow },
                                         zeroPoints: zeroPoints.map { $0 + n0 * blocksPerRow }, zeroPoint: zeroPoint,
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
                    for t in 0..<actRows {
                        let row = out + (t0 + t) * outFeatures + n0
                        for k in 0..<weightRows {
                            let y = scale * sums[k * actRows + t]
                            row[k] = accumulate ? row[k] + y : y
                        }
                    }
                    t0 += actRows
                }
            }
        }
    }
    withExtendedLifetime((w, acts)) {
        if rows * outFeatures * inFeatures < quantizedLinearSerialWork {
            run(0..<tiles)
        } else {
            // Contiguous shares of the tiles, one per core.
            let pool = SpinningWorkers.shared
            let share = (tiles + pool.workers) / (pool.workers + 1)
            pool.run { part in
                let start = min(tiles, part * share)
                run(start..<min(tiles, start + share))
            }
        }
    }
}
