// Linear layer kernels: y = x · Wᵀ, the shape of every projection in a LLaMA block.
//
// Shapes:
//   input   (rows, inFeatures)
//   weight  (outFeatures, inFeatures)   — a PyTorch [out, in] weight, GGUF ne = [in, out]
//   out     (rows, outFeatures)
// `weightStride` is the weight's row length in memory when only its first `inFeatures` columns
// are used (an elastic width slicing a frozen weight without copying it).

/// out = scale · input · weightᵀ (+ out when `accumulate`).
public func linearForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                          rows: Int, inFeatures: Int, outFeatures: Int, accumulate: Bool = false, scale: Float = 1,
                          weightStride: Int? = nil) {
    gemm(transposeA: false, transposeB: true, m: rows, n: outFeatures, k: inFeatures, alpha: scale,
         a: input, lda: inFeatures, b: weight, ldb: weightStride ?? inFeatures, beta: accumulate ? 1 : 0, c: out, ldc: outFeatures)
}

/// dInput += dOut · weight; dWeight += dOutᵀ · input (skipped for frozen weights: pass nil).
public func linearBackward(dInput: UnsafeMutablePointer<Float>?, dWeight: UnsafeMutablePointer<Float>?,
                           dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           rows: Int, inFeatures: Int, outFeatures: Int, weightStride: Int? = nil) {
    let ld = weightStride ?? inFeatures
    if let dInput {
        gemm(transposeA: false, transposeB: false, m: rows, n: inFeatures, k: outFeatures,
             a: dOut, lda: outFeatures, b: weight, ldb: ld, beta: 1, c: dInput, ldc: inFeatures)
    }
    if let dWeight {
        gemm(transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: rows,
             a: dOut, lda: outFeatures, b: input, ldb: inFeatures, beta: 1, c: dWeight, ldc: ld)
    }
}
