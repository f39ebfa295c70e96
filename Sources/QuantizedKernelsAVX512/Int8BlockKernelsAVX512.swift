import _Builtin_intrinsics.intel
import CPrefetch

// AVX-512 VNNI dot products of 8-bit weight blocks with 8-bit activation blocks.
// Compiled for Cascade Lake; call it only where the CPU has AVX-512 F, BW, DQ, VL and VNNI.
//
// vpdpbusd multiplies unsigned by signed bytes. The codes c are signed, so this path reads them
// as u = c + 128 (flip the top bit): Σ_j (c_j − z)·a_j = Σ_j u_j·a_j − (z + 128)·Σ_j a_j, so the
// additive term takes z + 128 for z. Two blocks per step: 32-bit lanes 0…7 hold block b, 8…15
// block b + 1; the additive term m·S goes into lanes 0 and 8.

public enum Int8BlockKernelsAVX512 {
    /// What this path adds to every 8-bit code.
    public static let codeBias = 128

    @inline(__always) static func spread2(_ s0: Float, _ s1: Float) -> __m512 {
        __m512(lowHalf: __m256(repeating: s0), highHalf: __m256(repeating: s1))
    }

    @inline(__always) static func first2(_ s0: Float, _ s1: Float) -> __m512 {
        var v = __m512.zero
        v[0] = s0
        v[8] = s1
        return v
    }

    @inline(__always) static func biased(_ p: UnsafeRawPointer) -> __m512i {
        _mm512_xor_si512(_mm512_loadu_si512(p), _mm512_set1_epi8(-128))
    }

    /// One block's codes, biased, in the lower half (the upper half reads nothing: zeros, biased
    /// to 128, meet zero activations).
    @inline(__always) static func lastBiased(_ p: UnsafeRawPointer) -> __m512i {
        _mm512_xor_si512(_mm512_maskz_loadu_epi8(UInt64(1) << 32 - 1, p), _mm512_set1_epi8(-128))
    }

    /// 4 weight rows × up to 4 activation rows, two blocks per step.
    public static func tile(_ o: TileOperands) {
        let w = (o.weightRow(0), o.weightRow(1), o.weightRow(2), o.weightRow(3))
        let a = (o.actRow(0), o.actRow(1), o.actRow(2), o.actRow(3))
        let z = _mm512_setzero_ps()
        var acc00 = z, acc01 = z, acc02 = z, acc03 = z, acc10 = z, acc11 = z, acc12 = z, acc13 = z
        var acc20 = z, acc21 = z, acc22 = z, acc23 = z, acc30 = z, acc31 = z, acc32 = z, acc33 = z
        var b = 0
        // Sixteen blocks at a time, as the Int4 tile: scales read once and spread per step, the
        // additive terms lane-wise into the accumulators.
        while b + 16 <= o.blocks {
            @inline(__always) func scales(_ row: WeightRow) -> (__m512, __m512) {
                let d = _mm512_cvtph_ps(_mm256_loadu_si256(UnsafeRawPointer(row.scales + b).assumingMemoryBound(to: __m256i.self)))
                return (d, additive16(o, row, b, d))
            }
            let d0 = scales(w.0), d1 = scales(w.1), d2 = scales(w.2), d3 = scales(w.3)
            @inline(__always) func actScales(_ act: ActRow, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) -> __m512 {
                let s = _mm512_loadu_ps(act.sums + b)
                c0 = _mm512_fmadd_ps(d0.1, s, c0); c1 = _mm512_fmadd_ps(d1.1, s, c1)
                c2 = _mm512_fmadd_ps(d2.1, s, c2); c3 = _mm512_fmadd_ps(d3.1, s, c3)
                return _mm512_loadu_ps(act.scales + b)
            }
            let da0 = actScales(a.0, &acc00, &acc10, &acc20, &acc30), da1 = actScales(a.1, &acc01, &acc11, &acc21, &acc31)
            let da2 = actScales(a.2, &acc02, &acc12, &acc22, &acc32), da3 = actScales(a.3, &acc03, &acc13, &acc23, &acc33)
            for k in 0..<8 {
                let at = b + 2 * k
                let pick = _mm512_add_epi32(halvesIndex, _mm512_set1_epi32(Int32(2 * k)))
                let w0 = (biased(w.0.codes + at * 32), _mm512_permutexvar_ps(pick, d0.0)), w1 = (biased(w.1.codes + at * 32), _mm512_permutexvar_ps(pick, d1.0))
                let w2 = (biased(w.2.codes + at * 32), _mm512_permutexvar_ps(pick, d2.0)), w3 = (biased(w.3.codes + at * 32), _mm512_permutexvar_ps(pick, d3.0))
                @inline(__always) func step(_ act: ActRow, _ da16: __m512, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                    let x = _mm512_loadu_si512(UnsafeRawPointer(act.codes + at * 32))
                    let da = _mm512_permutexvar_ps(pick, da16)
                    @inline(__always) func one(_ wk: (__m512i, __m512), _ acc: inout __m512) {
                        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, x)), wk.1 * da, acc)
                    }
                    one(w0, &c0); one(w1, &c1); one(w2, &c2); one(w3, &c3)
                }
                step(a.0, da0, &acc00, &acc10, &acc20, &acc30)
                step(a.1, da1, &acc01, &acc11, &acc21, &acc31)
                step(a.2, da2, &acc02, &acc12, &acc22, &acc32)
                step(a.3, da3, &acc03, &acc13, &acc23, &acc33)
            }
            b += 16
        }
        while b + 2 <= o.blocks {
            @inline(__always) func weights(_ row: WeightRow) -> (__m512i, __m512, __m512) {
                (biased(row.codes + b * 32), spread2(Float(row.scales[b]), Float(row.scales[b + 1])),
                 spread2(o.additive(row, b, bias: codeBias), o.additive(row, b + 1, bias: codeBias)))
            }
            let w0 = weights(w.0), w1 = weights(w.1), w2 = weights(w.2), w3 = weights(w.3)
            @inline(__always) func step(_ act: ActRow, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                let x = _mm512_loadu_si512(UnsafeRawPointer(act.codes + b * 32))
                let da = spread2(act.scales[b], act.scales[b + 1]), s = first2(act.sums[b], act.sums[b + 1])
                @inline(__always) func one(_ wk: (__m512i, __m512, __m512), _ acc: inout __m512) {
                    let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, x)
                    acc = _mm512_fmadd_ps(wk.2, s, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), wk.1 * da, acc))
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
            // The last block alone: the upper half of the step masked to zeros.
            @inline(__always) func weights(_ row: WeightRow) -> (__m512i, __m512, __m512) {
                (lastBiased(row.codes + b * 32), spread2(Float(row.scales[b]), 0), spread2(o.additive(row, b, bias: codeBias), 0))
            }
            let w0 = weights(w.0), w1 = weights(w.1), w2 = weights(w.2), w3 = weights(w.3)
            @inline(__always) func step(_ act: ActRow, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                let x = _mm512_maskz_loadu_epi8(UInt64(1) << 32 - 1, UnsafeRawPointer(act.codes + b * 32))
                let da = spread2(act.scales[b], 0), s = first2(act.sums[b], 0)
                @inline(__always) func one(_ wk: (__m512i, __m512, __m512), _ acc: inout __m512) {
                    let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, x)
                    acc = _mm512_fmadd_ps(wk.2, s, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), wk.1 * da, acc))
                }
                one(w0, &c0); one(w1, &c1); one(w2, &c2); one(w3, &c3)
            }
            step(a.0, &acc00, &acc10, &acc20, &acc30)
            step(a.1, &acc01, &acc11, &acc21, &acc31)
            step(a.2, &acc02, &acc12, &acc22, &acc32)
            step(a.3, &acc03, &acc13, &acc23, &acc33)
        }
        o.storeRow(0, acc00, acc01, acc02, acc03)
        o.storeRow(1, acc10, acc11, acc12, acc13)
        o.storeRow(2, acc20, acc21, acc22, acc23)
        o.storeRow(3, acc30, acc31, acc32, acc33)
    }

    static let halvesIndex = _mm512_set_epi32(1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0)

    /// m of 16 blocks of a row (`d`: their scales), zero points taken with the code bias.
    @inline(__always) static func additive16(_ o: TileOperands, _ row: WeightRow, _ b: Int, _ d: __m512) -> __m512 {
        if let m = row.minimums { return _mm512_cvtph_ps(_mm256_loadu_si256(UnsafeRawPointer(m + b).assumingMemoryBound(to: __m256i.self))) }
        if let z = row.zeroPoints {
            let z16 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(UnsafeRawPointer(z + b).assumingMemoryBound(to: __m128i.self))))
            return -((z16 + __m512(repeating: Float(codeBias))) * d)
        }
        return d * __m512(repeating: -Float(o.zeroPoint + codeBias))
    }

    /// 4 weight rows × 1 activation row. Sixteen blocks at a time (their scales d_w·d_a formed
    /// once and spread per step, their additive terms in an accumulator of their own), two per
    /// step; then two, then one.
    public static func row(_ o: TileOperands) {
        let w = (o.weightRow(0), o.weightRow(1), o.weightRow(2), o.weightRow(3))
        let act = o.actRow(0)
        let ahead = o.prefetchDistance
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps()
        var add0 = _mm512_setzero_ps(), add1 = _mm512_setzero_ps(), add2 = _mm512_setzero_ps(), add3 = _mm512_setzero_ps()
        var b = 0
        while b + 16 <= o.blocks {
            let da = _mm512_loadu_ps(act.scales + b), s = _mm512_loadu_ps(act.sums + b)
            @inline(__always) func scales(_ row: WeightRow, _ add: inout __m512) -> __m512 {
                let d = _mm512_cvtph_ps(_mm256_loadu_si256(UnsafeRawPointer(row.scales + b).assumingMemoryBound(to: __m256i.self)))
                add = _mm512_fmadd_ps(additive16(o, row, b, d), s, add)
                return d * da
            }
            let dd0 = scales(w.0, &add0), dd1 = scales(w.1, &add1), dd2 = scales(w.2, &add2), dd3 = scales(w.3, &add3)
            for k in 0..<8 {
                let at = b + 2 * k
                let x = _mm512_loadu_si512(UnsafeRawPointer(act.codes + at * 32))
                let pick = _mm512_add_epi32(halvesIndex, _mm512_set1_epi32(Int32(2 * k)))
                @inline(__always) func one(_ row: WeightRow, _ dd: __m512, _ acc: inout __m512) {
                    sculpt_prefetch(row.codes + at * 32 + ahead)
                    let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), biased(row.codes + at * 32), x)
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), _mm512_permutexvar_ps(pick, dd), acc)
                }
                one(w.0, dd0, &acc0); one(w.1, dd1, &acc1); one(w.2, dd2, &acc2); one(w.3, dd3, &acc3)
            }
            b += 16
        }
        acc0 += add0; acc1 += add1; acc2 += add2; acc3 += add3
        while b + 2 <= o.blocks {
            let x = _mm512_loadu_si512(UnsafeRawPointer(act.codes + b * 32))
            let da = spread2(act.scales[b], act.scales[b + 1]), s = first2(act.sums[b], act.sums[b + 1])
            @inline(__always) func one(_ row: WeightRow, _ acc: inout __m512) {
                sculpt_prefetch(row.codes + b * 32 + ahead)
                let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), biased(row.codes + b * 32), x)
                let m = spread2(o.additive(row, b, bias: codeBias), o.additive(row, b + 1, bias: codeBias))
                acc = _mm512_fmadd_ps(m, s, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), spread2(Float(row.scales[b]), Float(row.scales[b + 1])) * da, acc))
            }
            one(w.0, &acc0); one(w.1, &acc1); one(w.2, &acc2); one(w.3, &acc3)
            b += 2
        }
        if b < o.blocks {
            // The last block alone: the upper half of the step masked to zeros.
            let x = _mm512_maskz_loadu_epi8(UInt64(1) << 32 - 1, UnsafeRawPointer(act.codes + b * 32))
            let da = spread2(act.scales[b], 0), s = first2(act.sums[b], 0)
            @inline(__always) func one(_ row: WeightRow, _ acc: inout __m512) {
                let sums = _mm512_dpbusd_epi32(_mm512_setzero_si512(), lastBiased(row.codes + b * 32), x)
                acc = _mm512_fmadd_ps(spread2(o.additive(row, b, bias: codeBias), 0), s,
                                      _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), spread2(Float(row.scales[b]), 0) * da, acc))
            }
            one(w.0, &acc0); one(w.1, &acc1); one(w.2, &acc2); one(w.3, &acc3)
        }
        storeSums(acc0, acc1, acc2, acc3, to: o.out)
    }
}
