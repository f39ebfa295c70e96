import _Builtin_intrinsics.intel
import CPrefetch
import QuantizedKernelsAVX512

// Dot products of 8-bit weight blocks with 8-bit activation blocks (Q8_0, INT8 grids).
//
// A block holds 32 signed codes c ∈ −128…127. Against an activation block a ∈ −127…127:
//
//     block product = d_w · d_a · Σ_j c_j · a_j  +  m_w · S_a     (m = −z·d)
//
// vpmaddubsw multiplies unsigned by signed bytes, so AVX2 uses the sign trick: c·a = |c| · (a·sign c).
// |c| ≤ 128 and |a| ≤ 127 keep each pair sum within 16 bits (≤ 32512). The exception is
// c = −128 with a = −127 on both of a pair, which cannot arise: activation codes are never
// −128, and a = −127 twice gives 2·128·127 = 32512 ≤ 32767.

enum Int8BlockKernels {
    static func scalar(_ o: TileOperands, actRows: Int) {
        for w in 0..<4 {
            let row = o.weightRow(w)
            let (codes, scales) = (row.codes, row.scales)
            let c = codes.assumingMemoryBound(to: Int8.self)
            for t in 0..<actRows {
                let act = o.actRow(t)
                let (acts, actScales) = (act.codes, act.scales)
                var sum: Float = 0
                for b in 0..<o.blocks {
                    var dot: Int32 = 0
                    for j in 0..<32 { dot += Int32(c[b * 32 + j]) * Int32(acts[b * 32 + j]) }
                    sum += Float(scales[b]) * actScales[b] * Float(dot) + o.additive(row, b) * act.sums[b]
                }
                o.out[w * actRows + t] = sum
            }
        }
    }

    @inline(__always) static func load(_ p: UnsafeRawPointer) -> __m256i {
        _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self))
    }

    /// Σ c·a over 32 signed × signed bytes, as 8 float partial sums.
    @inline(__always) static func dot(_ c: __m256i, _ a: __m256i) -> __m256 {
        let magnitude = _mm256_sign_epi8(c, c), signed = _mm256_sign_epi8(a, c)
        return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(magnitude, signed), _mm256_set1_epi16(1)))
    }

    /// AVX2: 4 weight rows × 2 activation rows.
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
                let c = load(codes + b * 32)
                let d = Float(scales[b])
                acc0 = _mm256_fmadd_ps(dot(c, x0), _mm256_set1_ps(d * e0), acc0)
                acc1 = _mm256_fmadd_ps(dot(c, x1), _mm256_set1_ps(d * e1), acc1)
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

    /// AVX2: 4 weight rows × 1 activation row.
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
            if b % 2 == 0 {  // each cache line once, two tiles ahead (TileOperands.prefetchDistance)
                let ahead = o.prefetchDistance + b * 32
                sculpt_prefetch(c0 + ahead); sculpt_prefetch(c1 + ahead); sculpt_prefetch(c2 + ahead); sculpt_prefetch(c3 + ahead)
            }
            m0 += o.additive(w0, b) * f; m1 += o.additive(w1, b) * f; m2 += o.additive(w2, b) * f; m3 += o.additive(w3, b) * f
            acc0 = _mm256_fmadd_ps(dot(load(c0 + b * 32), x), _mm256_set1_ps(Float(s0[b]) * e), acc0)
            acc1 = _mm256_fmadd_ps(dot(load(c1 + b * 32), x), _mm256_set1_ps(Float(s1[b]) * e), acc1)
            acc2 = _mm256_fmadd_ps(dot(load(c2 + b * 32), x), _mm256_set1_ps(Float(s2[b]) * e), acc2)
            acc3 = _mm256_fmadd_ps(dot(load(c3 + b * 32), x), _mm256_set1_ps(Float(s3[b]) * e), acc3)
        }
        o.out[0] = acc0.sum() + m0; o.out[1] = acc1.sum() + m1; o.out[2] = acc2.sum() + m2; o.out[3] = acc3.sum() + m3
    }
}
