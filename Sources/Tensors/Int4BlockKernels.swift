import _Builtin_intrinsics.intel
import CPrefetch
import QuantizedKernelsAVX512

// Dot products of 4-bit weight blocks with 8-bit activation blocks (Q4_0, Q4_1, INT4 grids).
//
// A block holds 32 codes q ∈ 0…15 in 16 bytes (q_j, j < 16, in the low nibble of byte j; q_{j+16}
// in its high nibble). Against an activation block a ∈ −127…127 (with scale d_a):
//
//     block product = d_w · d_a · Σ_j q_j · a_j  +  m_w · S_a     (m: −z·d or the Q4_1 minimum)
//
// The integer sum is exact on every path: |q·a| ≤ 15·127, and vpmaddubsw adds pairs into 16 bits
// (≤ 3810, no saturation) before vpmaddwd widens to 32. Only the float accumulation across
// blocks differs between paths (the order of additions), hence tolerances in the tests.

enum Int4BlockKernels {
    /// The reference: one code at a time.
    static func scalar(_ o: TileOperands, actRows: Int) {
        for w in 0..<4 {
            let row = o.weightRow(w)
            let (codes, scales) = (row.codes, row.scales)
            for t in 0..<actRows {
                let act = o.actRow(t)
                let (acts, actScales) = (act.codes, act.scales)
                var sum: Float = 0
                for b in 0..<o.blocks {
                    let block = codes + b * 16
                    var dot: Int32 = 0
                    for j in 0..<16 {
                        let byte = block.load(fromByteOffset: j, as: UInt8.self)
                        dot += Int32(byte & 0x0F) * Int32(acts[b * 32 + j]) + Int32(byte >> 4) * Int32(acts[b * 32 + j + 16])
                    }
                    sum += Float(scales[b]) * actScales[b] * Float(dot) + o.additive(row, b) * act.sums[b]
                }
                o.out[w * actRows + t] = sum
            }
        }
    }

    /// 32 codes of one block as bytes 0…15, in activation order: low nibbles then high nibbles.
    @inline(__always) static func expand(_ p: UnsafeRawPointer) -> __m256i {
        let packed = _mm_loadu_si128(p.assumingMemoryBound(to: __m128i.self))
        return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F))
    }

    /// Σ u·s over 32 unsigned × signed bytes, as 8 float partial sums (exact integers).
    @inline(__always) static func dot(_ u: __m256i, _ s: __m256i) -> __m256 {
        _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)))
    }

    @inline(__always) static func load(_ p: UnsafePointer<Int8>) -> __m256i {
        _mm256_loadu_si256(UnsafeRawPointer(p).assumingMemoryBound(to: __m256i.self))
    }

    /// AVX2: 4 weight rows × 2 activation rows, one block per step; 8 accumulators in registers.
    static func avx2Tile(_ o: TileOperands) {
        let w0 = o.weightRow(0), w1 = o.weightRow(1), w2 = o.weightRow(2), w3 = o.weightRow(3)
        let r0 = o.actRow(0), r1 = o.actRow(1)
        let (a0, d0, a1, d1) = (r0.codes, r0.scales, r1.codes, r1.scales)
        // The additive terms, Σ_b m_w,b · S_t,b, in scalars beside the vectors.
        var m00: Float = 0, m01: Float = 0, m10: Float = 0, m11: Float = 0, m20: Float = 0, m21: Float = 0, m30: Float = 0, m31: Float = 0
        var acc00 = _mm256_setzero_ps(), acc01 = _mm256_setzero_ps(), acc10 = _mm256_setzero_ps(), acc11 = _mm256_setzero_ps()
        var acc20 = _mm256_setzero_ps(), acc21 = _mm256_setzero_ps(), acc30 = _mm256_setzero_ps(), acc31 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let x0 = load(a0 + b * 32), x1 = load(a1 + b * 32)
            let e0 = d0[b], e1 = d1[b]
            let f0 = r0.sums[b], f1 = r1.sums[b]
            @inline(__always) func step(_ row: WeightRow, _ acc0: inout __m256, _ acc1: inout __m256, _ m0: inout Float, _ m1: inout Float) {
                let (codes, scales) = (row.codes, row.scales)
                let m = o.additive(row, b)
                m0 += m * f0
                m1 += m * f1
                let q = expand(codes + b * 16)
                let d = Float(scales[b])
                acc0 = _mm256_fmadd_ps(dot(q, x0), _mm256_set1_ps(d * e0), acc0)
                acc1 = _mm256_fmadd_ps(dot(q, x1), _mm256_set1_ps(d * e1), acc1)
            }
            step(w0, &acc00, &acc01, &m00, &m01)
            step(w1, &acc10, &acc11, &m10, &m11)
            step(w2, &acc20, &acc21, &m20, &m21)
            step(w3, &acc30, &acc31, &m30, &m31)
        }
        let out = o.out, n = o.actRows
        out[0] = acc00.sum() + m00; if n > 1 { out[1] = acc01.sum() + m01 }
        out[n] = acc10.sum() + m10; if n > 1 { out[n + 1] = acc11.sum() + m11 }
        out[2 * n] = acc20.sum() + m20; if n > 1 { out[2 * n + 1] = acc21.sum() + m21 }
        out[3 * n] = acc30.sum() + m30; if n > 1 { out[3 * n + 1] = acc31.sum() + m31 }
    }

    /// AVX2: 4 weight rows × 1 activation row (the decode step's matrix-vector product).
    static func avx2Row(_ o: TileOperands) {
        let w0 = o.weightRow(0), w1 = o.weightRow(1), w2 = o.weightRow(2), w3 = o.weightRow(3)
        let (c0, s0, c1, s1, c2, s2, c3, s3) = (w0.codes, w0.scales, w1.codes, w1.scales, w2.codes, w2.scales, w3.codes, w3.scales)
        let r0 = o.actRow(0)
        let (a0, d0) = (r0.codes, r0.scales)
        var m0: Float = 0, m1: Float = 0, m2: Float = 0, m3: Float = 0
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let x = load(a0 + b * 32)
            let e = d0[b], f = r0.sums[b]
            if b % 4 == 0 {  // each cache line once, two tiles ahead (TileOperands.prefetchDistance)
                let ahead = o.prefetchDistance + b * 16
                sculpt_prefetch(c0 + ahead); sculpt_prefetch(c1 + ahead); sculpt_prefetch(c2 + ahead); sculpt_prefetch(c3 + ahead)
            }
            m0 += o.additive(w0, b) * f; m1 += o.additive(w1, b) * f; m2 += o.additive(w2, b) * f; m3 += o.additive(w3, b) * f
            acc0 = _mm256_fmadd_ps(dot(expand(c0 + b * 16), x), _mm256_set1_ps(Float(s0[b]) * e), acc0)
            acc1 = _mm256_fmadd_ps(dot(expand(c1 + b * 16), x), _mm256_set1_ps(Float(s1[b]) * e), acc1)
            acc2 = _mm256_fmadd_ps(dot(expand(c2 + b * 16), x), _mm256_set1_ps(Float(s2[b]) * e), acc2)
            acc3 = _mm256_fmadd_ps(dot(expand(c3 + b * 16), x), _mm256_set1_ps(Float(s3[b]) * e), acc3)
        }
        o.out[0] = acc0.sum() + m0; o.out[1] = acc1.sum() + m1; o.out[2] = acc2.sum() + m2; o.out[3] = acc3.sum() + m3
    }
}
