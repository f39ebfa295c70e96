import _Builtin_intrinsics.intel
import CPrefetch

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
// one multiply-add by (d_w · d_a), spread per lane, accumulates them in float, and one more adds
// the additive term m_w · S_a into the first of each lane's four floats.

public enum Int4BlockKernelsAVX512 {
    @inline(__always) static func widen(_ v: __m128) -> __m512 { __m512(lowHalf: __m256(lowHalf: v, highHalf: .zero), highHalf: .zero) }

    static let spreadIndex = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0)

    /// Four values spread so that each fills one 128-bit lane.
    @inline(__always) static func spread4(_ v: __m128) -> __m512 { _mm512_permutexvar_ps(spreadIndex, widen(v)) }

    /// Four values, each in the first float of its 128-bit lane (zeros elsewhere).
    @inline(__always) static func first4(_ v: __m128) -> __m512 { _mm512_maskz_permutexvar_ps(0x1111, spreadIndex, widen(v)) }

    @inline(__always) static func halves(_ s: UnsafePointer<Float16>) -> __m128 {
        _mm_cvtph_ps(_mm_loadl_epi64(UnsafeRawPointer(s).assumingMemoryBound(to: __m128i.self)))
    }

    /// m of blocks b…b+3 of a row, spread per lane; `d` is the row's spread scales.
    @inline(__always) static func additive4(_ o: TileOperands, _ row: WeightRow, _ b: Int, _ d: __m512) -> __m512 {
        if let m = row.minimums { return spread4(halves(m + b)) }
        if let z = row.zeroPoints {
            let z4 = _mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_cvtsi32_si128(Int32(bitPattern: UnsafeRawPointer(z + b).loadUnaligned(as: UInt32.self)))))
            return -(spread4(z4) * d)
        }
        return d * __m512(repeating: -Float(o.zeroPoint))
    }

    /// The last 1–3 blocks of a row as one four-block step, with masked loads: the missing
    /// blocks read as zeros (codes, scales, activations), so they add nothing.
    @inline(__always) static func partialWeights(_ o: TileOperands, _ row: WeightRow, _ b: Int, _ count: Int) -> (__m512i, __m512i, __m512, __m512) {
        let nibble = _mm512_set1_epi8(0x0F)
        let packed = _mm512_maskz_loadu_epi8(UInt64(1) << (16 * count) - 1, row.codes + b * 16)
        let d = spread4(_mm_cvtph_ps(_mm_maskz_loadu_epi16(UInt8(1 << count - 1), row.scales + b)))
        let m: __m512
        if let mins = row.minimums {
            m = spread4(_mm_cvtph_ps(_mm_maskz_loadu_epi16(UInt8(1 << count - 1), mins + b)))
        } else if let z = row.zeroPoints {
            m = -(spread4(_mm_cvtepi32_ps(_mm_cvtepi8_epi32(_mm_maskz_loadu_epi8(UInt16(1 << count - 1), z + b)))) * d)
        } else {
            m = d * __m512(repeating: -Float(o.zeroPoint))
        }
        return (_mm512_and_si512(packed, nibble), _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble), d, m)
    }

    /// The activations of the last 1–3 blocks, rearranged as for a full step (zeros after).
    @inline(__always) static func partialActs(_ act: ActRow, _ b: Int, _ count: Int) -> (__m512i, __m512i, __m512, __m512) {
        let pickLow = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0), pickHigh = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2)
        let bytes = 32 * count
        let x0 = _mm512_maskz_loadu_epi8(bytes >= 64 ? ~UInt64(0) : UInt64(1) << bytes - 1, UnsafeRawPointer(act.codes + b * 32))
        let x1 = bytes > 64 ? _mm512_maskz_loadu_epi8(UInt64(1) << (bytes - 64) - 1, UnsafeRawPointer(act.codes + b * 32 + 64)) : _mm512_setzero_si512()
        let mask = UInt8(1 << count - 1)
        return (_mm512_permutex2var_epi64(x0, pickLow, x1), _mm512_permutex2var_epi64(x0, pickHigh, x1),
                spread4(_mm_maskz_loadu_ps(mask, act.scales + b)), first4(_mm_maskz_loadu_ps(mask, act.sums + b)))
    }

    /// One four-block step of one weight row against one activation row, into `acc`.
    @inline(__always) static func accumulate(_ w: (__m512i, __m512i, __m512, __m512), _ a: (__m512i, __m512i, __m512, __m512), _ acc: inout __m512) {
        let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), w.0, a.0), w.1, a.1)
        acc = _mm512_fmadd_ps(w.3, a.3, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), w.2 * a.2, acc))
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
        // Sixteen blocks at a time: each row's 16 scales (and each activation row's) are read
        // once and spread per step; the additive terms m ⊙ S go lane-wise into the accumulators
        // (only their sum is read).
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
            for k in 0..<4 {
                let at = b + 4 * k
                @inline(__always) func weights(_ row: WeightRow, _ d: __m512) -> (__m512i, __m512i, __m512) {
                    let packed = _mm512_loadu_si512(row.codes + at * 16)
                    return (_mm512_and_si512(packed, nibble), _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble), spreadQuarter(d, Int32(k)))
                }
                let w0 = weights(w.0, d0.0), w1 = weights(w.1, d1.0), w2 = weights(w.2, d2.0), w3 = weights(w.3, d3.0)
                @inline(__always) func step(_ act: ActRow, _ da16: __m512, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                    let x0 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + at * 32)), x1 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + at * 32 + 64))
                    let low = _mm512_permutex2var_epi64(x0, pickLow, x1), high = _mm512_permutex2var_epi64(x0, pickHigh, x1)
                    let da = spreadQuarter(da16, Int32(k))
                    @inline(__always) func one(_ wk: (__m512i, __m512i, __m512), _ acc: inout __m512) {
                        let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, low), wk.1, high)
                        acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), wk.2 * da, acc)
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
        while b + 4 <= o.blocks {
            @inline(__always) func weights(_ row: WeightRow) -> (__m512i, __m512i, __m512, __m512) {
                let packed = _mm512_loadu_si512(row.codes + b * 16)
                let d = spread4(halves(row.scales + b))
                return (_mm512_and_si512(packed, nibble), _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble), d, additive4(o, row, b, d))
            }
            let w0 = weights(w.0), w1 = weights(w.1), w2 = weights(w.2), w3 = weights(w.3)
            @inline(__always) func step(_ act: ActRow, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                let x0 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + b * 32)), x1 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + b * 32 + 64))
                let low = _mm512_permutex2var_epi64(x0, pickLow, x1), high = _mm512_permutex2var_epi64(x0, pickHigh, x1)
                let da = spread4(_mm_loadu_ps(act.scales + b)), s = first4(_mm_loadu_ps(act.sums + b))
                @inline(__always) func one(_ wk: (__m512i, __m512i, __m512, __m512), _ acc: inout __m512) {
                    let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), wk.0, low), wk.1, high)
                    acc = _mm512_fmadd_ps(wk.3, s, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), wk.2 * da, acc))
                }
                one(w0, &c0); one(w1, &c1); one(w2, &c2); one(w3, &c3)
            }
            step(a.0, &acc00, &acc10, &acc20, &acc30)
            step(a.1, &acc01, &acc11, &acc21, &acc31)
            step(a.2, &acc02, &acc12, &acc22, &acc32)
            step(a.3, &acc03, &acc13, &acc23, &acc33)
            b += 4
        }
        if b < o.blocks {
            let count = o.blocks - b
            let w0 = partialWeights(o, w.0, b, count), w1 = partialWeights(o, w.1, b, count)
            let w2 = partialWeights(o, w.2, b, count), w3 = partialWeights(o, w.3, b, count)
            @inline(__always) func step(_ act: ActRow, _ c0: inout __m512, _ c1: inout __m512, _ c2: inout __m512, _ c3: inout __m512) {
                let x = partialActs(act, b, count)
                accumulate(w0, x, &c0); accumulate(w1, x, &c1); accumulate(w2, x, &c2); accumulate(w3, x, &c3)
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

    /// Lanes 4k…4k+3 of a 16-block vector, each spread over one 128-bit lane.
    @inline(__always) static func spreadQuarter(_ v: __m512, _ k: Int32) -> __m512 {
        _mm512_permutexvar_ps(_mm512_add_epi32(spreadIndex, _mm512_set1_epi32(4 * k)), v)
    }

    /// m of 16 blocks of a row (`d`: their scales).
    @inline(__always) static func additive16(_ o: TileOperands, _ row: WeightRow, _ b: Int, _ d: __m512) -> __m512 {
        if let m = row.minimums { return _mm512_cvtph_ps(_mm256_loadu_si256(UnsafeRawPointer(m + b).assumingMemoryBound(to: __m256i.self))) }
        if let z = row.zeroPoints {
            let z16 = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(UnsafeRawPointer(z + b).assumingMemoryBound(to: __m128i.self))))
            return -(z16 * d)
        }
        return d * __m512(repeating: -Float(o.zeroPoint))
    }

    /// 4 weight rows × 1 activation row (the decode step's matrix-vector product). Sixteen blocks
    /// at a time: their scales d_w·d_a are formed once in one vector and spread per step, and
    /// their additive terms go into an accumulator of their own; then four blocks per step, then
    /// one.
    public static func row(_ o: TileOperands) {
        let nibble = _mm512_set1_epi8(0x0F)
        let pickLow = _mm512_set_epi64(13, 12, 9, 8, 5, 4, 1, 0), pickHigh = _mm512_set_epi64(15, 14, 11, 10, 7, 6, 3, 2)
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
            for k in 0..<4 {
                let at = b + 4 * k
                let x0 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + at * 32)), x1 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + at * 32 + 64))
                let low = _mm512_permutex2var_epi64(x0, pickLow, x1), high = _mm512_permutex2var_epi64(x0, pickHigh, x1)
                @inline(__always) func one(_ row: WeightRow, _ dd: __m512, _ acc: inout __m512) {
                    sculpt_prefetch(row.codes + at * 16 + ahead)
                    let packed = _mm512_loadu_si512(row.codes + at * 16)
                    let q0 = _mm512_and_si512(packed, nibble), q1 = _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble)
                    let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, low), q1, high)
                    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), spreadQuarter(dd, Int32(k)), acc)
                }
                one(w.0, dd0, &acc0); one(w.1, dd1, &acc1); one(w.2, dd2, &acc2); one(w.3, dd3, &acc3)
            }
            b += 16
        }
        acc0 += add0; acc1 += add1; acc2 += add2; acc3 += add3
        while b + 4 <= o.blocks {
            let x0 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + b * 32)), x1 = _mm512_loadu_si512(UnsafeRawPointer(act.codes + b * 32 + 64))
            let low = _mm512_permutex2var_epi64(x0, pickLow, x1), high = _mm512_permutex2var_epi64(x0, pickHigh, x1)
            let da = spread4(_mm_loadu_ps(act.scales + b)), s = first4(_mm_loadu_ps(act.sums + b))
            @inline(__always) func one(_ row: WeightRow, _ acc: inout __m512) {
                sculpt_prefetch(row.codes + b * 16 + ahead)
                let packed = _mm512_loadu_si512(row.codes + b * 16)
                let q0 = _mm512_and_si512(packed, nibble), q1 = _mm512_and_si512(_mm512_srli_epi16(packed, 4), nibble)
                let sums = _mm512_dpbusd_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(), q0, low), q1, high)
                let d = spread4(halves(row.scales + b))
                acc = _mm512_fmadd_ps(additive4(o, row, b, d), s, _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), d * da, acc))
            }
            one(w.0, &acc0); one(w.1, &acc1); one(w.2, &acc2); one(w.3, &acc3)
            b += 4
        }
        if b < o.blocks {
            let count = o.blocks - b
            let x = partialActs(act, b, count)
            accumulate(partialWeights(o, w.0, b, count), x, &acc0); accumulate(partialWeights(o, w.1, b, count), x, &acc1)
            accumulate(partialWeights(o, w.2, b, count), x, &acc2); accumulate(partialWeights(o, w.3, b, count), x, &acc3)
        }
        storeSums(acc0, acc1, acc2, acc3, to: o.out)
    }
}
