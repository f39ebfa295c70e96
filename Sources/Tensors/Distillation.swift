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
//
// Training computes the gradient and the label loss in one pass: crossEntropyForwardBackward with a teacher.

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
