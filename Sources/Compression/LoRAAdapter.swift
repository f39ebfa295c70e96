import Foundation
import Tensors
import Transformer

/// Low-rank adapter on a frozen projection (LoRA as PEFT defines it):
///   y = W x + s · B (A · dropout(x)),   A (rank, in), B (out, rank), s = alpha / rank.
/// A starts Kaiming-uniform, B at zero, so the model is unchanged until training moves B.
///
/// Shapes of what the last training forward keeps:
///   mask (rows, in)   dropout's keep mask scaled by 1/(1−p) (absent without dropout)
///   h    (rows, rank) A · dropout(x)
/// Backward:  dh = s · dY B,   dB += s · dYᵀ h,   dA += dhᵀ u,   dX += (dh A) ⊙ mask   (u = x ⊙ mask)
public final class LoRAAdapter: ProjectionAdapter {
    public let inFeatures: Int
    public let outFeatures: Int
    public let rank: Int
    public let alpha: Float
    public var dropout: Float
    public let a: Tensor        // (rank, in)
    public let b: Tensor        // (out, rank)
    public let gradA: Tensor
    public let gradB: Tensor
    /// Folded into the frozen weight: the adapter then adds nothing.
    public private(set) var isMerged = false

    private var rng: SeededGenerator
    private var h = Tensor(zeros: [0])
    private var u = Tensor(zeros: [0])
    private var mask = Tensor(zeros: [0])
    private var dh = Tensor(zeros: [0])
    private var du = Tensor(zeros: [0])
    private var keptMask = false

    public var scale: Float { alpha / Float(rank) }
    public var parameterCount: Int { a.count + b.count }

    public init(inFeatures: Int, outFeatures: Int, rank: Int, alpha: Float, dropout: Float, seed: UInt64) {
        precondition(rank >= 1 && rank <= min(inFeatures, outFeatures), "rank \(rank) for a \(outFeatures)×\(inFeatures) projection")
        self.inFeatures = inFeatures
        self.outFeatures = outFeatures
        self.rank = rank
        self.alpha = alpha
        self.dropout = dropout
        a = Tensor(zeros: [rank, inFeatures])
        b = Tensor(zeros: [outFeatures, rank])
        gradA = Tensor(zeros: [rank, inFeatures])
        gradB = Tensor(zeros: [outFeatures, rank])
        rng = SeededGenerator(seed: seed)
        // PEFT: nn.init.kaiming_uniform_(A, a=√5) → U(−1/√in, 1/√in).
        rng.fillUniform(a, bound: 1 / Float(inFeatures).squareRoot())
    }

    private func ensure(_ t: inout Tensor, _ shape: [Int]) {
        if t.shape != shape { t = Tensor(zeros: shape) }
    }

    public func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, training: Bool) {
        guard !isMerged else { return }
        ensure(&h, [rows, rank])
        var source = input
        keptMask = training && dropout > 0
        if keptMask {
            ensure(&u, [rows, inFeatures])
            ensure(&mask, [rows, inFeatures])
            let keep = 1 / (1 - dropout)
            for i in 0..<(rows * inFeatures) {
                let m: Float = rng.nextUniform() < dropout ? 0 : keep
                mask[i] = m
                u[i] = input[i] * m
            }
            source = UnsafePointer(u.data)
        }
        linearForward(out: h.data, input: source, weight: a.data, rows: rows, inFeatures: inFeatures, outFeatures: rank)
        linearForward(out: out, input: h.data, weight: b.data, rows: rows, inFeatures: rank, outFeatures: outFeatures,
                      accumulate: true, scale: scale)
    }

    public func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int) {
        guard !isMerged else { return }
        precondition(h.shape == [rows, rank], "backward without a matching training forward")
        ensure(&dh, [rows, rank])
        // dh = s · dY B
        gemm(transposeA: false, transposeB: false, m: rows, n: rank, k: outFeatures, alpha: scale,
             a: dOut, lda: outFeatures, b: b.data, ldb: rank, c: dh.data, ldc: rank)
        // dB += s · dYᵀ h
        gemm(transposeA: true, transposeB: false, m: outFeatures, n: rank, k: rows, alpha: scale,
             a: dOut, lda: outFeatures, b: h.data, ldb: rank, beta: 1, c: gradB.data, ldc: rank)
        // dA += dhᵀ u
        let source = keptMask ? UnsafePointer(u.data) : input
        gemm(transposeA: true, transposeB: false, m: rank, n: inFeatures, k: rows,
             a: dh.data, lda: rank, b: source, ldb: inFeatures, beta: 1, c: gradA.data, ldc: inFeatures)
        // dX += (dh A) ⊙ mask
        if keptMask {
            ensure(&du, [rows, inFeatures])
            gemm(transposeA: false, transposeB: false, m: rows, n: inFeatures, k: rank,
                 a: dh.data, lda: rank, b: a.data, ldb: inFeatures, c: du.data, ldc: inFeatures)
            for i in 0..<(rows * inFeatures) { dInput[i] += du[i] * mask[i] }
        } else {
            gemm(transposeA: false, transposeB: false, m: rows, n: inFeatures, k: rank,
                 a: dh.data, lda: rank, b: a.data, ldb: inFeatures, beta: 1, c: dInput, ldc: inFeatures)
        }
    }

    /// W += s · B A (merge) or W −= s · B A (unmerge).
    public func fold(into weight: Tensor, sign: Float) {
        precondition(weight.shape == [outFeatures, inFeatures], "fold into a \(weight.shape) weight")
        gemm(transposeA: false, transposeB: false, m: outFeatures, n: inFeatures, k: rank, alpha: sign * scale,
             a: b.data, lda: rank, b: a.data, ldb: inFeatures, beta: 1, c: weight.data, ldc: inFeatures)
    }

    public func markMerged(_ merged: Bool) { isMerged = merged }

    public func zeroGradients() {
        gradA.zero()
        gradB.zero()
    }
}
