import Foundation
import Tensors

/// One transformer block's weights, in the GGUF row order (Q and K rows interleaved for
/// adjacent-pair RoPE, as llama.cpp's converter permutes them).
public final class LlamaLayer: @unchecked Sendable {
    public let attentionNorm: Tensor   // (dim)
    public let ffnNorm: Tensor         // (dim)
    /// The projections' weights, each in one form or both: Float32 (`dense`), or packed blocks of
    /// 4 or 8 bits (`packed`) that the products compute from directly. A projection loaded from a
    /// quantized file with `keep` is packed only; `quantize` keeps both (the Float32 copy holds
    /// exactly the grid's values, which the compression methods read). When both exist they
    /// hold the same weights; the products use the packed form.
    private var dense: [Projection: Tensor] = [:]
    public private(set) var packed: [Projection: BlockQuantizedMatrix] = [:]
    private let shapes: [Projection: (outFeatures: Int, inFeatures: Int)]
    /// Trainable additions to the projections (LoRA and its elastic forms); empty for the plain model.
    public var adapters: [Projection: ProjectionAdapter] = [:]
    /// MLP channels that hold weights: the full width, or for a layer loaded narrower from a
    /// `deci` file its own width (the rest of the storage is zero padding).
    public internal(set) var storedFFN: Int
    /// Stored MLP channel i is channel `mlpChannelOrder[i]` of the weights as loaded: the identity
    /// until `permuteMLPChannels` reorders them (exports use it to write the loaded order back).
    public internal(set) var mlpChannelOrder: [Int]
    /// Projections quantized by `quantize`, by projection: the grid's codes, scales and zero
    /// points. The Float32 weight holds their dequantized values; `packQuantizedGrids` gives the
    /// products a packed form of them. A grid that changes drops the packed form made from it.
    public var quantized: [Projection: GroupQuantizedMatrix] = [:] {
        didSet {
            for p in Projection.allCases where dense[p] != nil && oldValue[p] != quantized[p] { packed[p] = nil }
        }
    }

    /// A projection's Float32 weight, to read or to change: a packed projection is dequantized
    /// into Float32 and stops being packed (the caller may write to it, which the packed form
    /// would not follow). To read without converting, use `float32Weight`.
    public func weight(_ p: Projection) -> Tensor {
        unpack(p)
        return dense[p]!
    }

    /// A projection's weights in Float32 for reading: the Float32 form, or a dequantized copy
    /// of the packed one (the layer keeps its form; writing to the copy changes nothing).
    public func float32Weight(_ p: Projection) -> Tensor {
        if let w = dense[p] { return w }
        return packed[p]!.dequantized()
    }

    /// Whether the projection has a Float32 form.
    public func hasFloat32(_ p: Projection) -> Bool { dense[p] != nil }

    /// (outFeatures, inFeatures) of a projection's stored weight.
    public func shape(_ p: Projection) -> (outFeatures: Int, inFeatures: Int) { shapes[p]! }

    /// Makes `m` the projection's packed form; its Float32 form is dropped unless `keepFloat32`
    /// (the caller vouches that both hold the same weights).
    public func setPacked(_ m: BlockQuantizedMatrix, for p: Projection, keepFloat32: Bool = false) {
        precondition(m.rows == shapes[p]!.outFeatures && m.columns == shapes[p]!.inFeatures, "a \(m.rows) × \(m.columns) packed \(p)")
        packed[p] = m
        if !keepFloat32 { dense[p] = nil }
    }

    /// Adds a Float32 copy beside a packed-only projection (it stays packed); `dropFloat32Copy`
    /// takes it away again while the packed form is there.
    func addFloat32Copy(_ p: Projection) -> Bool {
        guard dense[p] == nil, let m = packed[p] else { return false }
        dense[p] = m.dequantized()
        return true
    }

    func dropFloat32Copy(_ p: Projection) {
        if packed[p] != nil { dense[p] = nil }
    }

    /// Makes the projection Float32 again (dequantizing a packed-only one).
    public func unpack(_ p: Projection) {
        if dense[p] == nil, let m = packed[p] { dense[p] = m.dequantized() }
        packed[p] = nil
    }

    /// Sets a Float32 weight: loading, or undoing a `keep` load.
    func setFloat32(_ w: Tensor, for p: Projection) {
        dense[p] = w
        packed[p] = nil
    }

    /// Bytes the projections hold in memory, in both forms.
    public var projectionBytes: Int {
        dense.values.reduce(0) { $0 + $1.byteCount } + packed.values.reduce(0) { $0 + $1.byteCount }
    }

    public var wq: Tensor { weight(.q) }
    public var wk: Tensor { weight(.k) }
    public var wv: Tensor { weight(.v) }
    public var wo: Tensor { weight(.o) }
    public var wGate: Tensor { weight(.gate) }
    public var wUp: Tensor { weight(.up) }
    public var wDown: Tensor { weight(.down) }

    /// A layer of zeros; with `allocate: false`, the projections have no weights until the
    /// loader sets them (so a packed load never holds the Float32 model).
    init(_ c: LlamaConfiguration, allocate: Bool = true) {
        attentionNorm = Tensor(zeros: [c.dim])
        ffnNorm = Tensor(zeros: [c.dim])
        shapes = Dictionary(uniqueKeysWithValues: Projection.allCases.map { p in
            let s = p.shape(c)
            return (p, (s.outFeatures, s.inFeatures))
        })
        if allocate {
            for p in Projection.allCases { dense[p] = Tensor(zeros: [shapes[p]!.outFeatures, shapes[p]!.inFeatures]) }
        }
        storedFFN = c.ffnDim
        mlpChannelOrder = Array(0..<c.ffnDim)
    }

    /// GGUF tensor name suffix → weight.
    var named: [(String, Tensor)] {
        [("attn_norm", attentionNorm)] + [Projection.q, .k, .v, .o].map { ($0.ggufName, weight($0)) }
            + [("ffn_norm", ffnNorm)] + [Projection.gate, .up, .down].map { ($0.ggufName, weight($0)) }
    }
}

/// A LLaMA-architecture language model: Float32 weights, or packed 4- and 8-bit blocks.
public final class LlamaModel: @unchecked Sendable {
    public let config: LlamaConfiguration
    public let layers: [LlamaLayer]
    public let finalNorm: Tensor        // (dim)
    public let tokenizer: ByteLevelBPE
    public let rope: RoPETable
    /// The token embedding (vocab, dim) and the untied output projection, each Float32 or packed
    /// (as the projections, `LlamaLayer`).
    var embeddingFloat32: Tensor?
    public private(set) var packedEmbedding: BlockQuantizedMatrix?
    var outputFloat32: Tensor?
    public private(set) var packedOutput: BlockQuantizedMatrix?
    /// Whether the output projection is its own weight (false: tied to the token embedding).
    public let hasOutput: Bool
    /// What of the model a forward runs: every layer kept and wide unless a subnet, a search or
    /// a method's measurement says otherwise (`withShape` sets one for a while).
    public var activeShape: ActiveShape {
        didSet {
            if let problem = activeShape.problem(for: config, stored: layers.map(\.storedFFN)) { preconditionFailure(problem) }
        }
    }

    public init(config: LlamaConfiguration, tokenizer: ByteLevelBPE, tiedOutput: Bool = true, allocate: Bool = true) {
        self.config = config
        self.tokenizer = tokenizer
        layers = (0..<config.layers).map { _ in LlamaLayer(config, allocate: allocate) }
        finalNorm = Tensor(zeros: [config.dim])
        hasOutput = !tiedOutput
        activeShape = .full(config)
        if allocate {
            embeddingFloat32 = Tensor(zeros: [config.vocabSize, config.dim])
            outputFloat32 = tiedOutput ? nil : Tensor(zeros: [config.vocabSize, config.dim])
        }
        rope = RoPETable(headDim: config.headDim, maxPositions: config.contextLength, base: config.ropeBase)
    }

    /// The token embedding in Float32, to read or change (a packed one is converted, as
    /// `LlamaLayer.weight`).
    public var tokenEmbedding: Tensor {
        if embeddingFloat32 == nil { embeddingFloat32 = packedEmbedding!.dequantized() }
        packedEmbedding = nil
        return embeddingFloat32!
    }

    /// The untied output projection in Float32 (converted when packed); nil when tied.
    public var output: Tensor? {
        guard hasOutput else { return nil }
        if outputFloat32 == nil { outputFloat32 = packedOutput!.dequantized() }
        packedOutput = nil
        return outputFloat32!
    }

    /// The projection that turns hidden states into logits, in Float32 for reading: the weight,
    /// or a dequantized copy of a packed one (training's backward reads it).
    public var outputProjection: Tensor {
        if hasOutput { return outputFloat32 ?? packedOutput!.dequantized() }
        return embeddingFloat32 ?? packedEmbedding!.dequantized()
    }

    /// The token embedding in Float32 for reading (a dequantized copy when packed).
    public var float32Embedding: Tensor { embeddingFloat32 ?? packedEmbedding!.dequantized() }

    /// The untied output projection in Float32 for reading; nil when tied.
    public var float32Output: Tensor? { hasOutput ? (outputFloat32 ?? packedOutput!.dequantized()) : nil }

    /// The packed form of the output projection, when it has one.
    var packedOutputProjection: BlockQuantizedMatrix? { hasOutput ? packedOutput : packedEmbedding }

    /// Sets the embedding or the output weight, Float32 or packed (the loader).
    func setEmbedding(_ w: Tensor?, packed: BlockQuantizedMatrix?) { embeddingFloat32 = w; packedEmbedding = packed }
    func setOutput(_ w: Tensor?, packed: BlockQuantizedMatrix?) { outputFloat32 = w; packedOutput = packed }

    /// Every weight with its GGUF name, in Float32: a packed model is converted (use it to load
    /// or to change weights; `parameterCount` and `weightBytes` do not convert).
    public var namedWeights: [(String, Tensor)] {
        var out = [("token_embd.weight", tokenEmbedding)]
        for (i, layer) in layers.enumerated() {
            out += layer.named.map { ("blk.\(i).\($0.0).weight", $0.1) }
        }
        out.append(("output_norm.weight", finalNorm))
        if let output { out.append(("output.weight", output)) }
        return out
    }

    public var parameterCount: Int { config.weightShapes(tiedOutput: !hasOutput).reduce(0) { $0 + $1.1.reduce(1, *) } }

    /// Bytes the weights hold in memory, in whichever forms they are.
    public var weightBytes: Int {
        let norms = (layers.count * 2 + 1) * config.dim * 4
        let head = [embeddingFloat32?.byteCount, packedEmbedding?.byteCount, outputFloat32?.byteCount, packedOutput?.byteCount]
            .compactMap { $0 }.reduce(0, +)
        return norms + head + layers.reduce(0) { $0 + $1.projectionBytes }
    }

    /// Whether any weight is packed (the products then run on the quantized kernels).
    public var isPacked: Bool { packedEmbedding != nil || packedOutput != nil || layers.contains { !$0.packed.isEmpty } }

    /// Gives every projection with a `quantize` grid and no packed form one made from the grid
    /// (its Float32 copy stays: the compression methods read it). Grids whose groups are not
    /// whole blocks of 32 stay on the Float32 path. Returns how many projections were packed.
    @discardableResult
    public func packQuantizedGrids() -> Int {
        var count = 0
        for layer in layers {
            for (p, grid) in layer.quantized where layer.packed[p] == nil {
                if let m = BlockQuantizedMatrix(grid) {
                    m.prepareForKernels()
                    layer.setPacked(m, for: p, keepFloat32: true)
                    count += 1
                }
            }
        }
        return count
    }

    /// Packed matrices by format ("Q4_1", "INT4 g32"), and matrices in Float32 only.
    public var storageSummary: (packed: [String: Int], float32: Int) {
        var packed = [String: Int](), float32 = 0
        func count(_ m: BlockQuantizedMatrix?, _ hasFloat32: Bool) {
            if let m { packed[m.format.description, default: 0] += 1 } else if hasFloat32 { float32 += 1 }
        }
        count(packedEmbedding, embeddingFloat32 != nil)
        if hasOutput { count(packedOutput, outputFloat32 != nil) }
        for layer in layers { for p in Projection.allCases { count(layer.packed[p], layer.hasFloat32(p)) } }
        return (packed, float32)
    }

    /// Bytes that Float32 copies of the packed-only matrices would take.
    public var float32CopyBytes: Int {
        var count = 0
        for layer in layers { for p in Projection.allCases where layer.packed[p] != nil && !layer.hasFloat32(p) { count += layer.shape(p).outFeatures * layer.shape(p).inFeatures } }
        if packedEmbedding != nil && embeddingFloat32 == nil { count += config.vocabSize * config.dim }
        if packedOutput != nil && outputFloat32 == nil { count += config.vocabSize * config.dim }
        return 4 * count
    }

    /// Runs `body` with a Float32 copy beside every packed-only matrix, and takes the copies away
    /// after (what is still packed then). A training run reads Float32 weights in every backward
    /// pass; without copies each step would dequantize them all again.
    public func withFloat32Copies<T>(_ body: () throws -> T) rethrows -> T {
        var added = [(LlamaLayer, Projection)]()
        for layer in layers { for p in Projection.allCases where layer.addFloat32Copy(p) { added.append((layer, p)) } }
        let addedEmbedding = packedEmbedding != nil && embeddingFloat32 == nil
        if addedEmbedding { embeddingFloat32 = packedEmbedding!.dequantized() }
        let addedOutput = packedOutput != nil && outputFloat32 == nil
        if addedOutput { outputFloat32 = packedOutput!.dequantized() }
        defer {
            for (layer, p) in added { layer.dropFloat32Copy(p) }
            if addedEmbedding, packedEmbedding != nil { embeddingFloat32 = nil }
            if addedOutput, packedOutput != nil { outputFloat32 = nil }
        }
        return try body()
    }

    /// Makes every weight Float32 again (`model load ... keep=no`, or before a method that
    /// changes the weights of the whole model).
    public func unpackAll() {
        _ = tokenEmbedding
        _ = output
        for layer in layers { for p in Projection.allCases { layer.unpack(p) } }
    }

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
