import Foundation
import _Builtin_intrinsics.intel

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
                    let q = codes + (r * blocks + b) * 32
                    if n == 32 {
                        (scales[r * blocks + b], sums[r * blocks + b]) = Self.quantizeBlock(x, into: q)
                    } else {
                        // The last, partial block: padded with zeros.
                        var padded = [Float](repeating: 0, count: 32)
                        for j in 0..<n { padded[j] = x[j] }
                        (scales[r * blocks + b], sums[r * blocks + b]) = padded.withUnsafeBufferPointer { Self.quantizeBlock($0.baseAddress!, into: q) }
                    }
                }
            }
        }
    }

    /// One block of 32: codes into `q`; returns (d, S). vcvtps2dq rounds half to even.
    @inline(__always) static func quantizeBlock(_ x: UnsafePointer<Float>, into q: UnsafeMutablePointer<Int8>) -> (Float, Float) {
        let raw = UnsafeRawPointer(x)
        let v0 = raw.loadUnaligned(as: SIMD8<Float>.self), v1 = raw.loadUnaligned(fromByteOffset: 32, as: SIMD8<Float>.self)
        let v2 = raw.loadUnaligned(fromByteOffset: 64, as: SIMD8<Float>.self), v3 = raw.loadUnaligned(fromByteOffset: 96, as: SIMD8<Float>.self)
        let sign = _mm256_set1_ps(-0.0)
        @inline(__always) func magnitude(_ v: __m256) -> __m256 { _mm256_andnot_ps(sign, v) }
        let amax = _mm256_max_ps(_mm256_max_ps(magnitude(v0), magnitude(v1)), _mm256_max_ps(magnitude(v2), magnitude(v3))).max()
        guard amax > 0 else {
            UnsafeMutableRawPointer(q).storeBytes(of: SIMD32<Int8>(repeating: 0), as: SIMD32<Int8>.self)
            return (0, 0)
        }
        let inverse = _mm256_set1_ps(127 / amax)
        let i0 = _mm256_cvtps_epi32(_mm256_mul_ps(v0, inverse)), i1 = _mm256_cvtps_epi32(_mm256_mul_ps(v1, inverse))
        let i2 = _mm256_cvtps_epi32(_mm256_mul_ps(v2, inverse)), i3 = _mm256_cvtps_epi32(_mm256_mul_ps(v3, inverse))
        let total = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3))
        // Pack 32 → 16 → 8 bits; the packs interleave 128-bit lanes, which the permute undoes.
        let packed = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3))
        let ordered = _mm256_permutevar8x32_epi32(packed, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7))
        _mm256_storeu_si256(UnsafeMutableRawPointer(q).assumingMemoryBound(to: __m256i.self), ordered)
        let d = amax / 127
        return (d, d * Float(unsafeBitCast(total, to: SIMD8<Int32>.self).wrappedSum()))
    }

    deinit {
        codes.deallocate()
        scales.deallocate()
        sums.deallocate()
    }
}
