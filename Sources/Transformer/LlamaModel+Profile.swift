import Foundation
import Tensors

/// Where the time of one generated token goes: the decode step with a clock around each part.
public struct TokenProfile: Sendable {
    /// Mean seconds per token of each part, in the order a step runs them.
    public var parts: [(name: String, seconds: Double)]
    /// Mean seconds per token of the whole step, clocks included.
    public var total: Double
}

extension LlamaModel {
    /// Decodes `tokens` one at a time after what `cache` holds (as `decode` does, and on the same
    /// products), timing its parts; the cache advances. The clocks cost about 30 ns each, some
    /// 15 per layer: a few hundredths of a millisecond per token.
    public func profileDecode(tokens: [Int32], cache: KVCache) -> TokenProfile {
        let c = config
        let names = ["embedding", "norms", "q, k, v projections", "RoPE", "attention over the cache", "o projection",
                     "gate, up projections", "SwiGLU", "down projection", "output head (logits)"]
        var spent = [UInt64](repeating: 0, count: names.count)
        var total: UInt64 = 0
        let x = Tensor(zeros: [1, c.dim]), xn = Tensor(zeros: [1, c.dim])
        let q = Tensor(zeros: [1, c.dim]), attention = Tensor(zeros: [1, c.dim])
        let gate = Tensor(zeros: [1, c.ffnDim]), up = Tensor(zeros: [1, c.ffnDim]), hidden = Tensor(zeros: [1, c.ffnDim])
        let logits = Tensor(zeros: [1, c.vocabSize])
        let scores = Tensor(zeros: [cache.capacity])
        var clock = DispatchTime.now().uptimeNanoseconds
        @inline(__always) func lap(_ part: Int) {
            let now = DispatchTime.now().uptimeNanoseconds
            spent[part] += now - clock
            clock = now
        }
        for token in tokens {
            precondition(cache.length < cache.capacity, "the cache is full")
            let start = DispatchTime.now().uptimeNanoseconds
            clock = start
            let position = [Int32(cache.length)]
            [token].withUnsafeBufferPointer { embed($0.baseAddress!, rows: 1, into: x.data) }
            lap(0)
            position.withUnsafeBufferPointer { positions in
                for (l, layer) in layers.enumerated() {
                    let kRow = cache.keys[l].data + cache.length * c.kvDim
                    let vRow = cache.values[l].data + cache.length * c.kvDim
                    rmsNormForward(out: xn.data, rstd: nil, input: x.data, weight: layer.attentionNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
                    lap(1)
                    project(layer, .q, input: xn.data, out: q.data, rows: 1)
                    project(layer, .k, input: xn.data, out: kRow, rows: 1)
                    project(layer, .v, input: xn.data, out: vRow, rows: 1)
                    lap(2)
                    ropeForward(x: q.data, positions: positions.baseAddress!, table: rope, rows: 1, heads: c.heads)
                    ropeForward(x: kRow, positions: positions.baseAddress!, table: rope, rows: 1, heads: c.kvHeads)
                    lap(3)
                    attentionDecode(out: attention.data, q: q.data, keys: cache.keys[l].data, values: cache.values[l].data,
                                    scores: scores.data, length: cache.length + 1, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)
                    lap(4)
                    project(layer, .o, input: attention.data, out: x.data, rows: 1, accumulate: true)
                    lap(5)
                    rmsNormForward(out: xn.data, rstd: nil, input: x.data, weight: layer.ffnNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
                    lap(1)
                    project(layer, .gate, input: xn.data, out: gate.data, rows: 1)
                    project(layer, .up, input: xn.data, out: up.data, rows: 1)
                    lap(6)
                    swigluForward(out: hidden.data, gate: gate.data, up: up.data, count: layer.activeFFN)
                    lap(7)
                    project(layer, .down, input: hidden.data, out: x.data, rows: 1, accumulate: true)
                    lap(8)
                }
            }
            rmsNormForward(out: xn.data, rstd: nil, input: x.data, weight: finalNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
            lap(1)
            outputLogits(out: logits.data, input: xn.data, rows: 1)
            lap(9)
            cache.advance(by: 1)
            total += DispatchTime.now().uptimeNanoseconds - start
        }
        let n = Double(max(1, tokens.count))
        return TokenProfile(parts: zip(names, spent).map { ($0, Double($1) / 1e9 / n) }, total: Double(total) / 1e9 / n)
    }

    /// Bytes one decode step reads from memory at cache length `position`: every weight the
    /// products stream (packed or Float32, the output head whole, one embedding row) and the
    /// cache's keys and values.
    public func bytesReadPerToken(position: Int) -> Int {
        var bytes = 0
        for layer in layers {
            for p in Projection.allCases {
                let (i, o) = p.shape(config, ffn: layer.activeFFN)
                if let m = layer.packed[p] {
                    bytes += m.byteCount * o / m.rows * i / m.columns
                } else {
                    bytes += 4 * i * o
                }
            }
            bytes += 2 * 4 * config.dim                   // norms
            bytes += 2 * 4 * (position + 1) * config.kvDim // keys and values
        }
        let head = packedOutputProjection.map(\.byteCount) ?? 4 * config.vocabSize * config.dim
        return bytes + head + head / config.vocabSize + 4 * config.dim
    }
}
