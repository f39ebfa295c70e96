import _Builtin_intrinsics.intel
import QuantizedKernelsAVX512

// Dot products of 8-bit weight blocks with 8-bit activation blocks (Q8_0, INT8 grids).
//
// A block holds 32 signed codes c ∈ −128…127. Against an activation block a ∈ −127…127:
//
//     block product = d_w · d_a · Σ_j c_j · a_j        (the additive part is the caller's)
//
// vpmaddubsw multiplies unsigned by signed bytes, so AVX2 uses the sign trick: c·a = |c| · (a·sign c).
// |c| ≤ 128 and |a| ≤ 127 keep each pair sum within 16 bits (≤ 32512). The exception is
// c = −128 with a = −127 on both of a pair, which cannot arise: activation codes are never
// −128, and a = −127 twice gives 2·128·127 = 32512 ≤ 32767.

enum Int8BlockKernels {
    static func scalar(_ o: TileOperands, actRows: Int) {
        for w in 0..<4 {
            let (codes, scales) = o.weightRow(w)
            let c = codes.assumingMemoryBound(to: Int8.self)
            for t in 0..<actRows {
                let (acts, actScales) = o.actRow(t)
                var sum: Float = 0
                for b in 0..<o.blocks {
                    var dot: Int32 = 0
                    for j in 0..<32 { dot += Int32(c[b * 32 + j]) * Int32(acts[b * 32 + j]) }
                    sum += Float(scales[b]) * actScales[b] * Float(dot)
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
        let (c0, s0) = o.weightRow(0), (c1, s1) = o.weightRow(1), (c2, s2) = o.weightRow(2), (c3, s3) = o.weightRow(3)
        let (a0, d0) = o.actRow(0), (a1, d1) = o.actRow(1)
        var acc00 = _mm256_setzero_ps(), acc01 = _mm256_setzero_ps(), acc10 = _mm256_setzero_ps(), acc11 = _mm256_setzero_ps()
        var acc20 = _mm256_setzero_ps(), acc21 = _mm256_setzero_ps(), acc30 = _mm256_setzero_ps(), acc31 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let x0 = load(a0 + b * 32), x1 = load(a1 + b * 32)
            let e0 = d0[b], e1 = d1[b]
            @inline(__always) func step(_ codes: UnsafeRawPointer, _ scales: UnsafePointer<Float16>, _ acc0: inout __m256, _ acc1: inout __m256) {
                let c = load(codes + b * 32)
                let d = Float(scales[b])
                acc0 = _mm256_fmadd_ps(dot(c, x0), _mm256_set1_ps(d * e0), acc0)
                acc1 = _mm256_fmadd_ps(dot(c, x1), _mm256_set1_ps(d * e1), acc1)
            }
            step(c0, s0, &acc00, &acc01)
            step(c1, s1, &acc10, &acc11)
            step(c2, s2, &acc20, &acc21)
            step(c3, s3, &acc30, &acc31)
        }
        let out = o.out, n = o.actRows
        out[0] = acc00.sum(); if n > 1 { out[1] = acc01.sum() }
        out[n] = acc10.sum(); if n > 1 { out[n + 1] = acc11.sum() }
        out[2 * n] = acc20.sum(); if n > 1 { out[2 * n + 1] = acc21.sum() }
        out[3 * n] = acc30.sum(); if n > 1 { out[3 * n + 1] = acc31.sum() }
    }

    /// AVX2: 4 weight rows × 1 activation row.
    static func avx2Row(_ o: TileOperands) {
        let (c0, s0) = o.weightRow(0), (c1, s1) = o.weightRow(1), (c2, s2) = o.weightRow(2), (c3, s3) = o.weightRow(3)
        let (a0, d0) = o.actRow(0)
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let x = load(a0 + b * 32)
            let e = d0[b]
            acc0 = _mm256_fmadd_ps(dot(load(c0 + b * 32), x), _mm256_set1_ps(Float(s0[b]) * e), acc0)
            acc1 = _mm256_fmadd_ps(dot(load(c1 + b * 32), x), _mm256_set1_ps(Float(s1[b]) * e), acc1)
            acc2 = _mm256_fmadd_ps(dot(load(c2 + b * 32), x), _mm256_set1_ps(Float(s2[b]) * e), acc2)
            acc3 = _mm256_fmadd_ps(dot(load(c3 + b * 32), x), _mm256_set1_ps(Float(s3[b]) * e), acc3)
        }
        o.out[0] = acc0.sum(); o.out[1] = acc1.sum(); o.out[2] = acc2.sum(); o.out[3] = acc3.sum()
    }
}
