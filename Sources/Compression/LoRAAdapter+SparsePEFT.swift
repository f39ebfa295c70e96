import Foundation
import Tensors
import Transformer

/// SQFT's adapters (§1.8): an update that keeps the base's sparsity, and optionally lands on the
/// base's quantization grid.
///
///   SparsePEFT      ΔW = M ⊙ (s·B·A),  M = (W ≠ 0), so merging W + ΔW keeps every zero.
///   QA-SparsePEFT   the layer computes with Q(W_fp + ΔW), Q the base's frozen grid (scales and
///                   zero points): the adapter adds Q(W_fp + ΔW) − Q(W_fp) to the quantized base,
///                   and its gradient passes straight through Q. Merging writes the codes of
///                   Q(W_fp + ΔW): one INT model, as sparse as before.
///
/// The update is materialised as a dense (out, in) matrix every forward, as SQFT's patch does.
/// Shapes: M, W_fp, ΔW, E, G (out, in); x (rows, in); dY (rows, out).
///   forward   E = ΔW (or Q(W_fp + ΔW) − Q(W_fp)),  Y += x Eᵀ
///   backward  G = dYᵀ x ⊙ M,  dB += s·G Aᵀ,  dA += s·Bᵀ G,  dX += dY E
/// (x and dX pass through dropout's mask when training with dropout.)
public final class UpdateConstraint {
    /// 1 where the base weight is non-zero, 0 where it was pruned; (out, in).
    public let mask: Tensor
    /// The unquantized (sparse) base and the grid it was quantized on, for QA-SparsePEFT.
    public let quantization: (base: Tensor, grid: GroupQuantizedMatrix)?

    public init(mask: Tensor, quantization: (base: Tensor, grid: GroupQuantizedMatrix)? = nil) {
        self.mask = mask
        self.quantization = quantization
    }

    /// The mask of a base weight's non-zeros.
    public static func nonZeros(of weight: Tensor) -> Tensor {
        let m = Tensor(zeros: weight.shape)
        for i in 0..<weight.count where weight[i] != 0 { m[i] = 1 }
        return m
    }

    public var isQuantizationAware: Bool { quantization != nil }
}

extension LoRAAdapter {
    /// Makes the update masked (and quantization-aware): SparsePEFT / QA-SparsePEFT.
    public func constrain(_ c: UpdateConstraint?) {
        if let c {
            precondition(c.mask.shape == [outFeatures, inFeatures], "a mask of \(c.mask.shape) for \(outFeatures) × \(inFeatures)")
            precondition(gates == nil, "rank gates and SparsePEFT do not combine")
        }
        constraint = c
    }

    /// E (o, i) for the first o rows and i columns: M ⊙ s·B'A', or Q(W_fp + that) − Q(W_fp).
    /// `rank` columns of B and rows of A (the full storage when merging).
    func constrainedUpdate(into e: UnsafeMutablePointer<Float>, outFeatures o: Int, inFeatures i: Int, rank r: Int) {
        let c = constraint!
        gemm(transposeA: false, transposeB: false, m: o, n: i, k: r, alpha: scale, a: b.data, lda: rank, b: a.data, ldb: inFeatures,
             c: e, ldc: i)
        let full = inFeatures
        if let (base, grid) = c.quantization {
            for row in 0..<o {
                for col in 0..<i {
                    let g = col / grid.group, z = grid.zero(row, group: g), s = grid.scale(row, group: g)
                    let k = row * full + col
                    let merged = base[k] + e[row * i + col] * c.mask[k]
                    let q = grid.quantize(merged, row: row, group: g)
                    // Q(W_fp + ΔW) − Q(W_fp): the base's own code is grid.code(row, col).
                    e[row * i + col] = s * Float(q - z) - s * Float(grid.code(row, col) - z)
                }
            }
        } else {
            for row in 0..<o {
                for col in 0..<i { e[row * i + col] *= c.mask[row * full + col] }
            }
        }
    }

    func constrainedForward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures i: Int, outFeatures o: Int,
                            training: Bool) {
        let source = dropoutInput(input, rows: rows, inFeatures: i, training: training)
        ensure(&denseUpdate, [o, i])
        constrainedUpdate(into: denseUpdate.data, outFeatures: o, inFeatures: i, rank: activeRank)
        // Y += x Eᵀ
        gemm(transposeA: false, transposeB: true, m: rows, n: o, k: i, a: source, lda: i, b: denseUpdate.data, ldb: i, beta: 1, c: out, ldc: o)
    }

    func constrainedBackward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                             inFeatures i: Int, outFeatures o: Int) {
        let c = constraint!
        let r = activeRank
        precondition(denseUpdate.shape == [o, i], "backward without a matching training forward")
        let source = keptMask ? UnsafePointer(u.data) : input
        // G = (dYᵀ x) ⊙ M — through Q unchanged (straight-through) for QA-SparsePEFT
        ensure(&denseGradient, [o, i])
        gemm(transposeA: true, transposeB: false, m: o, n: i, k: rows, a: dOut, lda: o, b: source, ldb: i, c: denseGradient.data, ldc: i)
        for row in 0..<o {
            for col in 0..<i { denseGradient[row * i + col] *= c.mask[row * inFeatures + col] }
        }
        // dB' += s · G A'ᵀ ; dA' += s · B'ᵀ G
        gemm(transposeA: false, transposeB: true, m: o, n: r, k: i, alpha: scale, a: denseGradient.data, lda: i, b: a.data, ldb: inFeatures,
             beta: 1, c: gradB.data, ldc: rank)
        gemm(transposeA: true, transposeB: false, m: r, n: i, k: o, alpha: scale, a: b.data, lda: rank, b: denseGradient.data, ldb: i,
             beta: 1, c: gradA.data, ldc: inFeatures)
        // dX += (dY E) ⊙ dropout's mask
        if keptMask {
            ensure(&du, [rows, i])
            gemm(transposeA: false, transposeB: false, m: rows, n: i, k: o, a: dOut, lda: o, b: denseUpdate.data, ldb: i, c: du.data, ldc: i)
            for k in 0..<(rows * i) { dInput[k] += du[k] * mask[k] }
        } else {
            gemm(transposeA: false, transposeB: false, m: rows, n: i, k: o, a: dOut, lda: o, b: denseUpdate.data, ldb: i, beta: 1, c: dInput, ldc: i)
        }
    }

    /// W ± E at the full rank and width. For QA-SparsePEFT the weight becomes Q(W_fp + ΔW) on
    /// merge and Q(W_fp) on unmerge, exactly (not by adding and subtracting).
    func constrainedFold(into weight: Tensor, sign: Float) {
        if let (_, grid) = constraint!.quantization {
            (sign > 0 ? mergedCodes()! : grid).dequantize(into: weight.data)
        } else {
            let e = Tensor(uninitialized: [outFeatures, inFeatures])
            constrainedUpdate(into: e.data, outFeatures: outFeatures, inFeatures: inFeatures, rank: activeRank)
            for k in 0..<weight.count { weight[k] += sign * e[k] }
        }
    }

    /// QA-SparsePEFT's merged codes: Q(W_fp + ΔW) on the base's grid (nil for other adapters).
    public func mergedCodes() -> GroupQuantizedMatrix? {
        guard let c = constraint, let (base, grid) = c.quantization else { return nil }
        var merged = grid
        let e = Tensor(uninitialized: [outFeatures, inFeatures])
        gemm(transposeA: false, transposeB: false, m: outFeatures, n: inFeatures, k: activeRank, alpha: scale, a: b.data, lda: rank,
             b: a.data, ldb: inFeatures, c: e.data, ldc: inFeatures)
        for row in 0..<outFeatures {
            for col in 0..<inFeatures {
                let k = row * inFeatures + col
                merged.setCode(row, col, grid.quantize(base[k] + e[k] * c.mask[k], row: row, group: col / grid.group))
            }
        }
        return merged
    }
}
