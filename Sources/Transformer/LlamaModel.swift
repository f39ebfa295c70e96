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
    /// Trainable additions to the projections (LoRA and its elastic forms); empty for the plain model.
    public var adapters: [Projection: ProjectionAdapter] = [:]
    /// MLP channels in use: the first `activeFFN` outputs of gate and up and inputs of down
    /// (elastic width, LoNAS mode B). The full width unless a subnet narrows it.
    public var activeFFN: Int
    /// MLP channels that hold weights: the full width, or for a layer loaded narrower from a
    /// `deci` file its own width (the rest of the storage is zero padding).
    public internal(set) var storedFFN: Int
    /// Stored MLP channel i is channel `mlpChannelOrder[i]` of the weights as loaded: the identity
    /// until `permuteMLPChannels` reorders them (exports use it to write the loaded order back).
    public internal(set) var mlpChannelOrder: [Int]
    /// Projections stored quantized (`quantize`), by projection: the packed codes, scales and
    /// zero points. The Float32 weight then holds their dequantized values, which the products
    /// read until the quantized kernels compute from the codes directly.
    public var quantized: [Projection: GroupQuantizedMatrix] = [:]

    public func weight(_ p: Projection) -> Tensor {
        switch p {
        case .q: return wq
        case .k: return wk
        case .v: return wv
        case .o: return wo
        case .gate: return wGate
        case .up: return wUp
        case .down: return wDown
        }
    }

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
        activeFFN = c.ffnDim
        storedFFN = c.ffnDim
        mlpChannelOrder = Array(0..<c.ffnDim)
    }

    /// GGUF tensor name suffix → weight.
    var named: [(String, Tensor)] {
        [("attn_norm", attentionNorm)] + [Projection.q, .k, .v, .o].map { ($0.ggufName, weight($0)) }
            + [("ffn_norm", ffnNorm)] + [Projection.gate, .up, .down].map { ($0.ggufName, weight($0)) }
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

    /// A small model with random weights, the same for the same seed: projections N(0, 0.02²) as
    /// Hugging Face initializes LLaMA, norms at 1, and the tied embedding N(0, 0.1²). The wider
    /// embedding matters because the output head is frozen during adapter training: with 0.02 the
    /// logits of a 64-wide model cannot leave ±1.3, and no adapter could make it learn much.
    public static func random(config: LlamaConfiguration, seed: UInt64, tokenizer: ByteLevelBPE? = nil) -> LlamaModel {
        let model = LlamaModel(config: config, tokenizer: tokenizer ?? .bytes())
        var rng = SeededGenerator(seed: seed)
        for (name, weight) in model.namedWeights {
            if name.hasSuffix("norm.weight") {
                weight.fill(1)
            } else {
                rng.fillNormal(weight, std: name == "token_embd.weight" ? 0.1 : 0.02)
            }
        }
        return model
    }
}
