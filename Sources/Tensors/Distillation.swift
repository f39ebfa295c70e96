import Foundation

// In-place distillation (BigNAS): a smaller subnet learns the largest subnet's next-token
// distribution on the same batch, instead of the one-hot labels.
//
// Shapes:
//   logits z, gradient  (rows, vocab)
//   teacher p           (rows, vocab)   probabilities, each counted row sums to 1
//   targets             (rows)          a target < 0 masks the row out; otherwise the label, for reporting
//
// distillation loss  d_i = −Σ_j p_ij · log softmax(z_i)_j = logsumexp(z_i) − Σ_j p_ij z_ij
//                    (the KL divergence KL(p_i ‖ softmax(z_i)) plus the teacher's entropy, a constant)
// gradient           dz_i = scale · (softmax(z_i) − p_i)
// label loss         l_i = logsumexp(z_i) − z_i[t_i]    reported, so a distilled step's training loss
//                    reads on the same scale as a step trained on the labels

/// Per-row distillation losses (0 for masked rows); returns the number of counted rows.
@discardableResult
public func distillationForward(losses: UnsafeMutablePointer<Float>, logits: UnsafePointer<Float>, teacher: UnsafePointer<Float>,
                                targets: UnsafePointer<Int32>, rows: Int, vocab: Int) -> Int {
    let counted = (0..<rows).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
    parallelChunks(rows, minimumChunk: 8) { range in
        for i in range {
            guard targets[i] >= 0 else { losses[i] = 0; continue }
            let z = logits + i * vocab, p = teacher + i * vocab
            var expected = 0.0
            for j in 0..<vocab { expected += Double(p[j]) * Double(z[j]) }
            losses[i] = logSumExp(z, vocab) - Float(expected)
        }
    }
    return counted
}

/// Distillation gradient in one pass, overwriting the logits with it; `labelLosses` gets each
/// row's cross-entropy against its label. Masked rows get zero loss and zero gradient.
/// Returns the number of counted rows.
@discardableResult
public func distillationForwardBackward(logitsToGradient z: UnsafeMutablePointer<Float>, teacher: UnsafePointer<Float>,
                                        labelLosses: UnsafeMutablePointer<Float>, targets: UnsafePointer<Int32>,
                                        rows: Int, vocab: Int, scale: Float) -> Int {
    let counted = (0..<rows).reduce(0) { $0 + (targets[$1] >= 0 ? 1 : 0) }
    parallelChunks(rows, minimumChunk: 8) { range in
        for i in range {
            let row = z + i * vocab, p = teacher + i * vocab
            let t = Int(targets[i])
            guard t >= 0 else {
                labelLosses[i] = 0
                row.update(repeating: 0, count: vocab)
                continue
            }
            precondition(t < vocab, "target \(t) outside the vocabulary of \(vocab)")
            let shift = maximum(row, vocab)
            let label = row[t]
            let sum = expShifted(row, row, vocab, shift: shift)
            labelLosses[i] = shift + logf(sum) - label
            let inverse = scale / sum
            for j in 0..<vocab { row[j] = row[j] * inverse - scale * p[j] }
        }
    }
    return counted
}

