import Foundation
import Tensors

extension LlamaModel {
    /// Loads a LLaMA model from GGUF. With `keep`, matrices stored as Q4_0, Q4_1 or Q8_0 stay in
    /// their blocks (the products compute from them) and only the others are dequantized; without,
    /// every weight is dequantized to Float32. `progress` gets (tensors done, tensors in all).
    public static func load(_ file: GGUFFile, keep: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws -> LlamaModel {
        let (metadata, ffnWidths) = try llamaView(of: file.metadata)
        var config = try LlamaConfiguration.from(metadata)
        guard let embedding = file.info("token_embd.weight") else { throw GGUFError.missingTensor("token_embd.weight") }
        if config.vocabSize == 0 { config.vocabSize = embedding.shape[0] }
        let tokenizer = try tokenizer(from: file.metadata)
        guard tokenizer.vocabularySize == config.vocabSize else {
            throw GGUFError.badValue(key: "tokenizer.ggml.tokens",
                                     reason: "\(tokenizer.vocabularySize) tokens for a vocabulary of \(config.vocabSize)")
        }
        let tiedOutput = file.info("output.weight") == nil
        // Every tensor's shape and the memory they take are checked before the model is allocated:
        // metadata may claim any size. A `deci` layer's MLP is its own width.
        var infos = [GGUFFile.TensorInfo]()
        let shapes = config.weightShapes(tiedOutput: tiedOutput)
        for (name, full) in shapes {
            guard let info = file.info(name) else { throw GGUFError.missingTensor(name) }
            var shape = full
            if let ffnWidths, let l = layerIndex(name) {
                if name.hasSuffix("ffn_gate.weight") || name.hasSuffix("ffn_up.weight") { shape = [ffnWidths[l], config.dim] }
                if name.hasSuffix("ffn_down.weight") { shape = [config.dim, ffnWidths[l]] }
            }
            guard info.shape == shape || (info.shape.count == 1 && [info.elementCount] == shape) else {
                throw GGUFError.badTensor(tensor: name, reason: "shape \(info.shape), the configuration needs \(shape)")
            }
            infos.append(info)
        }
        // Kept as blocks: whole matrices of a type the kernels compute (a narrower deci MLP is
        // padded in Float32 instead).
        let kept = zip(shapes, infos).map { shape, info in
            keep && shape.1.count == 2 && info.shape == shape.1 && info.type.traits?.isKeptPacked == true
        }
        let keptElements = zip(kept, infos).reduce(0.0) { $0 + ($1.0 ? Double($1.1.elementCount) : 0) }
        let keptBytes = zip(kept, infos).reduce(0.0) { $0 + ($1.0 ? Double($1.1.byteCount) * 1.1 : 0) }
        try MachineMemory.check(config.float32Bytes(tiedOutput: tiedOutput) - 4 * keptElements + keptBytes,
                                for: keep ? "this model (its blocks kept)" : "this model in Float32")
        let model = LlamaModel(config: config, tokenizer: tokenizer, tiedOutput: tiedOutput, allocate: false)
        for (index, ((name, full), info)) in zip(shapes, infos).enumerated() {
            if full.count == 1 {
                file.decode(info, into: model.norm(named: name).data)
            } else if kept[index] {
                let blocks = file.withBytes(of: info) { BlockQuantizedMatrix(ggmlType: Int(info.type.rawValue), blocks: $0, rows: full[0], columns: full[1])! }
                blocks.prepareForKernels()
                model.assign(name, float32: nil, packed: blocks)
            } else {
                let weight = Tensor(zeros: full)
                if info.elementCount == weight.count {
                    file.decode(info, into: weight.data)
                } else {
                    // A narrower deci MLP: its rows (gate, up) or columns (down) first, zeros after;
                    // the layer then runs at that width.
                    let part = Tensor(uninitialized: info.shape)
                    file.decode(info, into: part.data)
                    let (rows, columns) = (info.shape[0], info.shape[1])
                    for r in 0..<rows { (weight.data + r * full[1]).update(from: part.data + r * columns, count: columns) }
                }
                model.assign(name, float32: weight, packed: nil)
            }
            progress?(index + 1, shapes.count)
        }
        if let ffnWidths {
            for (layer, width) in zip(model.layers, ffnWidths) { layer.storedFFN = width }
            model.activeShape = model.fullShape
        }
        return model
    }

    /// The norm weight of a GGUF name.
    func norm(named name: String) -> Tensor {
        if name == "output_norm.weight" { return finalNorm }
        let layer = layers[Self.layerIndex(name)!]
        return name.hasSuffix("attn_norm.weight") ? layer.attentionNorm : layer.ffnNorm
    }

    /// Sets the matrix of a GGUF name in one form.
    func assign(_ name: String, float32: Tensor?, packed: BlockQuantizedMatrix?) {
        switch name {
        case "token_embd.weight": setEmbedding(float32, packed: packed)
        case "output.weight": setOutput(float32, packed: packed)
        default:
            let layer = layers[Self.layerIndex(name)!]
            let p = Projection.allCases.first { name.hasSuffix(".\($0.ggufName).weight") }!
            if let packed { layer.setPacked(packed, for: p) } else { layer.setFloat32(float32!, for: p) }
        }
    }

    /// The layer of a `blk.N.` tensor name.
    static func layerIndex(_ name: String) -> Int? {
        let parts = name.split(separator: ".")
        return parts.count > 2 && parts[0] == "blk" ? Int(parts[1]) : nil
    }

    /// A `deci` file (per-layer MLP widths, §6.6) read as `llama`: the widest MLP as the model's
    /// width, and each layer's own. Per-layer head counts are refused: every layer here has the
    /// same attention.
    static func llamaView(of metadata: [String: GGUFValue]) throws -> ([String: GGUFValue], [Int]?) {
        guard metadata["general.architecture"]?.string == "deci" else { return (metadata, nil) }
        var out = metadata
        out["general.architecture"] = .string("llama")
        for (key, value) in metadata where key.hasPrefix("deci.") { out["llama." + key.dropFirst(5)] = value }
        func perLayer(_ key: String) throws -> [Int]? {
            guard let value = metadata["deci." + key] else { return nil }
            if let n = value.int { return [n] }
            guard let values = value.array?.compactMap(\.int), values.count == value.array?.count, !values.isEmpty else {
                throw GGUFError.badValue(key: "deci." + key, reason: "expected a number or an array of numbers")
            }
            return values
        }
        guard let layers = metadata["deci.block_count"]?.int, layers > 0 else { throw GGUFError.missingKey("deci.block_count") }
        for key in ["attention.head_count", "attention.head_count_kv"] {
            if let values = try perLayer(key) {
                guard Set(values).count == 1, values[0] > 0 else {
                    throw GGUFError.badValue(key: "deci." + key, reason: "per-layer head counts \(values) are not supported (every layer's must be the same)")
                }
                out["llama." + key] = .uint32(UInt32(values[0]))
            }
        }
        guard var widths = try perLayer("feed_forward_length") else { throw GGUFError.missingKey("deci.feed_forward_length") }
        if widths.count == 1 { widths = Array(repeating: widths[0], count: layers) }
        guard widths.count == layers, widths.allSatisfy({ $0 > 0 && $0 < 1 << 31 }) else {
            throw GGUFError.badValue(key: "deci.feed_forward_length", reason: "\(widths.count) positive widths for \(layers) layers")
        }
        out["llama.feed_forward_length"] = .uint32(UInt32(widths.max()!))
        return (out, widths)
    }

    public static func load(path: String, keep: Bool = false, progress: ((Int, Int) -> Void)? = nil) throws -> LlamaModel {
        try load(GGUFFile(path: path), keep: keep, progress: progress)
    }

    static func tokenizer(from metadata: [String: GGUFValue]) throws -> ByteLevelBPE {
        guard let model = metadata["tokenizer.ggml.model"]?.string else { throw GGUFError.missingKey("tokenizer.ggml.model") }
        guard model == "gpt2" else {
            throw GGUFError.badValue(key: "tokenizer.ggml.model", reason: "\"\(model)\" tokenizers are not supported (only gpt2 byte-level BPE)")
        }
        guard let tokens = metadata["tokenizer.ggml.tokens"]?.array?.compactMap(\.string), !tokens.isEmpty else {
            throw GGUFError.missingKey("tokenizer.ggml.tokens")
        }
        let merges = metadata["tokenizer.ggml.merges"]?.array?.compactMap(\.string) ?? []
        let types = metadata["tokenizer.ggml.token_type"]?.array?.compactMap { $0.int.map(Int32.init) }
        let pre = metadata["tokenizer.ggml.pre"]?.string ?? "gpt2"
        guard ["smollm", "gpt2", "default"].contains(pre) else {
            throw GGUFError.badValue(key: "tokenizer.ggml.pre", reason: "pre-tokenizer \"\(pre)\" is not supported (smollm, gpt2)")
        }
        return ByteLevelBPE(tokens: tokens, tokenTypes: types?.count == tokens.count ? types : nil, merges: merges,
                            preTokenizer: pre == "default" ? "gpt2" : pre,
                            bosID: metadata["tokenizer.ggml.bos_token_id"]?.int.map(Int32.init),
                            eosID: metadata["tokenizer.ggml.eos_token_id"]?.int.map(Int32.init),
                            addBOS: metadata["tokenizer.ggml.add_bos_token"]?.bool ?? false)
    }

    /// The `tokenizer.*` keys that describe this model's tokenizer.
    public var tokenizerMetadata: [(String, GGUFValue)] {
        var out: [(String, GGUFValue)] = [
            ("tokenizer.ggml.model", .string("gpt2")),
            ("tokenizer.ggml.pre", .string(tokenizer.preTokenizer)),
            ("tokenizer.ggml.tokens", .array(.string, tokenizer.tokens.map(GGUFValue.string))),
            ("tokenizer.ggml.token_type", .array(.int32, tokenizer.tokenTypes.map(GGUFValue.int32))),
            ("tokenizer.ggml.merges", .array(.string, tokenizer.mergeList.map(GGUFValue.string))),
            ("tokenizer.ggml.add_bos_token", .bool(tokenizer.addBOS)),
        ]
        if let bos = tokenizer.bosID { out.append(("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos)))) }
        if let eos = tokenizer.eosID { out.append(("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos)))) }
        return out
    }

    /// A GGUF writer holding this model: weights in `type` (norms always F32, as llama.cpp's converter does).
    public func gguf(type: GGMLType = .f32, name: String = "sculpt") throws -> GGUFWriter {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string(name))
        for (key, value) in config.metadata { writer.set(key, value) }
        for (key, value) in tokenizerMetadata { writer.set(key, value) }
        for (name, weight) in namedWeights {
            try writer.add(name, weight, as: weight.shape.count == 1 ? .f32 : type)
        }
        return writer
    }
}
