import Foundation

/// The shape of a LLaMA-architecture model, read from GGUF metadata (`llama.*` keys).
public struct LlamaConfiguration: Codable, Equatable, Sendable {
    public var layers: Int
    public var dim: Int
    public var ffnDim: Int
    public var heads: Int
    public var kvHeads: Int
    public var vocabSize: Int
    public var contextLength: Int
    public var normEps: Float
    public var ropeBase: Float

    enum CodingKeys: String, CodingKey {
        case layers = "llama.block_count"
        case dim = "llama.embedding_length"
        case ffnDim = "llama.feed_forward_length"
        case heads = "llama.attention.head_count"
        case kvHeads = "llama.attention.head_count_kv"
        case vocabSize = "llama.vocab_size"
        case contextLength = "llama.context_length"
        case normEps = "llama.attention.layer_norm_rms_epsilon"
        case ropeBase = "llama.rope.freq_base"
    }

    public init(layers: Int, dim: Int, ffnDim: Int, heads: Int, kvHeads: Int, vocabSize: Int,
                contextLength: Int = 2048, normEps: Float = 1e-5, ropeBase: Float = 10_000) throws {
        self.layers = layers
        self.dim = dim
        self.ffnDim = ffnDim
        self.heads = heads
        self.kvHeads = kvHeads
        self.vocabSize = vocabSize
        self.contextLength = contextLength
        self.normEps = normEps
        self.ropeBase = ropeBase
        try validate()
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        layers = try c.decode(Int.self, forKey: .layers)
        dim = try c.decode(Int.self, forKey: .dim)
        ffnDim = try c.decode(Int.self, forKey: .ffnDim)
        heads = try c.decode(Int.self, forKey: .heads)
        // Optional in GGUF: absent means multi-head attention.
        kvHeads = try c.decodeIfPresent(Int.self, forKey: .kvHeads) ?? heads
        vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocabSize) ?? 0
        contextLength = try c.decodeIfPresent(Int.self, forKey: .contextLength) ?? 2048
        normEps = try c.decodeIfPresent(Float.self, forKey: .normEps) ?? 1e-5
        ropeBase = try c.decodeIfPresent(Float.self, forKey: .ropeBase) ?? 10_000
        try validate(allowUnknownVocabulary: true)
    }

    func validate(allowUnknownVocabulary: Bool = false) throws {
        func fail(_ key: CodingKeys, _ reason: String) -> GGUFError { .badValue(key: key.rawValue, reason: reason) }
        guard layers > 0 else { throw fail(.layers, "must be positive, not \(layers)") }
        guard dim > 0 else { throw fail(.dim, "must be positive, not \(dim)") }
        guard ffnDim > 0 else { throw fail(.ffnDim, "must be positive, not \(ffnDim)") }
        guard heads > 0, dim % heads == 0 else { throw fail(.heads, "\(heads) heads do not divide the width \(dim)") }
        guard kvHeads > 0, heads % kvHeads == 0 else { throw fail(.kvHeads, "\(kvHeads) key/value heads do not divide \(heads) heads") }
        guard headDim % 2 == 0 else { throw fail(.heads, "head dimension \(headDim) must be even for RoPE") }
        guard allowUnknownVocabulary || vocabSize > 0 else { throw fail(.vocabSize, "must be positive") }
        guard contextLength > 0 else { throw fail(.contextLength, "must be positive") }
        // Each size alone below 2^31, so products of two never overflow; memory is checked apart.
        let limit = 1 << 31
        for (key, value) in [(CodingKeys.layers, layers), (.dim, dim), (.ffnDim, ffnDim), (.heads, heads),
                             (.kvHeads, kvHeads), (.vocabSize, vocabSize), (.contextLength, contextLength)] where value >= limit {
            throw fail(key, "\(value) is beyond any model Sculpt can hold")
        }
        guard normEps > 0 else { throw fail(.normEps, "must be positive") }
        guard ropeBase > 1 else { throw fail(.ropeBase, "must be above 1") }
    }

    public var headDim: Int { dim / heads }
    public var kvDim: Int { kvHeads * headDim }

    /// Reads the configuration from GGUF metadata (scalar `llama.*` values).
    public static func from(_ metadata: [String: GGUFValue]) throws -> LlamaConfiguration {
        guard metadata["general.architecture"]?.string == "llama" else {
            throw GGUFError.badValue(key: "general.architecture",
                                     reason: "\"\(metadata["general.architecture"]?.string ?? "missing")\" is not a LLaMA model")
        }
        var object = [String: Any]()
        for key in CodingKeys.allKeys {
            guard let value = metadata[key] else { continue }
            if let i = value.int { object[key] = i } else if let d = value.double { object[key] = d } else {
                throw GGUFError.badValue(key: key, reason: "expected a number")
            }
        }
        do {
            let data = try JSONSerialization.data(withJSONObject: object)
            return try JSONDecoder().decode(LlamaConfiguration.self, from: data)
        } catch DecodingError.keyNotFound(let key, _) {
            throw GGUFError.missingKey(key.stringValue)
        } catch DecodingError.typeMismatch(_, let context) {
            throw GGUFError.badValue(key: context.codingPath.last?.stringValue ?? "?", reason: "wrong type")
        }
    }

    /// The metadata a writer stores for this configuration.
    public var metadata: [(String, GGUFValue)] {
        [
            (CodingKeys.layers.rawValue, .uint32(UInt32(layers))),
            (CodingKeys.contextLength.rawValue, .uint32(UInt32(contextLength))),
            (CodingKeys.dim.rawValue, .uint32(UInt32(dim))),
            (CodingKeys.ffnDim.rawValue, .uint32(UInt32(ffnDim))),
            (CodingKeys.heads.rawValue, .uint32(UInt32(heads))),
            (CodingKeys.kvHeads.rawValue, .uint32(UInt32(kvHeads))),
            (CodingKeys.ropeBase.rawValue, .float32(ropeBase)),
            (CodingKeys.normEps.rawValue, .float32(normEps)),
            (CodingKeys.vocabSize.rawValue, .uint32(UInt32(vocabSize))),
            ("llama.rope.dimension_count", .uint32(UInt32(headDim))),
        ]
    }

    /// Every weight's GGUF name and row-major shape, in the model's order (`namedWeights`), so a
    /// file's tensors can be checked before anything is allocated.
    public func weightShapes(tiedOutput: Bool) -> [(String, [Int])] {
        var out = [("token_embd.weight", [vocabSize, dim])]
        for i in 0..<layers {
            out += [("attn_norm", [dim]), ("attn_q", [dim, dim]), ("attn_k", [kvDim, dim]), ("attn_v", [kvDim, dim]),
                    ("attn_output", [dim, dim]), ("ffn_norm", [dim]), ("ffn_gate", [ffnDim, dim]), ("ffn_up", [ffnDim, dim]),
                    ("ffn_down", [dim, ffnDim])].map { ("blk.\(i).\($0.0).weight", $0.1) }
        }
        out.append(("output_norm.weight", [dim]))
        if !tiedOutput { out.append(("output.weight", [vocabSize, dim])) }
        return out
    }

    /// Bytes the Float32 model takes (weights and the RoPE table), as a Double so that absurd
    /// metadata cannot overflow it.
    public func float32Bytes(tiedOutput: Bool = true) -> Double {
        let (d, f, kv, v, l) = (Double(dim), Double(ffnDim), Double(kvDim), Double(vocabSize), Double(layers))
        let perLayer = 2 * d + 2 * d * d + 2 * kv * d + 3 * d * f
        let weights = v * d * (tiedOutput ? 1 : 2) + l * perLayer + d
        return 4 * (weights + Double(contextLength) * Double(headDim))
    }

    /// Parameters, counting a tied output projection once.
    public func parameterCount(tiedOutput: Bool = true) -> Int {
        let perLayer = 2 * dim + dim * dim * 2 + 2 * kvDim * dim + 3 * dim * ffnDim
        return vocabSize * dim * (tiedOutput ? 1 : 2) + layers * perLayer + dim
    }

    /// Multiply-accumulates per token for the projections and the output head (attention's
    /// score and value products grow with context and are given separately).
    public var macsPerToken: Int {
        layers * (dim * dim * 2 + 2 * kvDim * dim + 3 * dim * ffnDim) + vocabSize * dim
    }

    /// Attention multiply-accumulates for the token at position `t` (scores and values over t + 1 keys).
    public func attentionMACs(position t: Int) -> Int {
        layers * heads * 2 * headDim * (t + 1)
    }
}

extension LlamaConfiguration.CodingKeys: CaseIterable {
    static var allKeys: [String] { allCases.map(\.rawValue) }
}
