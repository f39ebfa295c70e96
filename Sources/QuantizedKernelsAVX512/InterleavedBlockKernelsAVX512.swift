import _Builtin_intrinsics.intel
import CPrefetch

// AVX-512 VNNI products of 16 interleaved weight rows (BlockQuantizedMatrix.interleaveRows) with
// up to 4 rows of 8-bit activations. Compiled for Cascade Lake; call only where KernelPath says.
//
// In the interleaved layout the 32-bit lane r of every weight vector is weight row r of the group,
// so one vpdpbusd with an activation dword broadcast to all lanes advances 16 rows at once, and
// the 16 results come out in the 16 lanes: no horizontal sums, no spreading of scales (the
// group's 16 scales of a block are one vector). Per block of 32 inputs, 8 vectors v_k (k = 0…7)
// of unsigned codes u, lane r byte i = u of row r at input 4k + i:
//
//     8 bits:  v_k is stored as is (codes biased by 128 at repacking), 8 loads
//     4 bits:  4 loads; byte i of lane r in vector t = u(8t + i) | u(8t + 4 + i) << 4, so
//              v_2t = low nibbles, v_2t+1 = high nibbles
//
//     lane r of  Σ_k dpbusd(v_k, broadcast(a_4k…4k+3))  =  Σ_j u_r,j · a_j
//
// and with S = d_a · Σ_j a_j (QuantizedActivations' sums) and c the code offset (z + 128 for 8
// bits, z for 4), the block adds to row r
//
//     d_r · (d_a · Σ_j u_r,j · a_j  −  c · S)  =  d_r · d_a · Σ_j (u_r,j − c) · a_j
//
// which is the block product of TileOperands' definition with m = −z·d. With per-block minimums
// (Q4_1: w = d·q + m, c = 0) the group's 16 minimums of the block are one more vector, and the
// block adds m_r · S besides.

public enum InterleavedBlockKernelsAVX512 {
    /// The 8 code vectors of one block (see above), each paired with activation dword k.
    typealias BlockCodes = (__m512i, __m512i, __m512i, __m512i, __m512i, __m512i, __m512i, __m512i)

    /// How far ahead of the codes it reads a kernel prefetches: the group's codes are one
    /// sequential stream, and a few blocks ahead keeps the memory busy.
    static let prefetchBytes = 2048

    @inline(__always) static func load(_ p: UnsafeRawPointer) -> __m512i {
        sculpt_prefetch(p + prefetchBytes)
        return _mm512_loadu_si512(p)
    }

    @inline(__always) static func codes(_ p: UnsafeRawPointer, bits: Int) -> BlockCodes {
        if bits == 8 {
            return (load(p), load(p + 64), load(p + 128), load(p + 192), load(p + 256), load(p + 320), load(p + 384), load(p + 448))
        }
        let nibble = _mm512_set1_epi8(0x0F)
        @inline(__always) func split(_ v: __m512i) -> (__m512i, __m512i) {
            (_mm512_and_si512(v, nibble), _mm512_and_si512(_mm512_srli_epi16(v, 4), nibble))
        }
        let (v0, v1) = split(load(p)), (v2, v3) = split(load(p + 64))
        let (v4, v5) = split(load(p + 128)), (v6, v7) = split(load(p + 192))
        return (v0, v1, v2, v3, v4, v5, v6, v7)
    }

    /// Σ_j u_r,j · a_j in lane r, for one activation block `a` (32 signed bytes).
    @inline(__always) static func dot(_ v: BlockCodes, _ a: UnsafeRawPointer) -> __m512i {
        @inline(__always) func word(_ k: Int) -> __m512i { _mm512_set1_epi32(a.loadUnaligned(fromByteOffset: 4 * k, as: Int32.self)) }
        // Two chains, so that consecutive vpdpbusd do not wait on each other.
        var s0 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v.0, word(0))
        var s1 = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v.1, word(1))
        s0 = _mm512_dpbusd_epi32(s0, v.2, word(2)); s1 = _mm512_dpbusd_epi32(s1, v.3, word(3))
        s0 = _mm512_dpbusd_epi32(s0, v.4, word(4)); s1 = _mm512_dpbusd_epi32(s1, v.5, word(5))
        s0 = _mm512_dpbusd_epi32(s0, v.6, word(6)); s1 = _mm512_dpbusd_epi32(s1, v.7, word(7))
        return _mm512_add_epi32(s0, s1)
    }

    /// acc += d · (d_a · sums − c · S) (+ m · S) for activation row `act`'s block b.
    @inline(__always) static func accumulate(_ sums: __m512i, _ d: (__m512, __m512?), _ act: ActRow, _ b: Int, _ c: Float, _ acc: inout __m512) {
        let s = act.sums[b]
        let scaled = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), __m512(repeating: act.scales[b]), __m512(repeating: -c * s))
        acc = _mm512_fmadd_ps(d.0, scaled, acc)
        if let m = d.1 { acc = _mm512_fmadd_ps(m, __m512(repeating: s), acc) }
    }

    @inline(__always) static func halves(_ p: UnsafePointer<Float16>) -> __m512 {
        _mm512_cvtph_ps(_mm256_loadu_si256(UnsafeRawPointer(p).assumingMemoryBound(to: __m256i.self)))
    }

    /// The group's 16 scales of block b, and its 16 minimums if it has them.
    @inline(__always) static func scales(_ o: TileOperands, _ b: Int, _ minimums: Bool) -> (__m512, __m512?) {
        (halves(o.scales + 16 * b), minimums ? halves(o.minimums! + 16 * b) : nil)
    }

    /// One group against one activation row: out[0…15].
    @inline(__always) static func row(_ o: TileOperands, bits: Int, minimums: Bool) {
        let blockBytes = bits == 8 ? 512 : 256, c = Float(o.zeroPoint + (bits == 8 ? 128 : 0))
        let act = o.actRow(0)
        var acc = _mm512_setzero_ps()
        for b in 0..<o.blocks {
            let v = codes(o.codes + b * blockBytes, bits: bits)
            accumulate(dot(v, UnsafeRawPointer(act.codes + 32 * b)), scales(o, b, minimums), act, b, c, &acc)
        }
        _mm512_storeu_ps(o.out, acc)
    }

    /// One group against up to 4 activation rows (rows past `actRows` repeat the last one):
    /// out[16 t + r] for activation row t. Each block's codes are loaded and unpacked once for
    /// the 4 rows.
    @inline(__always) static func tile(_ o: TileOperands, bits: Int, minimums: Bool) {
        let blockBytes = bits == 8 ? 512 : 256, c = Float(o.zeroPoint + (bits == 8 ? 128 : 0))
        let a = (o.actRow(0), o.actRow(1), o.actRow(2), o.actRow(3))
        var acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps(), acc2 = _mm512_setzero_ps(), acc3 = _mm512_setzero_ps()
        for b in 0..<o.blocks {
            let v = codes(o.codes + b * blockBytes, bits: bits), d = scales(o, b, minimums)
            accumulate(dot(v, UnsafeRawPointer(a.0.codes + 32 * b)), d, a.0, b, c, &acc0)
            accumulate(dot(v, UnsafeRawPointer(a.1.codes + 32 * b)), d, a.1, b, c, &acc1)
            accumulate(dot(v, UnsafeRawPointer(a.2.codes + 32 * b)), d, a.2, b, c, &acc2)
            accumulate(dot(v, UnsafeRawPointer(a.3.codes + 32 * b)), d, a.3, b, c, &acc3)
        }
        _mm512_storeu_ps(o.out, acc0)
        if o.actRows > 1 { _mm512_storeu_ps(o.out + 16, acc1) }
        if o.actRows > 2 { _mm512_storeu_ps(o.out + 32, acc2) }
        if o.actRows > 3 { _mm512_storeu_ps(o.out + 48, acc3) }
    }

    /// 16 interleaved 8-bit rows × 1 activation row. `o.codes`, `o.scales` (and `o.minimums`)
    /// point at the group's first block; otherwise the offset is `o.zeroPoint`.
    public static func int8Row(_ o: TileOperands) { o.minimums == nil ? row(o, bits: 8, minimums: false) : row(o, bits: 8, minimums: true) }
    /// 16 interleaved 8-bit rows × up to 4 activation rows.
    public static func int8Tile(_ o: TileOperands) { o.minimums == nil ? tile(o, bits: 8, minimums: false) : tile(o, bits: 8, minimums: true) }
    /// 16 interleaved 4-bit rows × 1 activation row.
    public static func int4Row(_ o: TileOperands) { o.minimums == nil ? row(o, bits: 4, minimums: false) : row(o, bits: 4, minimums: true) }
    /// 16 interleaved 4-bit rows × up to 4 activation rows.
    public static func int4Tile(_ o: TileOperands) { o.minimums == nil ? tile(o, bits: 4, minimums: false) : tile(o, bits: 4, minimums: true) }
}
