import _Builtin_intrinsics.intel

/// The sums of four vectors, into out[0…3]: each vector's halves added, then three horizontal
/// adds and one more add, about 13 instructions where four separate sums take some 30.
///
///     hadd(hadd(A, B), hadd(C, D)), per 128-bit lane = [ΣA, ΣB, ΣC, ΣD] of that lane
@inline(__always) func storeSums(_ a: __m512, _ b: __m512, _ c: __m512, _ d: __m512, to out: UnsafeMutablePointer<Float>) {
    @inline(__always) func half(_ v: __m512) -> __m256 { v.lowHalf + v.highHalf }
    let h = _mm256_hadd_ps(_mm256_hadd_ps(half(a), half(b)), _mm256_hadd_ps(half(c), half(d)))
    _mm_storeu_ps(out, h.lowHalf + h.highHalf)
}

extension TileOperands {
    /// Weight row k's sums against activation rows 0…3 (those that exist).
    @inline(__always) func storeRow(_ k: Int, _ s0: __m512, _ s1: __m512, _ s2: __m512, _ s3: __m512) {
        if actRows == 4 { storeSums(s0, s1, s2, s3, to: out + 4 * k) } else { store(k, s0, s1, s2, s3) }
    }
}
