import _Builtin_intrinsics.intel

// AVX-512 VNNI dot products of 4-bit weight blocks with 8-bit activation blocks.
// This module is compiled for Cascade Lake; call it only where the CPU reports AVX-512 F, BW,
// DQ, VL and VNNI (Tensors' KernelPath decides).
//
// Four blocks per step. The 64 code bytes of blocks b…b+3 load as one vector whose 128-bit lane k
// is block b+k; its low nibbles are elements 0…15 of each block, its high nibbles 16…31. The
// activations are rearranged to match: lane k of `low` holds a_{b+k, 0…15}, of `high`
// a_{b+k, 16…31} (two qword permutes per row of activations, shared by the 4 weight rows). Then
//
//     lane k of  dpbusd(dpbusd(0, q_low, a_low), q_high, a_high)  =  4 partial sums of block b+k
//
// and one multiply-add by (d_w · d_a), broadcast per lane, accumulates them in float.

public enum Int4BlockKernelsAVX512 {
    @inline(__always) static func widen(_ v: __m128) -> __m512 { __m512(lowHalf: __m256(lowHalf: v, highHalf: .zero), highHalf: .zero) }

    /// Four scale pairs spread so that each fills one 128-bit lane.
    @inline(__always) static func spread4(_ v: __m128) -> __m512 {
        _mm512_permutexvar_ps(_mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0), widen(v))
    }

    @inline(__always) static func halves(_ s: UnsafePointer<Float16>) -> __m128 {
        _mm_cvtph_ps(_mm_loadl_epi64(UnsafeRawPointer(s).assumingMemoryBound(to: __m128i.self)))
    }

    /// One block the 256-bit way (for the last blocks when fewer than four remain).
    @inline(__always) static func tailDot(_ codes: UnsafeRawPointer, _ acts: UnsafePointer<Int8>) -> __m256 {
        let packed = _mm_loadu_si128(codes.assumingMemoryBound(to: __m128i.self))
        let q = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(packed, 4), packed), _mm256_set1_epi8(0x0F))
        let a = _mm256_loadu_si256(UnsafeRawPointer(acts).assumingMemoryBound(to: __m256i.self))
        return _mm256_cvtepi32_ps(_mm256_madd_epi16(_mm256_maddubs_epi16(q, a), _mm256_set1_epi16(1)))
    }

    /// 4 weight rows × up to 4 activation rows (`o.actRows`), four blocks per step; the 16
    /// accumulators stay in registers.
    public static func tile(_ o: TileOperands) {
        let nibble = _mm512_set1_epi8(0x0F)
        let pickLow = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0), pickHigh = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2)
        let w = (o.weightRow(0), o.weightRow(1), o.weightRow(2), o.weightRow(3))
        let a = (o.actRow(0), o.actRow(1), o.actRow(2), o.actRow(3))
        let z = _mm512_setzero_ps()
        var acc00 = z, acc01 = z, acc02 = z, acc03 = z, acc10 = z, acc11 = z, acc12 = z, acc13 = z
        var acc20 = z, acc21 = z, acc22 = z, acc23 = z, acc30 = z, acc31 = z, acc32 = z, acc33 = z
        var b = 0
        while b + 4 <= o.blocks {
            @inline(__always) func weights(_ row: (UnsafeRawPointer, UnsafePointer<Float16>)) -> (__m512i, __m512i, __m512) {
                let packed = _mm512_loadu_si512(row.0 + b * 16)
                return (_mm512_and_si512(packed, nibble), _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble), spread4(halves(row.1 + b)))
            }
            let w0 = weights(w.0), w1 = weights(w.1), w2 = weights(w.2), w3 = weights(w.3)
            @inline(__always) func step(_ act: (UnsafePointer<Int8>, UnsafePointer<Float>),
                                        _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                let x0 = _mm512_loadu_si512(UnsafeRawPointer(act.0 + b * 32)), x1 = _mm512_loadu_si512(UnsafeRawPointer(act.0 + b * 32 + 64))
                let low = _mm512_permutex2var_epi64(x0, pickLow, x1), high = _mm512_permutex2var_epi64(x0, pickHigh, x1)
                let da = spread4(_mm_loadu_ps(act.1 + b))
                @inline(__always) func one(_ wk: (__m512i, __m512i, __m512), _ acc: inout __m512) {
                    let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, low), wk.1, high)
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), wk.2 * da, acc)
                }
                one(w0, &c0); one(w1, &c1); one(w2, &c2); one(w3, &c3)
            }
            step(a.0, &acc00, &acc10, &acc20, &acc30)
            step(a.1, &acc01, &acc11, &acc21, &acc31)
            step(a.2, &acc02, &acc12, &acc22, &acc32)
            step(a.3, &acc03, &acc13, &acc23, &acc33)
            b += 4
        }
        while b < o.blocks {
            @inline(__always) func step(_ act: (UnsafePointer<Int8>, UnsafePointer<Float>),
                                        _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                @inline(__always) func one(_ row: (UnsafeRawPointer, UnsafePointer<Float16>), _ acc: inout __m512) {
                    let part = _mm256_mul_ps(tailDot(row.0 + b * 16, act.0 + b * 32), _mm256_set1_ps(Float(row.1[b]) * act.1[b]))
                    acc += __m512(lowHalf: part, highHalf: .zero)
                }
                one(w.0, &c0); one(w.1, &c1); one(w.2, &c2); one(w.3, &c3)
            }
            step(a.0, &acc00, &acc10, &acc20, &acc30)
            step(a.1, &acc01, &acc11, &acc21, &acc31)
            step(a.2, &acc02, &acc12, &acc22, &acc32)
            step(a.3, &acc03, &acc13, &acc23, &acc33)
            b += 1
        }
        o.store(0, acc00, acc01, acc02, acc03)
        o.store(1, acc10, acc11, acc12, acc13)
        o.store(2, acc20, acc21, acc22, acc23)
        o.store(3, acc30, acc31, acc32, acc33)
    }

    /// 4 weight rows × 1 activation row, four blocks per step.
    public static func row(_ o: TileOperands) {
        let nibble = _mm512_set1_epi8(0x0F)
        let pickLow = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0), pickHigh = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2)
        let w = (o.weightRow(0), o.weightRow(1), o.weightRow(2), o.weightRow(3))
        let (acts, actScales) = o.actRow(0)
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps()
        var b = 0
        while b + 4 <= o.blocks {
            let x0 = _mm512_loadu_si512(UnsafeRawPointer(acts + b * 32)), x1 = _mm512_loadu_si512(UnsafeRawPointer(acts + b * 32 + 64))
            let low = _mm512_permutex2var_epi64(x0, pickLow, x1), high = _mm512_permutex2var_epi64(x0, pickHigh, x1)
            let da = spread4(_mm_loadu_ps(actScales + b))
            @inline(__always) func one(_ row: (UnsafeRawPointer, UnsafePointer<Float16>), _ acc: inout __m512) {
                let packed = _mm512_loadu_si512(row.0 + b * 16)
                let q0 = _mm512_and_si512(packed, nibble), q1 = _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble)
                let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, low), q1, high)
                acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), spread4(halves(row.1 + b)) * da, acc)
            }
            one(w.0, &acc0); one(w.1, &acc1); one(w.2, &acc2); one(w.3, &acc3)
            b += 4
        }
        var tail = (_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps())
        while b < o.blocks {
            let e = actScales[b]
            tail.0 = _mm256_fmadd_ps(tailDot(w.0.0 + b * 16, acts + b * 32), _mm256_set1_ps(Float(w.0.1[b]) * e), tail.0)
            tail.1 = _mm256_fmadd_ps(tailDot(w.1.0 + b * 16, acts + b * 32), _mm256_set1_ps(Float(w.1.1[b]) * e), tail.1)
            tail.2 = _mm256_fmadd_ps(tailDot(w.2.0 + b * 16, acts + b * 32), _mm256_set1_ps(Float(w.2.1[b]) * e), tail.2)
            tail.3 = _mm256_fmadd_ps(tailDot(w.3.0 + b * 16, acts + b * 32), _mm256_set1_ps(Float(w.3.1[b]) * e), tail.3)
            b += 1
        }
        o.out[0] = acc0.sum() + tail.0.sum(); o.out[1] = acc1.sum() + tail.1.sum()
        o.out[2] = acc2.sum() + tail.2.sum(); o.out[3] = acc3.sum() + tail.3.sum()
    }
}
