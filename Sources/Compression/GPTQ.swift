import Foundation
import Tensors
import Transformer

/// GPTQ (Frantar et al.): quantize a weight's columns one at a time and spread each column's
/// rounding error over the columns not yet quantized, weighted by the inverse Hessian of the
/// layer's inputs, H = Σ x xᵀ over the calibration tokens (§1.8's settings: damping 10 % of the
/// mean diagonal, blocks of 128 columns, columns in order, no act-order).
///
///     U = chol(H⁻¹) (upper),  for each column i:  q_i = Q(w_i),  e = (w_i − q_i) / U_ii,
///     w_j −= e · U_ij  for j > i.
///
/// The grid of a group is chosen (as `GroupQuantizer` does) from its weights as they were when
/// the block of 128 holding its first column started (GPTQ's and AutoGPTQ's `find_params` read W,
/// which the updates within a block reach only when the block ends). Weights that are zero to begin with (pruned) are kept zero:
/// they quantize to the zero point and their update error spreads like any other column's
/// (SparseGPT's joint rule), so a sparse model stays exactly as sparse.
public enum GPTQ {
    public static let blockSize = 128
    public static let dampening = 0.1

    /// The squared-input Gram matrix of a projection, H += Xᵀ X over every row it sees.
    /// Watches a forward pass and adds nothing to it.
    final class InputGram: ProjectionAdapter {
        let gram: Tensor   // (in, in)
        var rowsSeen = 0

        init(inFeatures: Int) { gram = Tensor(zeros: [inFeatures, inFeatures]) }

        func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures i: Int, outFeatures: Int, training: Bool) {
            gemm(transposeA: true, transposeB: false, m: i, n: i, k: rows, a: input, lda: i, b: input, ldb: i, beta: 1, c: gram.data, ldc: i)
            rowsSeen += rows
        }

        func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                      inFeatures: Int, outFeatures: Int) {
            preconditionFailure("the Gram matrix is gathered in inference only")
        }
    }

    /// U with H⁻¹ = Uᵀ U, U upper triangular, after damping H (n × n). Dead inputs (H_ii = 0)
    /// get H_ii = 1; they are returned so their weights can be zeroed as GPTQ does.
    static func inverseCholesky(_ gram: Tensor, n: Int, cancellation: CancellationToken? = nil) throws -> (u: [Double], dead: [Int]) {
        var h = (0..<(n * n)).map { Double(gram[$0]) }
        var dead = [Int]()
        for i in 0..<n where h[i * n + i] == 0 {
            h[i * n + i] = 1
            dead.append(i)
        }
        let meanDiagonal = (0..<n).reduce(0.0) { $0 + h[$1 * n + $1] } / Double(n)
        for i in 0..<n { h[i * n + i] += dampening * meanDiagonal }
        // H = L Lᵀ; H⁻¹ = L⁻ᵀ L⁻¹; H⁻¹ = L₂ L₂ᵀ; U = L₂ᵀ.
        let l = choleskyLower(h, n: n)
        try cancellation?.check()
        let inverseL = invertLower(l, n: n)
        try cancellation?.check()
        var inverse = [Double](repeating: 0, count: n * n)
        // (L⁻ᵀ L⁻¹)_ij = Σ_k L⁻¹_ki L⁻¹_kj, k ≥ max(i, j)
        for k in 0..<n {
            let row = k * n
            for i in 0...k {
                let a = inverseL[row + i]
                if a == 0 { continue }
                for j in 0...i { inverse[i * n + j] += a * inverseL[row + j] }
            }
        }
        for i in 0..<n { for j in 0..<i { inverse[j * n + i] = inverse[i * n + j] } }
        try cancellation?.check()
        let l2 = choleskyLower(inverse, n: n)
        var u = [Double](repeating: 0, count: n * n)
        for i in 0..<n { for j in 0...i { u[j * n + i] = l2[i * n + j] } }
        return (u, dead)
    }

    /// The lower Cholesky factor of a symmetric positive definite matrix (row-major).
    static func choleskyLower(_ a: [Double], n: Int) -> [Double] {
        var l = [Double](repeating: 0, count: n * n)
        for j in 0..<n {
            var s = a[j * n + j]
            for k in 0..<j { s -= l[j * n + k] * l[j * n + k] }
            // Rounding can leave a damped Gram matrix a hair short of definite: clamp.
            let pivot = max(s, 1e-12 * max(1, abs(a[j * n + j]))).squareRoot()
            l[j * n + j] = pivot
            for i in (j + 1)..<max(j + 1, n) {
                var t = a[i * n + j]
                for k in 0..<j { t -= l[i * n + k] * l[j * n + k] }
                l[i * n + j] = t / pivot
            }
        }
        return l
    }

    /// The inverse of a lower triangular matrix, by forward substitution.
    static func invertLower(_ l: [Double], n: Int) -> [Double] {
        var inverse = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            inverse[i * n + i] = 1 / l[i * n + i]
            for j in 0..<i {
                var s = 0.0
                for k in j..<i { s += l[i * n + k] * inverse[k * n + j] }
                inverse[i * n + j] = -s / l[i * n + i]
            }
        }
        return inverse
    }

    /// Quantizes `weight` (rows, columns) with the inverse-Hessian factor `u` (columns²).
    /// `weight` is left holding the dequantized result.
    /// Cancellation is checked before each block of 128 columns; the weight is then half-updated,
    /// and the caller puts it back (ModelQuantization restores the whole layer).
    public static func quantize(_ weight: Tensor, rows: Int, columns n: Int, u: [Double], dead: [Int],
                                parameters p: GroupQuantizer.Parameters, cancellation: CancellationToken? = nil) throws -> GroupQuantizedMatrix {
        precondition(weight.count == rows * n && u.count == n * n, "a \(rows) × \(n) weight")
        var m = GroupQuantizedMatrix(rows: rows, columns: n, bits: p.bits, group: p.group, symmetric: p.symmetric)
        let w = weight.data
        let pruned = (0..<(rows * n)).map { w[$0] == 0 }
        for c in dead { for r in 0..<rows { w[r * n + c] = 0 } }
        let uFloat = u.map { Float($0) }
        var errors = [Float](repeating: 0, count: rows * blockSize)
        var groupValues = [Float](repeating: 0, count: p.group)
        for start in stride(from: 0, to: n, by: blockSize) {
            try cancellation?.check()
            let end = min(n, start + blockSize), width = end - start
            // The block's columns as the block starts: GPTQ's code picks each group's grid from W,
            // which the updates inside a block do not touch until the block ends.
            var snapshot = [Float](repeating: 0, count: rows * width)
            for r in 0..<rows { for j in 0..<width { snapshot[r * width + j] = w[r * n + start + j] } }
            for i in start..<end {
                if i % p.group == 0 {
                    let g = i / p.group, count = min(n, i + p.group) - i
                    for r in 0..<rows {
                        for j in 0..<count {
                            let c = i + j
                            groupValues[j] = pruned[r * n + c] ? 0 : (c < end ? snapshot[r * width + c - start] : w[r * n + c])
                        }
                        groupValues.withUnsafeBufferPointer { GroupQuantizer.chooseGrid(&m, row: r, group: g, weights: $0.baseAddress!, count: count) }
                    }
                }
                let g = i / p.group
                let d = uFloat[i * n + i]
                for r in 0..<rows {
                    let x = w[r * n + i]
                    let q = pruned[r * n + i] ? m.zero(r, group: g) : m.quantize(x, row: r, group: g)
                    m.setCode(r, i, q)
                    let dequantized = m.scale(r, group: g) * Float(q - m.zero(r, group: g))
                    let e = (x - dequantized) / d
                    w[r * n + i] = dequantized
                    errors[r * blockSize + (i - start)] = e
                    // The rest of the block, now: w_j −= e · U_ij.
                    if e != 0 { for j in (i + 1)..<end { w[r * n + j] -= e * uFloat[i * n + j] } }
                }
            }
            // The columns after the block, in one product: W[:, end:] −= E · U[start:end, end:].
            if end < n {
                errors.withUnsafeBufferPointer { e in
                    uFloat.withUnsafeBufferPointer { uu in
                        gemm(transposeA: false, transposeB: false, m: rows, n: n - end, k: width, alpha: -1,
                             a: e.baseAddress!, lda: blockSize, b: uu.baseAddress! + start * n + end, ldb: n,
                             beta: 1, c: w + end, ldc: n)
                    }
                }
            }
        }
        return m
    }
}
