import Foundation

// Causal grouped-query self-attention.
//
// Shapes:
//   q, dq         (batch, seq, heads, headDim)      row stride heads·headDim
//   k, v, dk, dv  (batch, seq, kvHeads, headDim)    row stride kvHeads·headDim
//   probs         (batch, heads, seq, seq)          saved by forward; zero above the diagonal
//   out, dOut     (batch, seq, heads, headDim)
// Query head h reads key/value head h / (heads / kvHeads).
//
// Forward, per (b, h), with s = 1/√headDim:
//   S = s · Q Kᵀ,   P = softmax_row(S) over j ≤ i,   O = P V
// Backward:
//   dP = dO Vᵀ,   dS = P ⊙ (dP − rowsum(dP ⊙ P)),
//   dQ += s · dS K,   dK += s · dSᵀ Q,   dV += Pᵀ dO
//
// Rows go in blocks so each GEMM only touches keys 0..<end of its block: the causal
// triangle costs about half of the full square.

public struct AttentionShape: Sendable {
    public var batch, seq, heads, kvHeads, headDim: Int

    public init(batch: Int, seq: Int, heads: Int, kvHeads: Int, headDim: Int) {
        precondition(heads % kvHeads == 0, "\(heads) query heads do not group over \(kvHeads) key/value heads")
        self.batch = batch
        self.seq = seq
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDim = headDim
    }

    var qStride: Int { heads * headDim }
    var kvStride: Int { kvHeads * headDim }
    var group: Int { heads / kvHeads }
    var scale: Float { 1 / Float(headDim).squareRoot() }
    /// Query rows per causal block.
    static let block = 64
}

public func attentionForward(out: UnsafeMutablePointer<Float>, probs: UnsafeMutablePointer<Float>,
                             q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                             shape: AttentionShape) {
    let T = shape.seq, D = shape.headDim
    // Heads run in parallel, each with single-threaded BLAS: one head's products are too small
    // for OpenBLAS's threads to pay off.
    perHead(shape) { b, h in
        let kvh = h / shape.group
        let qBase = q + (b * T) * shape.qStride + h * D
        let kBase = k + (b * T) * shape.kvStride + kvh * D
        let vBase = v + (b * T) * shape.kvStride + kvh * D
        let oBase = out + (b * T) * shape.qStride + h * D
        let P = probs + (b * shape.heads + h) * T * T
        var r0 = 0
        while r0 < T {
            let r1 = min(T, r0 + AttentionShape.block)
            // S[r0..<r1, 0..<r1] = s · Q[r0..<r1] K[0..<r1]ᵀ
            gemm(transposeA: false, transposeB: true, m: r1 - r0, n: r1, k: D, alpha: shape.scale,
                 a: qBase + r0 * shape.qStride, lda: shape.qStride, b: kBase, ldb: shape.kvStride,
                 c: P + r0 * T, ldc: T)
            for i in r0..<r1 {
                let row = P + i * T
                softmaxRow(row, row, i + 1)
                (row + i + 1).update(repeating: 0, count: T - i - 1)
            }
            // O[r0..<r1] = P[r0..<r1, 0..<r1] V[0..<r1]
            gemm(transposeA: false, transposeB: false, m: r1 - r0, n: D, k: r1,
                 a: P + r0 * T, lda: T, b: vBase, ldb: shape.kvStride, c: oBase + r0 * shape.qStride, ldc: shape.qStride)
            r0 = r1
        }
    }
}

/// Runs `body(batch, head)` for every pair, spread over the cores, BLAS single-threaded meanwhile.
private func perHead(_ shape: AttentionShape, _ body: (Int, Int) -> Void) {
    let pairs = shape.batch * shape.heads
    let previous = BLASThreads.count
    BLASThreads.count = 1
    defer { BLASThreads.count = previous }
    DispatchQueue.concurrentPerform(iterations: pairs) { pair in
        body(pair / shape.heads, pair % shape.heads)
    }
}

/// Accumulates into dq, dk, dv.
public func attentionBackward(dq: UnsafeMutablePointer<Float>, dk: UnsafeMutablePointer<Float>, dv: UnsafeMutablePointer<Float>,
                              dOut: UnsafePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>, v: UnsafePointer<Float>,
                              probs: UnsafePointer<Float>, shape: AttentionShape) {
    let T = shape.seq, D = shape.headDim
    let dS = UnsafeMutablePointer<Float>.allocate(capacity: T * T)
    defer { dS.deallocate() }
    for b in 0..<shape.batch {
        for h in 0..<shape.heads {
            let kvh = h / shape.group
            let qBase = q + (b * T) * shape.qStride + h * D
            let dqBase = dq + (b * T) * shape.qStride + h * D
            let kBase = k + (b * T) * shape.kvStride + kvh * D
            let dkBase = dk + (b * T) * shape.kvStride + kvh * D
            let vBase = v + (b * T) * shape.kvStride + kvh * D
            let dvBase = dv + (b * T) * shape.kvStride + kvh * D
            let dO = dOut + (b * T) * shape.qStride + h * D
            let P = probs + (b * shape.heads + h) * T * T

            // dV += Pᵀ dO   (P is zero above the diagonal, so the full product is exact)
            gemm(transposeA: true, transposeB: false, m: T, n: D, k: T,
                 a: P, lda: T, b: dO, ldb: shape.qStride, beta: 1, c: dvBase, ldc: shape.kvStride)
            // dP = dO Vᵀ, only the causal part is needed
            var r0 = 0
            while r0 < T {
                let r1 = min(T, r0 + AttentionShape.block)
                gemm(transposeA: false, transposeB: true, m: r1 - r0, n: r1, k: D,
                     a: dO + r0 * shape.qStride, lda: shape.qStride, b: vBase, ldb: shape.kvStride, c: dS + r0 * T, ldc: T)
                r0 = r1
            }
            // dS = P ⊙ (dP − rowsum(dP ⊙ P)), zero above the diagonal
            parallelChunks(T, minimumChunk: 32) { rows in
                for i in rows {
                    let p = P + i * T, d = dS + i * T
                    var dot: Float = 0
                    for j in 0...i { dot += d[j] * p[j] }
                    for j in 0...i { d[j] = p[j] * (d[j] - dot) }
                    (d + i + 1).update(repeating: 0, count: T - i - 1)
                }
            }
            // dQ += s · dS K
            gemm(transposeA: false, transposeB: false, m: T, n: D, k: T, alpha: shape.scale,
                 a: dS, lda: T, b: kBase, ldb: shape.kvStride, beta: 1, c: dqBase, ldc: shape.qStride)
            // dK += s · dSᵀ Q
            gemm(transposeA: true, transposeB: false, m: T, n: D, k: T, alpha: shape.scale,
                 a: dS, lda: T, b: qBase, ldb: shape.qStride, beta: 1, c: dkBase, ldc: shape.kvStride)
        }
    }
}

/// One new query row per head against a cache of `length` keys and values (generation).
///
/// Shapes: q, out (heads, headDim); keys, values (length, kvHeads, headDim); scores scratch (length).
public func attentionDecode(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>,
                            keys: UnsafePointer<Float>, values: UnsafePointer<Float>, scores: UnsafeMutablePointer<Float>,
                            length: Int, heads: Int, kvHeads: Int, headDim: Int) {
    let group = heads / kvHeads
    let stride = kvHeads * headDim
    let scale = 1 / Float(headDim).squareRoot()
    for h in 0..<heads {
        let kvh = h / group
        let qh = q + h * headDim
        for t in 0..<length {
            let key = keys + t * stride + kvh * headDim
            var dot: Float = 0
            var d = 0
            if headDim >= 16 {
                // Sixteen partial sums: a scalar chain of 64 dependent adds per key was most of the step.
                var partial = SIMD16<Float>(repeating: 0)
                while d + 16 <= headDim {
                    partial.addProduct(UnsafeRawPointer(qh + d).loadUnaligned(as: SIMD16<Float>.self),
                                       UnsafeRawPointer(key + d).loadUnaligned(as: SIMD16<Float>.self))
                    d += 16
                }
                dot = partial.sum()
            }
            while d < headDim { dot += qh[d] * key[d]; d += 1 }
            scores[t] = dot * scale
        }
        softmaxRow(scores, scores, length)
        let o = out + h * headDim
        o.update(repeating: 0, count: headDim)
        for t in 0..<length {
            let value = values + t * stride + kvh * headDim
            let p = scores[t]
            for d in 0..<headDim { o[d] += p * value[d] }
        }
    }
}
