import Foundation
import Tensors

/// One transformer block's weights, in the GGUF row order (Q and K rows interleaved for
/// adjacent-pair RoPE, as llama.cpp's converter permutes them).
public final class LlamaLayer: @unchecked Sendable {
    public let attentionNorm: Tensor   // (dim)
    public let wq: Tensor              // (dim, dim)
    public let wk: Tensor              // (kvDim, dim)
    public let wv: Tensor              // (kvDim, dim)
    public let wo: Tensor              // (dim, dim)
    public let ffnNorm: Tensor         // (dim)
    public let wGate: Tensor           // (ffnDim, dim)
    public let wUp: Tensor             // (ffnDim, dim)
    public let wDown: Tensor           // (dim, ffnDim)

    init(_ c: LlamaConfiguration) {
        attentionNorm = Tensor(zeros: [c.dim])
        wq = Tensor(zeros: [c.dim, c.dim])
        wk = Tensor(zeros: [c.kvDim, c.dim])
        wv = Tensor(zeros: [c.kvDim, c.dim])
        wo = Tensor(zeros: [c.dim, c.dim])
        ffnNorm = Tensor(zeros: [c.dim])
        wGate = Tensor(zeros: [c.ffnDim, c.dim])
        wUp = Tensor(zeros: [c.ffnDim, c.dim])
        wDown = Tensor(zeros: [c.dim, c.ffnDim])
    }

    /// GGUF tensor name suffix → weight.
    var named: [(String, Tensor)] {
        [("attn_norm", attentionNorm), ("attn_q", wq), ("attn_k", wk), ("attn_v", wv), ("attn_output", wo),
         ("ffn_norm", ffnNorm), ("ffn_gate", wGate), ("ffn_up", wUp), ("ffn_down", wDown)]
    }
}

/// A LLaMA-architecture language model with Float32 weights.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfiguration
    public let tokenEmbedding: Tensor   // (vocab, dim)
    public let layers: [LlamaLayer]
    public let finalNorm: Tensor        // (dim)
    /// The output projection (vocab, dim); nil when tied to the token embedding.
    public let output: Tensor?
    public let tokenizer: ByteLevelBPE
    public let rope: RoPETable

    public init(config: LlamaConfiguration, tokenizer: ByteLevelBPE, tiedOutput: Bool = true) {
        self.config = config
        self.tokenizer = tokenizer
        tokenEmbedding = Tensor(zeros: [config.vocabSize, config.dim])
        layers = (0..<config.layers).map { _ in LlamaLayer(config) }
        finalNorm = Tensor(zeros: [config.dim])
        output = tiedOutput ? nil : Tensor(zeros: [config.vocabSize, config.dim])
        rope = RoPETable(headDim: config.headDim, maxPositions: config.contextLength, base: config.ropeBase)
    }

    /// The projection that turns hidden states into logits.
    public var outputProjection: Tensor { output ?? tokenEmbedding }

    /// Every weight with its GGUF name.
    public var namedWeights: [(String, Tensor)] {
        var out = [("token_embd.weight", tokenEmbedding)]
        for (i, layer) in layers.enumerated() {
            out += layer.named.map { ("blk.\(i).\($0.0).weight", $0.1) }
        }
        out.append(("output_norm.weight", finalNorm))
        if let output { out.append(("output.weight", output)) }
        return out
    }

    public var parameterCount: Int { namedWeights.reduce(0) { $0 + $1.1.count } }
    public var weightBytes: Int { namedWeights.reduce(0) { $0 + $1.1.byteCount } }

    // MARK: Random initialization

    /// A small model with random weights (normal, std 0.02; norms at 1), the same for the same seed.
    public static func random(config: LlamaConfiguration, seed: UInt64, tokenizer: ByteLevelBPE? = nil) -> LlamaModel {
        let model = LlamaModel(config: config, tokenizer: tokenizer ?? .bytes())
        var rng = SeededGenerator(seed: seed)
        for (name, weight) in model.namedWeights {
            if name.hasSuffix("norm.weight") {
                weight.fill(1)
            } else {
                rng.fillNormal(weight, std: 0.02)
            }
        }
        return model
    }
}
