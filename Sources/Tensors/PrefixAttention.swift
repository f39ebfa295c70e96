import Foundation

// Causal grouped-query attention of several continuations over one shared prefix (scoring the
// choices of a multiple-choice question: the prompt is computed once, each choice continues it).
//
// Shapes:
//   q, out        (batch, seq, heads, headDim)      the continuations' queries and outputs
//   k, v          (batch, seq, kvHeads, headDim)    the continuations' own keys and values
//   prefixK/V     (prefix, kvHeads, headDim)        the shared prompt's keys and values (after RoPE)
// Query head h reads key/value head h / (heads / kvHeads).
//
// Row (b, i) attends to every prefix position and to its own continuation's positions 0…i:
//   S = s · q [K_prefix; K_b[0…i]]ᵀ,   P = softmax(S),   out = P [V_prefix; V_b[0…i]],   s = 1/√headDim
// Forward only: nothing trains through it.
public func prefixAttentionForward(out: UnsafeMutablePointer<Float>, q: UnsafePointer<Float>, k: UnsafePointer<Float>,
                                   v: UnsafePointer<Float>, prefixK: UnsafePointer<Float>, prefixV: UnsafePointer<Float>,
                                   prefix: Int, shape: AttentionShape) {
    let (d, qStride, kvStride, group) = (shape.headDim, shape.qStride, shape.kvStride, shape.group)
    let scale = shape.scale
    parallelChunks(shape.batch * shape.heads, minimumChunk: 1) { range in
        var scores = [Float](repeating: 0, count: prefix + shape.seq)
        for job in range {
            let (b, h) = (job / shape.heads, job % shape.heads)
            let kvHead = h / group
            for i in 0..<shape.seq {
                let row = b * shape.seq + i
                let query = q + row * qStride + h * d
                let keys = prefix + i + 1
                var largest = -Float.infinity
                for j in 0..<keys {
                    let key = j < prefix ? prefixK + j * kvStride + kvHead * d : k + (b * shape.seq + j - prefix) * kvStride + kvHead * d
                    var dot: Float = 0
                    for c in 0..<d { dot += query[c] * key[c] }
                    scores[j] = dot * scale
                    largest = max(largest, scores[j])
                }
                var sum: Float = 0
                for j in 0..<keys {
                    scores[j] = exp(scores[j] - largest)
                    sum += scores[j]
                }
                let o = out + row * qStride + h * d
                for c in 0..<d { o[c] = 0 }
                for j in 0..<keys {
                    let value = j < prefix ? prefixV + j * kvStride + kvHead * d : v + (b * shape.seq + j - prefix) * kvStride + kvHead * d
                    let p = scores[j] / sum
                    for c in 0..<d { o[c] += p * value[c] }
                }
            }
        }
    }
}
