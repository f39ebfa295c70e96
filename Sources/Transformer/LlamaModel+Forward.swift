import Foundation
import Tensors

/// Which positions get logits: all of them (perplexity, training), each sequence's last
/// (generation, next-token questions), or chosen rows of the batch·seq positions (scoring a
/// multiple-choice answer needs only the positions before its tokens: the output head, the
/// largest product of a small model, then runs on those alone).
public enum LogitsScope: Sendable, Hashable { case all, last, rows([Int]) }

/// Activation buffers for one batch shape, reused across forward passes.
public final class ForwardWorkspace {
    public let batch: Int
    public let seq: Int
    let x, xn, q, k, v, attention, gate, up, hidden: Tensor
    let probs: Tensor      // (batch, heads, seq, seq) for one layer at a time
    var positions: [Int32]
    /// Logits of the last pass, by scope: the largest buffer of a forward, kept for the next.
    var logits: [LogitsScope: Tensor] = [:]

    public init(config c: LlamaConfiguration, batch: Int, seq: Int) {
        self.batch = batch
        self.seq = seq
        let rows = batch * seq
        x = Tensor(zeros: [rows, c.dim])
        xn = Tensor(zeros: [rows, c.dim])
        q = Tensor(zeros: [rows, c.dim])
        k = Tensor(zeros: [rows, c.kvDim])
        v = Tensor(zeros: [rows, c.kvDim])
        attention = Tensor(zeros: [rows, c.dim])
        gate = Tensor(zeros: [rows, c.ffnDim])
        up = Tensor(zeros: [rows, c.ffnDim])
        hidden = Tensor(zeros: [rows, c.ffnDim])
        probs = Tensor(zeros: [batch, c.heads, seq, seq])
        positions = (0..<rows).map { Int32($0 % seq) }
    }
}

/// One decode step's activation buffers.
final class DecodeScratch {
    let x, xn, q, attention, gate, up, hidden, scores, logits: Tensor
    init(config c: LlamaConfiguration, capacity: Int) {
        x = Tensor(zeros: [1, c.dim]); xn = Tensor(zeros: [1, c.dim])
        q = Tensor(zeros: [1, c.dim]); attention = Tensor(zeros: [1, c.dim])
        gate = Tensor(zeros: [1, c.ffnDim]); up = Tensor(zeros: [1, c.ffnDim]); hidden = Tensor(zeros: [1, c.ffnDim])
        scores = Tensor(zeros: [capacity])
        logits = Tensor(zeros: [c.vocabSize])
    }

    /// The buffers of one decode step through block `l`, in place on `x`: the new key and value
    /// go straight into the cache's next row.
    func buffers(cache: KVCache, layer l: Int) -> BlockBuffers {
        let row = cache.length * cache.keys[l].shape[1]
        return BlockBuffers(input: x.data, middle: x.data, output: x.data, attentionNormed: xn.data, q: q.data,
                            k: cache.keys[l].data + row, v: cache.values[l].data + row, attention: attention.data,
                            mlpNormed: xn.data, gate: gate.data, up: up.data, hidden: hidden.data)
    }
}

/// Keys and values of past positions, per layer, for generating one token at a time.
public final class KVCache {
    public let capacity: Int
    public private(set) var length = 0
    let keys: [Tensor]     // per layer (capacity, kvDim), after RoPE
    let values: [Tensor]   // per layer (capacity, kvDim)

    public init(config: LlamaConfiguration, capacity: Int) {
        self.capacity = capacity
        keys = (0..<config.layers).map { _ in Tensor(zeros: [capacity, config.kvDim]) }
        values = (0..<config.layers).map { _ in Tensor(zeros: [capacity, config.kvDim]) }
    }

    /// The decode step's activations, kept between steps (allocated by the first).
    var scratch: DecodeScratch?

    public func reset() { length = 0 }
    func advance(by n: Int) { length += n }
}

extension LlamaModel {
    /// Logits for `batch` sequences of `seq` tokens each (row-major in `tokens`).
    /// With a cache (batch 1, empty cache), the keys and values are kept for `decode`.
    /// Given a workspace, the returned logits belong to it: read them before its next pass.
    public func forward(tokens: [Int32], batch: Int, seq: Int, logits scope: LogitsScope,
                        workspace: ForwardWorkspace? = nil, cache: KVCache? = nil) -> Tensor {
        precondition(tokens.count == batch * seq, "\(tokens.count) tokens for \(batch) × \(seq)")
        precondition(seq <= config.contextLength, "sequence of \(seq) beyond the context of \(config.contextLength)")
        let c = config
        let w = (workspace?.batch == batch && workspace?.seq == seq) ? workspace! : ForwardWorkspace(config: c, batch: batch, seq: seq)
        let rows = batch * seq
        let shape = AttentionShape(batch: batch, seq: seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        if let cache { precondition(batch == 1 && cache.length == 0 && seq <= cache.capacity, "prefill needs an empty cache of room \(seq)") }

        tokens.withUnsafeBufferPointer {
            embed($0.baseAddress!, rows: rows, into: w.x.data)
        }
        w.positions.withUnsafeBufferPointer { positions in
            for l in layers.indices {
                layerForward(l, w: w, positions: positions.baseAddress!, shape: shape, rows: rows, cache: cache)
            }
        }
        cache?.advance(by: seq)
        return head(w.x, rows: rows, batch: batch, seq: seq, scope: scope, scratch: w.xn, workspace: w)
    }

    /// One block on the workspace's residual stream `w.x`, in place.
    func layerForward(_ l: Int, w: ForwardWorkspace, positions: UnsafePointer<Int32>, shape: AttentionShape, rows: Int, cache: KVCache?) {
        runBlock(l, w.blockBuffers, rows: rows, positions: positions, attention: .sequences(shape, probs: w.probs.data, cache: cache))
    }

    /// The residual stream entering each layer, and after the last: `layers + 1` tensors of
    /// (batch·seq, dim). What a rank-importance pass resumes from (ALoRA): only the layers from a
    /// module's own need running again.
    public func residualStreams(tokens: [Int32], batch: Int, seq: Int, workspace: ForwardWorkspace? = nil) -> [Tensor] {
        let c = config
        let w = (workspace?.batch == batch && workspace?.seq == seq) ? workspace! : ForwardWorkspace(config: c, batch: batch, seq: seq)
        let rows = batch * seq
        let shape = AttentionShape(batch: batch, seq: seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        tokens.withUnsafeBufferPointer {
            embed($0.baseAddress!, rows: rows, into: w.x.data)
        }
        var streams = [w.x.copy()]
        w.positions.withUnsafeBufferPointer { positions in
            for l in layers.indices {
                layerForward(l, w: w, positions: positions.baseAddress!, shape: shape, rows: rows, cache: nil)
                streams.append(w.x.copy())
            }
        }
        return streams
    }

    /// Logits from the residual stream entering layer `start` (as `residualStreams` gives it):
    /// the layers from `start` on, then the head. Equal to a whole forward when the earlier
    /// layers are as they were when the stream was taken.
    public func forward(fromLayer start: Int, residual: Tensor, batch: Int, seq: Int, logits scope: LogitsScope,
                        workspace: ForwardWorkspace? = nil) -> Tensor {
        let c = config
        let w = (workspace?.batch == batch && workspace?.seq == seq) ? workspace! : ForwardWorkspace(config: c, batch: batch, seq: seq)
        let rows = batch * seq
        precondition(residual.count == rows * c.dim && (0...layers.count).contains(start), "a residual of \(residual.shape) from layer \(start)")
        let shape = AttentionShape(batch: batch, seq: seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        w.x.data.update(from: residual.data, count: rows * c.dim)
        w.positions.withUnsafeBufferPointer { positions in
            for l in start..<layers.count {
                layerForward(l, w: w, positions: positions.baseAddress!, shape: shape, rows: rows, cache: nil)
            }
        }
        return head(w.x, rows: rows, batch: batch, seq: seq, scope: scope, scratch: w.xn, workspace: w)
    }

    /// The token embeddings of `tokens`: the residual stream entering layer 0, (tokens, dim).
    public func embedded(tokens: [Int32]) -> Tensor {
        let x = Tensor(uninitialized: [tokens.count, config.dim])
        tokens.withUnsafeBufferPointer {
            embed($0.baseAddress!, rows: tokens.count, into: x.data)
        }
        return x
    }

    /// Runs block `l` on `stream` ((batch·seq, dim), its sequences from position 0), in place:
    /// what a block-by-block method (Wanda) steps with.
    public func layerForward(_ l: Int, stream: Tensor, batch: Int, seq: Int, workspace: ForwardWorkspace) {
        let c = config
        let rows = batch * seq
        precondition(workspace.batch == batch && workspace.seq == seq && stream.count == rows * c.dim, "a stream of \(stream.shape) for \(batch) × \(seq)")
        let shape = AttentionShape(batch: batch, seq: seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        workspace.x.data.update(from: stream.data, count: rows * c.dim)
        workspace.positions.withUnsafeBufferPointer { layerForward(l, w: workspace, positions: $0.baseAddress!, shape: shape, rows: rows, cache: nil) }
        stream.data.update(from: workspace.x.data, count: rows * c.dim)
    }

    /// The residual stream after the last layer, from the stream entering layer `start`: what
    /// `forward(fromLayer:)` gives the head. It belongs to the workspace. Cancellation is checked
    /// between layers, so a large batch stops within one layer's time.
    public func finalStream(fromLayer start: Int, residual: Tensor, batch: Int, seq: Int, workspace: ForwardWorkspace,
                            cancellation: CancellationToken? = nil) throws -> Tensor {
        let c = config
        let rows = batch * seq
        precondition(workspace.batch == batch && workspace.seq == seq, "a workspace for \(workspace.batch) × \(workspace.seq)")
        precondition(residual.count == rows * c.dim && (0...layers.count).contains(start), "a residual of \(residual.shape) from layer \(start)")
        let shape = AttentionShape(batch: batch, seq: seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
        workspace.x.data.update(from: residual.data, count: rows * c.dim)
        try workspace.positions.withUnsafeBufferPointer { positions in
            for l in start..<layers.count {
                try cancellation?.check()
                layerForward(l, w: workspace, positions: positions.baseAddress!, shape: shape, rows: rows, cache: nil)
            }
        }
        return workspace.x
    }

    /// Next-token cross-entropy of every row of a final residual stream (rows, dim) against
    /// `targets` (−1: not counted, loss 0). The head runs on `chunk` rows at a time, so a
    /// batch of thousands of rows never holds its whole (rows, vocab) logits.
    public func nextTokenLosses(finalStream x: Tensor, rows: Int, targets: [Int32], chunk: Int = 256) -> [Float] {
        let c = config
        precondition(targets.count == rows && x.count >= rows * c.dim, "\(targets.count) targets for \(rows) rows")
        let normed = Tensor(uninitialized: [chunk, c.dim])
        let logits = Tensor(uninitialized: [chunk, c.vocabSize])
        var losses = [Float](repeating: 0, count: rows)
        for start in stride(from: 0, to: rows, by: chunk) {
            let n = min(chunk, rows - start)
            rmsNormForward(out: normed.data, rstd: nil, input: x.data + start * c.dim, weight: finalNorm.data, rows: n, channels: c.dim, eps: c.normEps)
            outputLogits(out: logits.data, input: normed.data, rows: n)
            losses.withUnsafeMutableBufferPointer { l in
                targets.withUnsafeBufferPointer { t in
                    _ = crossEntropyForward(losses: l.baseAddress! + start, logits: logits.data, targets: t.baseAddress! + start, rows: n, vocab: c.vocabSize)
                }
            }
        }
        return losses
    }

    /// logits (rows, vocab) = input (rows, dim) · Eᵀ, on the output projection's own form.
    func outputLogits(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int) {
        if let packed = packedOutputProjection {
            quantizedLinear(out: out, input: input, weight: packed, rows: rows, inFeatures: config.dim, outFeatures: config.vocabSize)
        } else {
            let e = hasOutput ? outputFloat32! : embeddingFloat32!
            linearForward(out: out, input: input, weight: e.data, rows: rows, inFeatures: config.dim, outFeatures: config.vocabSize)
        }
    }

    /// The embeddings of `rows` tokens into `out` (rows, dim): a packed table dequantizes its rows.
    func embed(_ tokens: UnsafePointer<Int32>, rows: Int, into out: UnsafeMutablePointer<Float>) {
        if let packed = packedEmbedding {
            for r in 0..<rows {
                precondition(tokens[r] >= 0 && Int(tokens[r]) < config.vocabSize, "token \(tokens[r]) outside the vocabulary of \(config.vocabSize)")
                packed.dequantizeRow(Int(tokens[r]), into: out + r * config.dim)
            }
        } else {
            embeddingForward(out: out, tokens: tokens, table: embeddingFloat32!.data, rows: rows, channels: config.dim, vocab: config.vocabSize)
        }
    }

    /// Final norm and output projection, for all rows or each sequence's last. With a workspace,
    /// the logits live in it and are overwritten by its next forward pass.
    func head(_ x: Tensor, rows: Int, batch: Int, seq: Int, scope: LogitsScope, scratch: Tensor, workspace: ForwardWorkspace? = nil) -> Tensor {
        let c = config
        let selected: Int
        switch scope {
        case .all:
            selected = rows
            rmsNormForward(out: scratch.data, rstd: nil, input: x.data, weight: finalNorm.data, rows: rows, channels: c.dim, eps: c.normEps)
        case .last:
            selected = batch
            for b in 0..<batch {
                rmsNormForward(out: scratch.data + b * c.dim, rstd: nil, input: x.data + (b * seq + seq - 1) * c.dim,
                               weight: finalNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
            }
        case .rows(let chosen):
            precondition(chosen.count <= rows && chosen.allSatisfy { (0..<rows).contains($0) }, "rows \(chosen) of \(rows)")
            selected = chosen.count
            for (k, row) in chosen.enumerated() {
                rmsNormForward(out: scratch.data + k * c.dim, rstd: nil, input: x.data + row * c.dim,
                               weight: finalNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
            }
        }
        let logits: Tensor
        if case .rows = scope {
            // Row choices vary from call to call: not kept in the workspace.
            logits = Tensor(uninitialized: [max(1, selected), c.vocabSize])
        } else if let workspace {
            logits = workspace.logits[scope] ?? Tensor(uninitialized: [selected, c.vocabSize])
            workspace.logits[scope] = logits
        } else {
            logits = Tensor(uninitialized: [selected, c.vocabSize])
        }
        outputLogits(out: logits.data, input: scratch.data, rows: selected)
        return logits
    }

    /// Logits (vocab) for one more token at position `cache.length`, attending over the cache.
    /// The tensor belongs to the cache and is overwritten by its next step: read it before.
    public func decode(token: Int32, cache: KVCache) -> Tensor {
        let c = config
        precondition(cache.length < cache.capacity && cache.length < c.contextLength, "the cache is full")
        let position = [Int32(cache.length)]
        let s = cache.scratch ?? DecodeScratch(config: c, capacity: cache.capacity)
        cache.scratch = s
        let (x, xn) = (s.x, s.xn)
        [token].withUnsafeBufferPointer {
            embed($0.baseAddress!, rows: 1, into: x.data)
        }
        position.withUnsafeBufferPointer { positions in
            for l in layers.indices {
                runBlock(l, s.buffers(cache: cache, layer: l), rows: 1, positions: positions.baseAddress!,
                         attention: .cached(cache, scores: s.scores.data))
            }
        }
        cache.advance(by: 1)
        rmsNormForward(out: xn.data, rstd: nil, input: x.data, weight: finalNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
        outputLogits(out: s.logits.data, input: xn.data, rows: 1)
        return s.logits
    }
}
