import _Builtin_intrinsics.intel

// AVX-512 VNNI dot products of 8-bit weight blocks with 8-bit activation blocks.
// Compiled for Cascade Lake; call it only where the CPU has AVX-512 F, BW, DQ, VL and VNNI.
//
// vpdpbusd multiplies unsigned by signed bytes. The codes c are signed, so this path reads them
// as u = c + 128 (flip the top bit) and returns
//
//     Σ_b d_w · d_a · Σ_j (c_j + 128) · a_j  =  Σ_b d_w · d_a · (Σ_j c_j·a_j + 128 · Σ_j a_j)
//
// The caller removes the 128·Σa part with the block's additive term (`eightBitCodeBias`).
// Two blocks per step: 32-bit lanes 0…7 hold block b, 8…15 block b + 1.

public enum Int8BlockKernelsAVX512 {
    /// What this path adds to every 8-bit code.
    public static let codeBias = 128

    @inline(__always) static func spread2(_ s0: Float, _ s1: Float) -> __m512 {
        __m512(lowHalf: __m256(repeating: s0), highHalf: __m256(repeating: s1))
    }

    @inline(__always) static func biased(_ p: UnsafeRawPointer) -> __m512i {
        _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8(-128))
    }

    /// One block the 256-bit way (the last one when the count is odd), codes biased as above.
    @inline(__always) static func tailDot(_ codes: UnsafeRawPointer, _ acts: UnsafePointer<Int8>) -> __m256 {
        let c = _mm256_loadu_si256(codes.assumingMemoryBound(to: __m256i.self))
        let a = _mm256_loadu_si256(UnsafeRawPointer(acts).assumingMemoryBound(to: __m256i.self))
        let exact = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(c, c), _mm256_sign_epi8(a, c)), _mm256_set1_epi16(1))
        // + 128·Σa, to match the biased blocks: Σa by vpmaddubsw against ones.
        let sum = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_set1_epi8(1), a), _mm256_set1_epi16(1))
        return _mm256_cvtepi32_ps(_mm256_add_epi32(exact, _mm256_slli_epi32(sum, 7)))
    }

    /// 4 weight rows × up to 4 activation rows, two blocks per step.
    public static func tile(_ o: TileOperands) {
        let w = (o.weightRow(0), o.weightRow(1), o.weightRow(2), o.weightRow(3))
        let a = (o.actRow(0), o.actRow(1), o.actRow(2), o.actRow(3))
        let z = _mm512_setzero_ps()
        var acc00 = z, acc01 = z, acc02 = z, acc03 = z, acc10 = z, acc11 = z, acc12 = z, acc13 = z
        var acc20 = z, acc21 = z, acc22 = z, acc23 = z, acc30 = z, acc31 = z, acc32 = z, acc33 = z
        var b = 0
        while b + 2 <= o.blocks {
            @inline(__always) func weights(_ row: (UnsafeRawPointer, UnsafePointer<Float16>)) -> (__m512i, __m512) {
                (biased(row.0 + b * 32), spread2(Float(row.1[b]), Float(row.1[b + 1])))
            }
            let w0 = weights(w.0), w1 = weights(w.1), w2 = weights(w.2), w3 = weights(w.3)
            @inline(__always) func step(_ act: (UnsafePointer<Int8>, UnsafePointer<Float>),
                                        _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                let x = _mm512_loadu_si512(UnsafeRawPointer(act.0 + b * 32))
                let da = spread2(act.1[b], act.1[b + 1])
                @inline(__always) func one(_ wk: (__m512i, __m512), _ acc: inout __m512) {
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, x)), wk.1 * da, acc)
                }
                one(w0, &c0); one(w1, &c1); one(w2, &c2); one(w3, &c3)
            }
            step(a.0, &acc00, &acc10, &acc20, &acc30)
            step(a.1, &acc01, &acc11, &acc21, &acc31)
            step(a.2, &acc02, &acc12, &acc22, &acc32)
            step(a.3, &acc03, &acc13, &acc23, &acc33)
            b += 2
        }
        if b < o.blocks {
            @inline(__always) func step(_ act: (UnsafePointer<Int8>, UnsafePointer<Float>),
                                        _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                @inline(__always) func one(_ row: (UnsafeRawPointer, UnsafePointer<Float16>), _ acc: inout __m512) {
                    let part = _mm256_mul_ps(tailDot(row.0 + b * 32, act.0 + b * 32), _mm256_set1_ps(Float(row.1[b]) * act.1[b]))
                    acc += __m512(lowHalf: part, highHalf: .zero)
                }
                one(w.0, &c0); one(w.1, &c1); one(w.2, &c2); one(w.3, &c3)
            }
            step(a.0, &acc00, &acc10, &acc20, &acc30)
            step(a.1, &acc01, &acc11, &acc21, &acc31)
            step(a.2, &acc02, &acc12, &acc22, &acc32)
            step(a.3, &acc03, &acc13, &acc23, &acc33)
        }
        o.store(0, acc00, acc01, acc02, acc03)
        o.store(1, acc10, acc11, acc12, acc13)
        o.store(2, acc20, acc21, acc22, acc23)
        o.store(3, acc30, acc31, acc32, acc33)
    }

    /// 4 weight rows × 1 activation row, two blocks per step.
    public static func row(_ o: TileOperands) {
        let w = (o.weightRow(0), o.weightRow(1), o.weightRow(2), o.weightRow(3))
        let (acts, actScales) = o.actRow(0)
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps()
        var b = 0
        while b + 2 <= o.blocks {
            let x = _mm512_loadu_si512(UnsafeRawPointer(acts + b * 32))
            let da = spread2(actScales[b], actScales[b + 1])
            @inline(__always) func one(_ row: (UnsafeRawPointer, UnsafePointer<Float16>), _ acc: inout __m512) {
                let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), biased(row.0 + b * 32), x)
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), spread2(Float(row.1[b]), Float(row.1[b + 1])) * da, acc)
            }
            one(w.0, &acc0); one(w.1, &acc1); one(w.2, &acc2); one(w.3, &acc3)
            b += 2
        }
        if b < o.blocks {
            @inline(__always) func one(_ row: (UnsafeRawPointer, UnsafePointer<Float16>), _ acc: inout __m512) {
                let part = _mm256_mul_ps(tailDot(row.0 + b * 32, acts + b * 32), _mm256_set1_ps(Float(row.1[b]) * actScales[b]))
                acc += __m512(lowHalf: part, highHalf: .zero)
            }
            one(w.0, &acc0); one(w.1, &acc1); one(w.2, &acc2); one(w.3, &acc3)
        }
        o.out[0] = acc0.sum(); o.out[1] = acc1.sum(); o.out[2] = acc2.sum(); o.out[3] = acc3.sum()
    }
}
