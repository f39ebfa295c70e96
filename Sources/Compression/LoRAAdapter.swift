import Foundation
import Tensors
import Transformer

/// Low-rank adapter on a frozen projection (LoRA as PEFT defines it):
///   y = W x + s · B (A · dropout(x)),   A (rank, in), B (out, rank), s = alpha / rank.
/// Elastic use: the first r' rows of A and columns of B (rank), and the first in'/out' columns
/// and rows (an elastic MLP width), without copies: the products read the slices in place.
/// A starts Kaiming-uniform, B at zero, so the model is unchanged until training moves B.
///
/// Rank gates (ALoRA): an optional 0/1 gate per rank, y = W x + s · B G (A · dropout(x)) with
/// G = diag(g); a closed gate removes that rank from the product. Gates are frozen: not trained.
///
/// Shapes of what the last training forward keeps:
///   mask (rows, in)   dropout's keep mask scaled by 1/(1−p) (absent without dropout)
///   h    (rows, rank) G · A · dropout(x)
/// Backward:  dh = G · s · dY B,   dB += s · dYᵀ h,   dA += dhᵀ u,   dX += (dh A) ⊙ mask   (u = x ⊙ mask)
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
    /// The rank in use: a prefix of A's rows and B's columns (elastic rank). The scale stays
    /// alpha / rank, as LoNAS, Shears and SQFT train and extract sub-adapters.
    public var activeRank: Int {
        didSet { precondition((1...rank).contains(activeRank), "active rank \(activeRank) outside 1…\(rank)") }
    }

    /// One gate per rank (ALoRA), or nil for all open. Set with `setGates`.
    public private(set) var gates: [Float]?
    /// Gates per block of rows, for scoring many gate settings in one batched forward (ALoRA):
    /// the rows split into `groupGates.count` equal blocks and block g uses `groupGates[g]`
    /// instead of `gates`. Inference only.
    public private(set) var groupGates: [[Float]]?

    /// SQFT: the update masked by the base's non-zero pattern, and optionally quantization-aware
    /// (SparsePEFT, QA-SparsePEFT). Set with `constrain`; see LoRAAdapter+SparsePEFT.swift.
    public internal(set) var constraint: UpdateConstraint?

    var rng: SeededGenerator
    var h = Tensor(zeros: [0])
    var u = Tensor(zeros: [0])
    var mask = Tensor(zeros: [0])
    /// The dense (out, in) update of the last constrained forward: M ⊙ s·B·A, or for
    /// QA-SparsePEFT Q(W + M ⊙ s·B·A) − Q(W).
    var denseUpdate = Tensor(zeros: [0])
    var denseGradient = Tensor(zeros: [0])
    private var dh = Tensor(zeros: [0])
    var du = Tensor(zeros: [0])
    var keptMask = false

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
        activeRank = rank
        rng = SeededGenerator(seed: seed)
        // PEFT: nn.init.kaiming_uniform_(A, a=√5) → U(−1/√in, 1/√in).
        rng.fillUniform(a, bound: 1 / Float(inFeatures).squareRoot())
    }

    func ensure(_ t: inout Tensor, _ shape: [Int]) {
        if t.shape != shape { t = Tensor(zeros: shape) }
    }

    public func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures i: Int, outFeatures o: Int,
                        training: Bool) {
        guard !isMerged else { return }
        if constraint != nil {
            constrainedForward(input: input, out: out, rows: rows, inFeatures: i, outFeatures: o, training: training)
            return
        }
        let r = activeRank
        ensure(&h, [rows, r])
        let source = dropoutInput(input, rows: rows, inFeatures: i, training: training)
        // h = u A'ᵀ, A' = A[:r, :i] (rows of A, row stride inFeatures)
        gemm(transposeA: false, transposeB: true, m: rows, n: r, k: i, a: source, lda: i, b: a.data, ldb: inFeatures,
             c: h.data, ldc: r)
        // h ← h G: closed gates zero their rank's column.
        if let groupGates {
            precondition(!training && rows % groupGates.count == 0, "group gates split \(rows) rows into \(groupGates.count) blocks, inference only")
            let block = rows / groupGates.count
            for (g, gates) in groupGates.enumerated() { applyGates(gates, to: h.data + g * block * r, rows: block, rank: r) }
        } else if let gates {
            applyGates(gates, to: h.data, rows: rows, rank: r)
        }
        // out += s · h B'ᵀ, B' = B[:o, :r] (row stride rank)
        gemm(transposeA: false, transposeB: true, m: rows, n: o, k: r, alpha: scale, a: h.data, lda: r, b: b.data, ldb: rank,
             beta: 1, c: out, ldc: o)
    }

    /// u = x ⊙ mask, the mask (0 or 1/(1−p)) kept for backward, when training with dropout;
    /// the input itself otherwise.
    func dropoutInput(_ input: UnsafePointer<Float>, rows: Int, inFeatures i: Int, training: Bool) -> UnsafePointer<Float> {
        keptMask = training && dropout > 0
        guard keptMask else { return input }
        ensure(&u, [rows, i])
        ensure(&mask, [rows, i])
        let keep = 1 / (1 - dropout)
        for k in 0..<(rows * i) {
            let m: Float = rng.nextUniform() < dropout ? 0 : keep
            mask[k] = m
            u[k] = input[k] * m
        }
        return UnsafePointer(u.data)
    }

    private func applyGates(_ gates: [Float], to h: UnsafeMutablePointer<Float>, rows: Int, rank r: Int) {
        for row in 0..<rows {
            for j in 0..<r where gates[j] != 1 { h[row * r + j] *= gates[j] }
        }
    }

    /// Opens and closes ranks (nil: all open). Closing every gate leaves the adapter adding nothing.
    public func setGates(_ gates: [Float]?) {
        if let gates { precondition(gates.count == rank, "\(gates.count) gates for rank \(rank)") }
        self.gates = gates.flatMap { $0.allSatisfy { $0 == 1 } ? nil : $0 }
    }

    /// Gates per equal block of rows for the next forward passes (nil: the adapter's own gates).
    public func setGroupGates(_ groups: [[Float]]?) {
        if let groups { precondition(!groups.isEmpty && groups.allSatisfy { $0.count == rank }, "group gates of rank \(rank)") }
        groupGates = groups
    }

    /// Ranks whose gate is open.
    public var openRanks: Int { gates.map { $0.reduce(0) { $0 + ($1 != 0 ? 1 : 0) } } ?? rank }

    /// Gives rank `j` fresh parameters, as LoRA initializes them (A's row Kaiming-uniform, B's
    /// column zero), so opening it changes nothing until training moves B.
    public func reinitializeRank(_ j: Int) {
        let bound = 1 / Float(inFeatures).squareRoot()
        for c in 0..<inFeatures { a[j * inFeatures + c] = (2 * rng.nextUniform() - 1) * bound }
        for row in 0..<outFeatures { b[row * rank + j] = 0 }
    }

    public func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                         inFeatures i: Int, outFeatures o: Int) {
        guard !isMerged else { return }
        if constraint != nil {
            constrainedBackward(dOut: dOut, input: input, dInput: dInput, rows: rows, inFeatures: i, outFeatures: o)
            return
        }
        let r = activeRank
        precondition(h.shape == [rows, r], "backward without a matching training forward")
        ensure(&dh, [rows, r])
        // dh = s · dY B' (then G: a closed rank passes no gradient back to A or x)
        gemm(transposeA: false, transposeB: false, m: rows, n: r, k: o, alpha: scale,
             a: dOut, lda: o, b: b.data, ldb: rank, c: dh.data, ldc: r)
        if let gates { applyGates(gates, to: dh.data, rows: rows, rank: r) }
        // dB' += s · dYᵀ h
        gemm(transposeA: true, transposeB: false, m: o, n: r, k: rows, alpha: scale,
             a: dOut, lda: o, b: h.data, ldb: r, beta: 1, c: gradB.data, ldc: rank)
        // dA' += dhᵀ u
        let source = keptMask ? UnsafePointer(u.data) : input
        gemm(transposeA: true, transposeB: false, m: r, n: i, k: rows,
             a: dh.data, lda: r, b: source, ldb: i, beta: 1, c: gradA.data, ldc: inFeatures)
        // dX += (dh A') ⊙ mask
        if keptMask {
            ensure(&du, [rows, i])
            gemm(transposeA: false, transposeB: false, m: rows, n: i, k: r,
                 a: dh.data, lda: r, b: a.data, ldb: inFeatures, c: du.data, ldc: i)
            for k in 0..<(rows * i) { dInput[k] += du[k] * mask[k] }
        } else {
            gemm(transposeA: false, transposeB: false, m: rows, n: i, k: r,
                 a: dh.data, lda: r, b: a.data, ldb: inFeatures, beta: 1, c: dInput, ldc: i)
        }
    }

    /// W += s · B G A (merge) or W −= s · B G A (unmerge), over the active rank: what the forward
    /// adds (an elastic subnet's smaller rank folds only its own slices).
    public func fold(into weight: Tensor, sign: Float) {
        precondition(weight.shape == [outFeatures, inFeatures], "fold into a \(weight.shape) weight")
        if constraint != nil {
            constrainedFold(into: weight, sign: sign)
            return
        }
        var gatedB = b
        if let gates {
            gatedB = b.copy()
            applyGates(gates, to: gatedB.data, rows: outFeatures, rank: rank)
        }
        gemm(transposeA: false, transposeB: false, m: outFeatures, n: inFeatures, k: activeRank, alpha: sign * scale,
             a: gatedB.data, lda: rank, b: a.data, ldb: inFeatures, beta: 1, c: weight.data, ldc: inFeatures)
    }

    public func markMerged(_ merged: Bool) { isMerged = merged }

    public func zeroGradients() {
        gradA.zero()
        gradB.zero()
    }
}
