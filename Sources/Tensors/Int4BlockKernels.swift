import _Builtin_intrinsics.intel
import QuantizedKernelsAVX512

// Dot products of 4-bit weight blocks with 8-bit activation blocks (Q4_0, Q4_1, INT4 grids).
//
// A block holds 32 codes q ∈ 0…15 in 16 bytes (q_j, j < 16, in the low nibble of byte j; q_{j+16}
// in its high nibble). Against an activation block a ∈ −127…127 (with scale d_a):
//
//     block product = d_w · d_a · Σ_j q_j · a_j        (the additive part is the caller's)
//
// The integer sum is exact on every path: |q·a| ≤ 15·127, and vpmaddubsw adds pairs into 16 bits
// (≤ 3810, no saturation) before vpmaddwd widens to 32. Only the float accumulation across
// blocks differs between paths (the order of additions), hence tolerances in the tests.

enum Int4BlockKernels {
    /// The reference: one code at a time.
    static func scalar(_ o: TileOperands, actRows: Int) {
        for w in 0..<4 {
            let (codes, scales) = o.weightRow(w)
            for t in 0..<actRows {
                let (acts, actScales) = o.actRow(t)
                var sum: Float = 0
                for b in 0..<o.blocks {
                    let block = codes + b * 16
                    var dot: Int32 = 0
                    for j in 0..<16 {
                        let byte = block.load(fromByteOffset: j, as: UInt8.self)
                        dot += Int32(byte & 0x0F) * Int32(acts[b * 32 + j]) + Int32(byte >> 4) * Int32(acts[b * 32 + j + 16])
                    }
                    sum += Float(scales[b]) * actScales[b] * Float(dot)
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
        let (c0, s0) = o.weightRow(0), (c1, s1) = o.weightRow(1), (c2, s2) = o.weightRow(2), (c3, s3) = o.weightRow(3)
        let (a0, d0) = o.actRow(0), (a1, d1) = o.actRow(1)
        var acc00 = _mm256_setzero_ps(), acc01 = _mm256_setzero_ps(), acc10 = _mm256_setzero_ps(), acc11 = _mm256_setzero_ps()
        var acc20 = _mm256_setzero_ps(), acc21 = _mm256_setzero_ps(), acc30 = _mm256_setzero_ps(), acc31 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let x0 = load(a0 + b * 32), x1 = load(a1 + b * 32)
            let e0 = d0[b], e1 = d1[b]
            @inline(__always) func step(_ codes: UnsafeRawPointer, _ scales: UnsafePointer<Float16>, _ acc0: inout __m256, _ acc1: inout __m256) {
                let q = expand(codes + b * 16)
                let d = Float(scales[b])
                acc0 = _mm256_fmadd_ps(dot(q, x0), _mm256_set1_ps(d * e0), acc0)
                acc1 = _mm256_fmadd_ps(dot(q, x1), _mm256_set1_ps(d * e1), acc1)
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

    /// AVX2: 4 weight rows × 1 activation row (the decode step's matrix-vector product).
    static func avx2Row(_ o: TileOperands) {
        let (c0, s0) = o.weightRow(0), (c1, s1) = o.weightRow(1), (c2, s2) = o.weightRow(2), (c3, s3) = o.weightRow(3)
        let (a0, d0) = o.actRow(0)
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let x = load(a0 + b * 32)
            let e = d0[b]
            acc0 = _mm256_fmadd_ps(dot(expand(c0 + b * 16), x), _mm256_set1_ps(Float(s0[b]) * e), acc0)
            acc1 = _mm256_fmadd_ps(dot(expand(c1 + b * 16), x), _mm256_set1_ps(Float(s1[b]) * e), acc1)
            acc2 = _mm256_fmadd_ps(dot(expand(c2 + b * 16), x), _mm256_set1_ps(Float(s2[b]) * e), acc2)
            acc3 = _mm256_fmadd_ps(dot(expand(c3 + b * 16), x), _mm256_set1_ps(Float(s3[b]) * e), acc3)
        }
        o.out[0] = acc0.sum(); o.out[1] = acc1.sum(); o.out[2] = acc2.sum(); o.out[3] = acc3.sum()
    }
}
