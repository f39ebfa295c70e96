import Foundation
import Tensors

/// Where one pass of a block reads and writes, (rows, ·) each. Inference runs in place (`input`,
/// `middle` and `output` the same memory); training keeps the stream entering the block, the
/// stream between its halves and the stream leaving it apart, as its backward reads them.
struct BlockBuffers {
    var input, middle, output: UnsafeMutablePointer<Float>   // (rows, dim)
    var attentionNormed: UnsafeMutablePointer<Float>          // (rows, dim)
    var q: UnsafeMutablePointer<Float>                        // (rows, dim)
    var k, v: UnsafeMutablePointer<Float>                     // (rows, kvDim)
    var attention: UnsafeMutablePointer<Float>                // (rows, dim)
    var mlpNormed: UnsafeMutablePointer<Float>                // (rows, dim)
    var gate, up, hidden: UnsafeMutablePointer<Float>         // (rows, mlpWidth)
    /// 1/rms of each row at the two norms, for training's backward; nil otherwise.
    var attentionRstd: UnsafeMutablePointer<Float>? = nil
    var mlpRstd: UnsafeMutablePointer<Float>? = nil
}

/// What a block's attention attends over.
enum BlockAttention {
    /// Whole sequences, each over its own earlier positions (prefill, calibration, training).
    /// `probs` (batch, heads, seq, seq) keeps the weights for a backward; a cache, when given,
    /// keeps the keys and values for `decode`.
    case sequences(AttentionShape, probs: UnsafeMutablePointer<Float>, cache: KVCache?)
    /// One new token over the cache's positions and its own: `k` and `v` point into the cache's
    /// next row, and `scores` has room for the cache's capacity.
    case cached(KVCache, scores: UnsafeMutablePointer<Float>)
    /// Continuations of a prefix the cache holds: each attends over the whole prefix and its own
    /// earlier positions.
    case afterPrefix(KVCache, AttentionShape)
}

/// The parts of a block in the order it runs them, for `profileDecode`'s clocks.
enum BlockPart: Int, CaseIterable {
    case norm, qkv, rope, attention, o, gateUp, swiglu, down
}

extension LlamaModel {
    /// Block `l` on `rows` rows: the one spelling of the LLaMA block that prefill, decode, its
    /// profile, continuations, calibration and training all run.
    ///
    ///   x_mid = x + W_o · attend(rope(W_q·n₁(x)), rope(W_k·n₁(x)), W_v·n₁(x)),   n₁ = RMSNorm(attention_norm)
    ///   x_out = x_mid + W_down · (silu(W_gate·n₂(x_mid)) ⊙ W_up·n₂(x_mid)),        n₂ = RMSNorm(ffn_norm)
    ///
    /// The active shape decides the rest: a skipped block passes the stream through, and the MLP
    /// runs on its first `mlpWidth` channels. `lap`, when given, is told as each part ends.
    @inline(__always)
    func runBlock(_ l: Int, _ b: BlockBuffers, rows: Int, positions: UnsafePointer<Int32>, attention: BlockAttention,
                  training: Bool = false, lap: ((BlockPart) -> Void)? = nil) {
        let c = config
        let layer = layers[l]
        let shape = activeShape.layers[l]
        guard shape.kept else {
            if b.output != b.input { b.output.update(from: b.input, count: rows * c.dim) }
            return
        }
        let width = shape.mlpWidth
        rmsNormForward(out: b.attentionNormed, rstd: b.attentionRstd, input: b.input, weight: layer.attentionNorm.data,
                       rows: rows, channels: c.dim, eps: c.normEps)
        lap?(.norm)
        project(layer, .q, width: width, input: b.attentionNormed, out: b.q, rows: rows, training: training)
        project(layer, .k, width: width, input: b.attentionNormed, out: b.k, rows: rows, training: training)
        project(layer, .v, width: width, input: b.attentionNormed, out: b.v, rows: rows, training: training)
        lap?(.qkv)
        ropeForward(x: b.q, positions: positions, table: rope, rows: rows, heads: c.heads)
        ropeForward(x: b.k, positions: positions, table: rope, rows: rows, heads: c.kvHeads)
        lap?(.rope)
        switch attention {
        case .sequences(let shape, let probs, let cache):
            if let cache {
                cache.keys[l].data.update(from: b.k, count: rows * c.kvDim)
                cache.values[l].data.update(from: b.v, count: rows * c.kvDim)
            }
            attentionForward(out: b.attention, probs: probs, q: b.q, k: b.k, v: b.v, shape: shape)
        case .cached(let cache, let scores):
            attentionDecode(out: b.attention, q: b.q, keys: cache.keys[l].data, values: cache.values[l].data,
                            scores: scores, length: cache.length + 1, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        case .afterPrefix(let cache, let shape):
            prefixAttentionForward(out: b.attention, q: b.q, k: b.k, v: b.v, prefixK: cache.keys[l].data,
                                   prefixV: cache.values[l].data, prefix: cache.length, shape: shape)
        }
        lap?(.attention)
        if b.middle != b.input { b.middle.update(from: b.input, count: rows * c.dim) }
        project(layer, .o, width: width, input: b.attention, out: b.middle, rows: rows, accumulate: true, training: training)
        lap?(.o)
        rmsNormForward(out: b.mlpNormed, rstd: b.mlpRstd, input: b.middle, weight: layer.ffnNorm.data, rows: rows, channels: c.dim, eps: c.normEps)
        lap?(.norm)
        project(layer, .gate, width: width, input: b.mlpNormed, out: b.gate, rows: rows, training: training)
        project(layer, .up, width: width, input: b.mlpNormed, out: b.up, rows: rows, training: training)
        lap?(.gateUp)
        swigluForward(out: b.hidden, gate: b.gate, up: b.up, count: rows * width)
        lap?(.swiglu)
        if b.output != b.middle { b.output.update(from: b.middle, count: rows * c.dim) }
        project(layer, .down, width: width, input: b.hidden, out: b.output, rows: rows, accumulate: true, training: training)
        lap?(.down)
    }

    /// out = input · Wᵀ (+ out) for one projection of a layer, plus its adapter's Δ when it has one.
    /// A packed weight runs on the quantized kernels, a Float32 one on BLAS. With an MLP `width`
    /// below the stored one, gate/up's outputs and down's inputs are the first `width` channels:
    /// the products run on those shapes, reading the frozen weights in place.
    @inline(__always)
    func project(_ layer: LlamaLayer, _ p: Projection, width: Int, input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>,
                 rows: Int, accumulate: Bool = false, training: Bool = false) {
        let (i, o) = p.shape(config, ffn: width)
        if let packed = layer.packed[p] {
            quantizedLinear(out: out, input: input, weight: packed, rows: rows, inFeatures: i, outFeatures: o, accumulate: accumulate)
        } else {
            linearForward(out: out, input: input, weight: layer.float32Weight(p).data, rows: rows, inFeatures: i, outFeatures: o,
                          accumulate: accumulate, weightStride: p.shape(config).inFeatures)
        }
        layer.adapters[p]?.forward(input: input, out: out, rows: rows, inFeatures: i, outFeatures: o, training: training)
    }
}

extension ForwardWorkspace {
    /// The workspace's buffers for a block run in place on its residual stream `x`.
    var blockBuffers: BlockBuffers {
        BlockBuffers(input: x.data, middle: x.data, output: x.data, attentionNormed: xn.data, q: q.data, k: k.data, v: v.data,
                     attention: attention.data, mlpNormed: xn.data, gate: gate.data, up: up.data, hidden: hidden.data)
    }
}
