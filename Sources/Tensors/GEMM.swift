import CBLAS

// The only file that talks to BLAS. Every matrix product in Sculpt goes through `gemm`.
//
// Row-major throughout: a matrix with `rows` × `columns` and leading dimension `ld` stores
// element (i, j) at i·ld + j.

/// C = alpha · op(A) · op(B) + beta · C, with op(X) = X or Xᵀ. Sizes: op(A) is m×k, op(B) k×n, C m×n.
@inline(__always)
public func gemm(transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int,
                 alpha: Float = 1, a: UnsafePointer<Float>, lda: Int,
                 b: UnsafePointer<Float>, ldb: Int,
                 beta: Float = 0, c: UnsafeMutablePointer<Float>, ldc: Int) {
    guard m > 0, n > 0 else { return }
    if k == 0 {
        // BLAS would leave C untouched for k = 0 only if beta = 1; spell out C = beta·C.
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] *= beta } }
        return
    }
    cblas_sgemm(CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
                Int32(m), Int32(n), Int32(k), alpha, a, Int32(lda), b, Int32(ldb), beta, c, Int32(ldc))
}

/// Threads OpenBLAS uses for one product.
public enum BLASThreads {
    public static var count: Int {
        get { Int(openblas_get_num_threads()) }
        set { openblas_set_num_threads(Int32(newValue)) }
    }
}

/// The kernels OpenBLAS chose when it loaded ("Haswell", "SkylakeX", "Cooperlake", …): from the
/// CPU, unless OPENBLAS_CORETYPE names others. Benchmarks report it, since the AVX2 (Haswell) and
/// AVX-512 kernels differ by about 1.7× in a LoRA training step.
public var blasKernels: String { openblas_get_corename().map { String(cString: $0) } ?? "unknown" }
