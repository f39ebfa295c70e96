import Foundation
import Tensors

extension LlamaModel {
    /// Logits for `batch` continuations of one shared prefix whose keys and values are in `cache`
    /// (a batch-1 `forward` with that cache computed the prefix once). Continuation row (b, i) sits
    /// at position `cache.length + i` and attends to the whole prefix and to its own positions 0…i.
    /// The cache is read, not extended, so the same prefix serves any number of calls.
    public func forwardContinuations(tokens: [Int32], batch: Int, seq: Int, cache: KVCache, logits scope: LogitsScope) -> Tensor {
        let c = config
        let prefix = cache.length
        precondition(tokens.count == batch * seq && prefix + seq <= c.contextLength, "\(batch) × \(seq) tokens after \(prefix)")
        let rows = batch * seq
        let w = ForwardWorkspace(config: c, batch: batch, seq: seq)
        let shape = AttentionShape(batch: batch, seq: seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        let positions = (0..<rows).map { Int32(prefix + $0 % seq) }
        tokens.withUnsafeBufferPointer {
            embed($0.baseAddress!, rows: rows, into: w.x.data)
        }
        positions.withUnsafeBufferPointer { positions in
            for l in layers.indices {
                // Attention over [prefix; own positions ≤ i].
                runBlock(l, w.blockBuffers, rows: rows, positions: positions.baseAddress!, attention: .afterPrefix(cache, shape))
            }
        }
        return head(w.x, rows: rows, batch: batch, seq: seq, scope: scope, scratch: w.xn)
    }
}
