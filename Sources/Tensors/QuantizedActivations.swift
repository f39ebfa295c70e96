import Foundation

/// Rows of Float32 activations quantized to 8 bits per block of 32, as llama.cpp quantizes the
/// input of its integer products (Q8_0):
///
///     d = max_j |x_j| / 127,   a_j = round(x_j / d) ∈ −127…127,   S = d · Σ_j a_j
///
/// S is what a block's additive weight term multiplies (Σ_j m·x_j ≈ m·S). Columns past the
/// input's width are zero, so a narrower input (an elastic MLP width) pads its last block.
public final class QuantizedActivations {
    public let rows: Int
    public let blocks: Int
    public let codes: UnsafeMutablePointer<Int8>     // (rows, blocks · 32)
    public let scales: UnsafeMutablePointer<Float>   // (rows, blocks)
    public let sums: UnsafeMutablePointer<Float>     // (rows, blocks)

    /// Quantizes `rows` rows of `columns` floats (row stride `columns`) into ⌈columns / 32⌉ blocks
    /// (at least `minimumBlocks`).
    public init(_ input: UnsafePointer<Float>, rows: Int, columns: Int, minimumBlocks: Int = 0) {
        self.rows = rows
        blocks = max(minimumBlocks, (columns + 31) / 32)
        codes = .allocate(capacity: rows * blocks * 32)
        scales = .allocate(capacity: rows * blocks)
        sums = .allocate(capacity: rows * blocks)
        let (codes, scales, sums, blocks) = (self.codes, self.scales, self.sums, self.blocks)
        parallelChunks(rows, minimumChunk: max(1, 65536 / max(1, columns))) { range in
            for r in range {
                for b in 0..<blocks {
                    let x = input + r * columns + b * 32
                    let n = max(0, min(32, columns - b * 32))
                    var v = SIMD32<Float>(repeating: 0)
                    if n == 32 {
                        v = UnsafeRawPointer(x).loadUnaligned(as: SIMD32<Float>.self)
                    } else {
                        for j in 0..<n { v[j] = x[j] }
                    }
                    let amax = max(v.max(), -v.min())
                    let d = amax / 127
                    let q = amax == 0 ? SIMD32<Float>(repeating: 0) : (v * (127 / amax)).rounded(.toNearestOrEven)
                    let ints = SIMD32<Int32>(q, rounding: .towardZero)
                    UnsafeMutableRawPointer(codes + (r * blocks + b) * 32).storeBytes(of: SIMD32<Int8>(truncatingIfNeeded: ints), as: SIMD32<Int8>.self)
                    scales[r * blocks + b] = d
                    sums[r * blocks + b] = d * Float(ints.wrappedSum())
                }
            }
        }
    }

    deinit {
        codes.deallocate()
        scales.deallocate()
        sums.deallocate()
    }
}
