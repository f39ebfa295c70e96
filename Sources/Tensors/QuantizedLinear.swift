import Foundation
import QuantizedKernelsAVX512

// The product of Float32 activations with a block-quantized weight: y = x · Wᵀ, the quantized
// twin of `linearForward`. The activations are quantized to 8 bits per block (QuantizedActivations);
// then each output is
//
//     y_t,n = Σ_b [ d_n,b · d_t,b · Σ_j q_n,b,j · a_t,b,j ]  +  Σ_b m_n,b · S_t,b
//
// the first sum from an integer kernel (Int4/Int8BlockKernels, on the path KernelPath chose), the
// second (zero points, Q4_1 minimums) here, as a short float dot product per output.
// Threads split the weight rows, in tiles of 4; a product too small to pay for a second thread
// runs on one.

/// Multiply-accumulates below which a product stays on one thread (a few microseconds of work:
/// waking a second core costs about as much).
public var quantizedLinearSerialWork = 1 << 18

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
    let bias = (w.bits == 8 && path == .avx512vnni) ? Int8BlockKernelsAVX512.codeBias : 0
    let work = rows * outFeatures * inFeatures
    let tiles = (outFeatures + 3) / 4
    let kernel: (TileOperands, Int) -> Void = { o, actRows in
        switch (w.bits, path, actRows) {
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
    }
    let run = { (range: Range<Int>) in
        withUnsafeTemporaryAllocation(of: Float.self, capacity: 4 * blocks + 16) { scratch in
            let additive = scratch.baseAddress!, sums = additive + 4 * blocks
            for tile in range {
                let n0 = tile * 4, weightRows = min(4, outFeatures - n0)
                // m_n,b for the tile's rows (less the VNNI path's code bias, see Int8BlockKernelsAVX512).
                for k in 0..<weightRows {
                    for b in 0..<blocks {
                        additive[k * blocks + b] = w.additive(row: n0 + k, block: b) - Float(bias) * Float(w.scales[(n0 + k) * w.blocksPerRow + b])
                    }
                }
                var t0 = 0
                while t0 < rows {
                    let actRows = min(rows - t0, rows - t0 == 1 ? 1 : tileRows)
                    let o = TileOperands(codes: w.codes + n0 * w.codeBytesPerRow, codeStride: w.codeBytesPerRow,
                                         scales: w.scales + n0 * w.blocksPerRow, scaleStride: w.blocksPerRow, weightRows: weightRows,
                                         acts: acts.codes + t0 * blocks * 32, actStride: blocks * 32,
                                         actScales: acts.scales + t0 * blocks, actScaleStride: blocks, actRows: actRows,
                                         blocks: blocks, out: sums)
                    kernel(o, actRows)
                    for t in 0..<actRows {
                        let s = acts.sums + (t0 + t) * blocks
                        for k in 0..<weightRows {
                            let y = scale * (sums[k * actRows + t] + dot(additive + k * blocks, s, blocks))
                            let o = out + (t0 + t) * outFeatures + n0 + k
                            o.pointee = accumulate ? o.pointee + y : y
                        }
                    }
                    t0 += actRows
                }
            }
        }
    }
    if work < quantizedLinearSerialWork {
        run(0..<tiles)
    } else {
        parallelChunks(tiles, run)
    }
}

/// Σ_i a_i · b_i over `count` floats, eight at a time.
@inline(__always) private func dot(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ count: Int) -> Float {
    var acc = SIMD8<Float>(repeating: 0)
    var i = 0
    while i + 8 <= count {
        acc.addProduct(UnsafeRawPointer(a + i).loadUnaligned(as: SIMD8<Float>.self), UnsafeRawPointer(b + i).loadUnaligned(as: SIMD8<Float>.self))
        i += 8
    }
    var sum = acc.sum()
    while i < count { sum += a[i] * b[i]; i += 1 }
    return sum
}
