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
        // One name per clock: the embedding, BlockPart's eight, the output head.
        let names = ["embedding", "norms", "q, k, v projections", "RoPE", "attention over the cache", "o projection",
                     "gate, up projections", "SwiGLU", "down projection", "output head (logits)"]
        var spent = [UInt64](repeating: 0, count: names.count)
        var total: UInt64 = 0
        let scratch = DecodeScratch(config: c, capacity: cache.capacity)
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
            [token].withUnsafeBufferPointer { embed($0.baseAddress!, rows: 1, into: scratch.x.data) }
            lap(0)
            position.withUnsafeBufferPointer { positions in
                for l in layers.indices {
                    // The block's parts are names 1…8, in BlockPart's order.
                    runBlock(l, scratch.buffers(cache: cache, layer: l), rows: 1, positions: positions.baseAddress!,
                             attention: .cached(cache, scores: scratch.scores.data), lap: { lap($0.rawValue + 1) })
                }
            }
            rmsNormForward(out: scratch.xn.data, rstd: nil, input: scratch.x.data, weight: finalNorm.data, rows: 1, channels: c.dim, eps: c.normEps)
            lap(1)
            outputLogits(out: scratch.logits.data, input: scratch.xn.data, rows: 1)
            lap(9)
            cache.advance(by: 1)
            total += DispatchTime.now().uptimeNanoseconds - start
        }
        let n = Double(max(1, tokens.count))
        return TokenProfile(parts: zip(names, spent).map { ($0, Double($1) / 1e9 / n) }, total: Double(total) / 1e9 / n)
    }

    /// Bytes one decode step reads from memory at cache length `position`: every weight the
    /// products of the kept layers stream (packed or Float32, the output head whole, one embedding row) and the
    /// cache's keys and values.
    public func bytesReadPerToken(position: Int) -> Int {
        var bytes = 0
        for (layer, shape) in zip(layers, activeShape.layers) where shape.kept {
            for p in Projection.allCases {
                let (i, o) = p.shape(config, ffn: shape.mlpWidth)
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
