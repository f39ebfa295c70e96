import Foundation

// Next-token cross-entropy over logits.
//
// Shapes:
//   logits, dLogits  (rows, vocab)
//   targets          (rows)   a target < 0 masks the row out (no loss, no gradient)
//   losses           (rows)
//
// loss_i = logsumexp(z_i) − z_i[t_i]
// dz_i += scale · (softmax(z_i) − onehot(t_i))     (scale = 1 / number of counted rows, typically)

/// Writes per-row losses (0 for masked rows) and returns the number of counted rows.
@discardableResult
public func crossEntropyForward(losses: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                rows: Int, vocab: Int) -> Int {
    let counted = (0..<rows).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
    parallelChunks(rows, minimumChunk: 8) { range in
        for i in range {
            let t = Int(targets[i])
            guard t >= 0 else { losses[i] = 0; continue }
            precondition(t < vocab, "target \(t) outside the vocabulary of \(vocab)")
            losses[i] = logSumExp(logits + i * vocab, vocab) - logits[i * vocab + t]
        }
    }
    return counted
}

public func crossEntropyBackward(dLogits: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, targets: UnsafePointer<Int32>,
                                 rows: Int, vocab: Int, scale: Float) {
    parallelChunks(rows, minimumChunk: 8) { range in
        for i in range {
            let t = Int(targets[i])
            guard t >= 0 else { continue }
            let z = logits + i * vocab
            let dz = dLogits + i * vocab
            let lse = logSumExp(z, vocab)
            for j in 0..<vocab { dz[j] += scale * fastExp(z[j] - lse) }
            dz[t] -= scale
        }
    }
}

/// log Σ exp(x), stable.
@inline(__always)
public func logSumExp(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    let shift = maximum(x, count)
    var sum = FloatVector.zero
    var j = 0
    while j + 16 <= count {
        sum += fastExp(UnsafeRawPointer(x + j).loadUnaligned(as: FloatVector.self) - FloatVector(repeating: shift))
        j += 16
    }
    var total = sum.sum()
    while j < count { total += fastExp(x[j] - shift); j += 1 }
    return shift + logf(total)
}

/// Loss and gradient in one pass, overwriting the logits with their gradient (training never
/// needs both at once, and a batch's logits are the largest buffer of a step):
///   losses_i = logsumexp(z_i) − z_i[t_i];   z_i ← scale · (softmax(z_i) − onehot(t_i)), masked rows ← 0.
/// With a `teacher` distribution p (rows, vocab), the gradient is distillation's instead (see
/// Distillation.swift): z_i ← scale · (softmax(z_i) − p_i); the losses stay the labels'.
/// Returns the number of counted rows.
@discardableResult
public func crossEntropyForwardBackward(logitsToGradient z: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>,
                                        targets: UnsafePointer<Int32>, teacher: UnsafePointer<Float>? = nil,
                                        rows: Int, vocab: Int, scale: Float) -> Int {
    let counted = (0..<rows).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
    parallelChunks(rows, minimumChunk: 8) { range in
        for i in range {
            let row = z + i * vocab
            let t = Int(targets[i])
            guard t >= 0 else {
                losses[i] = 0
                row.update(repeating: 0, count: vocab)
                continue
            }
            precondition(t < vocab, "target \(t) outside the vocabulary of \(vocab)")
            let shift = maximum(row, vocab)
            let target = row[t]
            let sum = expShifted(row, row, vocab, shift: shift)
            losses[i] = shift + logf(sum) - target
            let inverse = scale / sum
            if let teacher {
                let p = teacher + i * vocab
                for j in 0..<vocab { row[j] = row[j] * inverse - scale * p[j] }
            } else {
                for j in 0..<vocab { row[j] *= inverse }
                row[t] -= scale
            }
        }
    }
    return counted
}
