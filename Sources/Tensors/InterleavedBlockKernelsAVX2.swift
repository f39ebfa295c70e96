import _Builtin_intrinsics.intel
import CPrefetch
import QuantizedKernelsAVX512

// AVX2 products of 16 interleaved weight rows (BlockQuantizedMatrix.interleaveRows) with up to 4
// rows of 8-bit activations, on CPUs without VNNI.
//
// 4 bits. In a group's block, vector t (64 bytes, t = 0…3) holds in its 32-bit lane r (row r) the codes
// of inputs 8t…8t+3 in the low nibbles and 8t+4…8t+7 in the high ones. A 256-bit register takes
// half a vector, rows 0…7 or 8…15, one row per 32-bit lane; with activation dword k (inputs
// 4k…4k+3) broadcast to every lane, vpmaddubsw gives per lane two 16-bit pair sums
//
//     u(4k)·a(4k) + u(4k+1)·a(4k+1),   u(4k+2)·a(4k+2) + u(4k+3)·a(4k+3)
//
// each within ±2·15·127 = ±3810, so the 8 products of a block (k = 0…7) add in 16 bits without
// overflow (±30480), and one vpmaddwd by 1 widens the lane's Σ_j u_r,j · a_j to 32 bits. With
// S = d_a · Σ_j a_j and c the zero point, the block adds to row r
//
//     d_r · (d_a · Σ_j u_r,j · a_j  −  c · S)  (+ m_r · S with per-block minimums, c = 0)
//
// as the AVX-512 kernel does (InterleavedBlockKernelsAVX512). Per block of 16 rows: 8 loads, 12
// unpacking steps, 16 vpmaddubsw and one vpmaddwd per 8 rows, against the row kernel's horizontal
// sums and per-row scales.
//
// 8 bits. Vector k (k = 0…7) holds in lane r the codes of inputs 4k…4k+3, stored biased by 128
// for vpdpbusd; here w = u ⊕ 0x80 gives back the signed code q. vpmaddubsw wants one unsigned
// operand, so it multiplies |q| (≤ 128, unsigned) by a carrying q's sign (vpsignb; activations
// are within ±127, so negating one is exact; q = −128 occurs in grids and would not negate): a
// pair sum is within 2·128·127 = 32512, but two of them are not, so each is widened to 32 bits
// (vpmaddwd) at once. The block adds d_r · (d_a · Σ_j q_r,j · a_j − z · S) to row r.

enum InterleavedBlockKernelsAVX2 {
    /// How far ahead of the codes the kernel prefetches: a group's codes are one sequential stream.
    static let prefetchBytes = 2048

    @inline(__always) static func load(_ p: UnsafeRawPointer) -> __m256i {
        _mm256_loadu_si256(p.assumingMemoryBound(to: __m256i.self))
    }

    @inline(__always) static func halves(_ p: UnsafePointer<Float16>) -> __m256 {
        _mm256_cvtph_ps(_mm_loadu_si128(UnsafeRawPointer(p).assumingMemoryBound(to: __m128i.self)))
    }

    /// 16 interleaved 4-bit rows × 1 activation row: out[0…15]. `o.codes`, `o.scales` (and
    /// `o.minimums`) point at the group's first block; otherwise the offset is `o.zeroPoint`.
    static func int4Row(_ o: TileOperands) {
        o.minimums == nil ? row(o, minimums: false) : row(o, minimums: true)
    }

    @inline(__always) static func row(_ o: TileOperands, minimums: Bool) {
        let c = Float(o.zeroPoint)
        let act = o.actRow(0)
        let nibble = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1)
        var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps()
        for b in 0..<o.blocks {
            let p = o.codes + b * 256
            let a = UnsafeRawPointer(act.codes + 32 * b)
            var sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256()
            @inline(__always) func vector(_ t: Int) {
                sculpt_prefetch(p + 64 * t + prefetchBytes)
                let low = _mm256_set1_epi32(a.loadUnaligned(fromByteOffset: 8 * t, as: Int32.self))
                let high = _mm256_set1_epi32(a.loadUnaligned(fromByteOffset: 8 * t + 4, as: Int32.self))
                let v0 = load(p + 64 * t), v1 = load(p + 64 * t + 32)
                sum0 = _mm256_add_epi16(sum0, _mm256_maddubs_epi16(_mm256_and_si256(v0, nibble), low))
                sum0 = _mm256_add_epi16(sum0, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v0, 4), nibble), high))
                sum1 = _mm256_add_epi16(sum1, _mm256_maddubs_epi16(_mm256_and_si256(v1, nibble), low))
                sum1 = _mm256_add_epi16(sum1, _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(v1, 4), nibble), high))
            }
            vector(0); vector(1); vector(2); vector(3)
            let s = act.sums[b]
            let da = _mm256_set1_ps(act.scales[b]), offset = _mm256_set1_ps(-c * s)
            let scaled0 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sum0, ones)), da, offset)
            let scaled1 = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sum1, ones)), da, offset)
            acc0 = _mm256_fmadd_ps(halves(o.scales + 16 * b), scaled0, acc0)
            acc1 = _mm256_fmadd_ps(halves(o.scales + 16 * b + 8), scaled1, acc1)
            if minimums, let m = o.minimums {
                let sums = _mm256_set1_ps(s)
                acc0 = _mm256_fmadd_ps(halves(m + 16 * b), sums, acc0)
                acc1 = _mm256_fmadd_ps(halves(m + 16 * b + 8), sums, acc1)
            }
        }
        _mm256_storeu_ps(o.out, acc0)
        _mm256_storeu_ps(o.out + 8, acc1)
    }

    /// 16 interleaved 4-bit rows × up to 4 activation rows (rows past `actRows` repeat the last
    /// one): out[16 t + r] for activation row t. Rows 0…7 and 8…15 go in two passes (the 4 tokens'
    /// 16-bit sums and float accumulators fill 8 of AVX2's 16 registers); each half-vector of
    /// codes is loaded and unpacked once for the 4 tokens.
    static func int4Tile(_ o: TileOperands) {
        o.minimums == nil ? tile(o, minimums: false) : tile(o, minimums: true)
    }

    @inline(__always) static func tile(_ o: TileOperands, minimums: Bool) {
        let c = Float(o.zeroPoint)
        let a = (o.actRow(0), o.actRow(1), o.actRow(2), o.actRow(3))
        let nibble = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1)
        for half in 0..<2 {
            var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps()
            for b in 0..<o.blocks {
                let p = o.codes + b * 256 + 32 * half
                var sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256(), sum2 = _mm256_setzero_si256(), sum3 = _mm256_setzero_si256()
                @inline(__always) func add(_ sum: inout __m256i, _ codes: __m256i, _ act: ActRow, _ byte: Int) {
                    let word = _mm256_set1_epi32(UnsafeRawPointer(act.codes + 32 * b).loadUnaligned(fromByteOffset: byte, as: Int32.self))
                    sum = _mm256_add_epi16(sum, _mm256_maddubs_epi16(codes, word))
                }
                for t in 0..<4 {
                    let v = load(p + 64 * t)
                    let low = _mm256_and_si256(v, nibble), high = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble)
                    add(&sum0, low, a.0, 8 * t); add(&sum0, high, a.0, 8 * t + 4)
                    add(&sum1, low, a.1, 8 * t); add(&sum1, high, a.1, 8 * t + 4)
                    add(&sum2, low, a.2, 8 * t); add(&sum2, high, a.2, 8 * t + 4)
                    add(&sum3, low, a.3, 8 * t); add(&sum3, high, a.3, 8 * t + 4)
                }
                let d = halves(o.scales + 16 * b + 8 * half)
                let m: __m256? = minimums ? halves(o.minimums! + 16 * b + 8 * half) : nil
                @inline(__always) func accumulate(_ sum: __m256i, _ act: ActRow, _ acc: inout __m256) {
                    let s = act.sums[b]
                    let scaled = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_madd_epi16(sum, ones)), _mm256_set1_ps(act.scales[b]), _mm256_set1_ps(-c * s))
                    acc = _mm256_fmadd_ps(d, scaled, acc)
                    if let m { acc = _mm256_fmadd_ps(m, _mm256_set1_ps(s), acc) }
                }
                accumulate(sum0, a.0, &acc0); accumulate(sum1, a.1, &acc1); accumulate(sum2, a.2, &acc2); accumulate(sum3, a.3, &acc3)
            }
            let out = o.out + 8 * half
            _mm256_storeu_ps(out, acc0)
            if o.actRows > 1 { _mm256_storeu_ps(out + 16, acc1) }
            if o.actRows > 2 { _mm256_storeu_ps(out + 32, acc2) }
            if o.actRows > 3 { _mm256_storeu_ps(out + 48, acc3) }
        }
    }

    /// Σ_j q·a over one 8-bit code vector (half of vector k: 8 rows), given as |q| and q, against
    /// activation dword `word`, added to the 32-bit lane sums: |q| ≤ 128 is unsigned, a carries
    /// q's sign (a ≠ −128, so negating it is exact).
    @inline(__always) static func add8(_ sum: inout __m256i, _ magnitude: __m256i, _ q: __m256i, _ word: __m256i, _ ones: __m256i) {
        let products = _mm256_maddubs_epi16(magnitude, _mm256_sign_epi8(word, q))
        sum = _mm256_add_epi32(sum, _mm256_madd_epi16(products, ones))
    }

    /// 16 interleaved 8-bit rows × 1 activation row: out[0…15] (offset `o.zeroPoint`).
    static func int8Row(_ o: TileOperands) { int8(o, tokens: 1) }
    /// 16 interleaved 8-bit rows × up to 4 activation rows: out[16 t + r].
    static func int8Tile(_ o: TileOperands) { int8(o, tokens: 4) }

    /// Rows 0…7 and 8…15 in two passes; `tokens` (1 or 4) is a constant at each call.
    @inline(__always) static func int8(_ o: TileOperands, tokens: Int) {
        let z = Float(o.zeroPoint)
        let a = (o.actRow(0), o.actRow(1), o.actRow(2), o.actRow(3))
        let bias = _mm256_set1_epi8(-128), ones = _mm256_set1_epi16(1)
        for half in 0..<2 {
            var acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps(), acc2 = _mm256_setzero_ps(), acc3 = _mm256_setzero_ps()
            for b in 0..<o.blocks {
                let p = o.codes + b * 512 + 32 * half
                var sum0 = _mm256_setzero_si256(), sum1 = _mm256_setzero_si256(), sum2 = _mm256_setzero_si256(), sum3 = _mm256_setzero_si256()
                @inline(__always) func word(_ act: ActRow, _ k: Int) -> __m256i {
                    _mm256_set1_epi32(UnsafeRawPointer(act.codes + 32 * b).loadUnaligned(fromByteOffset: 4 * k, as: Int32.self))
                }
                for k in 0..<8 {
                    if half == 0 { sculpt_prefetch(p + 64 * k + prefetchBytes) }
                    let q = _mm256_xor_si256(load(p + 64 * k), bias), magnitude = _mm256_abs_epi8(q)
                    add8(&sum0, magnitude, q, word(a.0, k), ones)
                    if tokens > 1 {
                        add8(&sum1, magnitude, q, word(a.1, k), ones)
                        add8(&sum2, magnitude, q, word(a.2, k), ones)
                        add8(&sum3, magnitude, q, word(a.3, k), ones)
                    }
                }
                let d = halves(o.scales + 16 * b + 8 * half)
                @inline(__always) func accumulate(_ sum: __m256i, _ act: ActRow, _ acc: inout __m256) {
                    let scaled = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sum), _mm256_set1_ps(act.scales[b]), _mm256_set1_ps(-z * act.sums[b]))
                    acc = _mm256_fmadd_ps(d, scaled, acc)
                }
                accumulate(sum0, a.0, &acc0)
                if tokens > 1 { accumulate(sum1, a.1, &acc1); accumulate(sum2, a.2, &acc2); accumulate(sum3, a.3, &acc3) }
            }
            let out = o.out + 8 * half
            _mm256_storeu_ps(out, acc0)
            if tokens > 1 && o.actRows > 1 { _mm256_storeu_ps(out + 16, acc1) }
            if tokens > 1 && o.actRows > 2 { _mm256_storeu_ps(out + 32, acc2) }
            if tokens > 1 && o.actRows > 3 { _mm256_storeu_ps(out + 48, acc3) }
        }
    }
}
