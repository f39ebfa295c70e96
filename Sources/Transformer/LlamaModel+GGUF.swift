import Foundation
import Tensors

extension LlamaModel {
    /// Loads a LLaMA model from GGUF, dequantizing every weight to Float32.
    /// `progress` gets (tensors done, tensors in all) after each tensor.
    public static func load(_ file: GGUFFile, progress: ((Int, Int) -> Void)? = nil) throws -> LlamaModel {
        var config = try LlamaConfiguration.from(file.metadata)
        guard let embedding = file.info("token_embd.weight") else { throw GGUFError.missingTensor("token_embd.weight") }
        if config.vocabSize == 0 { config.vocabSize = embedding.shape[0] }
        let tokenizer = try tokenizer(from: file.metadata)
        guard tokenizer.vocabularySize == config.vocabSize else {
            throw GGUFError.badValue(key: "tokenizer.ggml.tokens",
                                     reason: "\(tokenizer.vocabularySize) tokens for a vocabulary of \(config.vocabSize)")
        }
        let tiedOutput = file.info("output.weight") == nil
        // Every tensor's shape and the memory they take are checked before the model is allocated:
        // metadata may claim any size.
        var infos = [GGUFFile.TensorInfo]()
        for (name, shape) in config.weightShapes(tiedOutput: tiedOutput) {
            guard let info = file.info(name) else { throw GGUFError.missingTensor(name) }
            guard info.shape == shape || (info.shape.count == 1 && [info.elementCount] == shape) else {
                throw GGUFError.badTensor(tensor: name, reason: "shape \(info.shape), the configuration needs \(shape)")
            }
            infos.append(info)
        }
        try MachineMemory.check(config.float32Bytes(tiedOutput: tiedOutput), for: "this model in Float32")
        let model = LlamaModel(config: config, tokenizer: tokenizer, tiedOutput: tiedOutput)
        let weights = model.namedWeights
        for (index, ((_, weight), info)) in zip(weights, infos).enumerated() {
            file.decode(info, into: weight.data)
            progress?(index + 1, weights.count)
        }
        return model
    }

    public static func load(path: String, progress: ((Int, Int) -> Void)? = nil) throws -> LlamaModel {
        try load(GGUFFile(path: path), progress: progress)
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

    /// A GGUF writer holding this model: weights in `type` (norms always F32, as llama.cpp's converter does).
    public func gguf(type: GGMLType = .f32, name: String = "sculpt") throws -> GGUFWriter {
        var writer = GGUFWriter()
        writer.set("general.architecture", .string("llama"))
        writer.set("general.name", .string(name))
        for (key, value) in config.metadata { writer.set(key, value) }
        writer.set("tokenizer.ggml.model", .string("gpt2"))
        writer.set("tokenizer.ggml.pre", .string(tokenizer.preTokenizer))
        writer.set("tokenizer.ggml.tokens", .array(.string, tokenizer.tokens.map(GGUFValue.string)))
        writer.set("tokenizer.ggml.token_type", .array(.int32, tokenizer.tokenTypes.map(GGUFValue.int32)))
        writer.set("tokenizer.ggml.merges", .array(.string, tokenizer.mergeList.map(GGUFValue.string)))
        writer.set("tokenizer.ggml.add_bos_token", .bool(tokenizer.addBOS))
        if let bos = tokenizer.bosID { writer.set("tokenizer.ggml.bos_token_id", .uint32(UInt32(bos))) }
        if let eos = tokenizer.eosID { writer.set("tokenizer.ggml.eos_token_id", .uint32(UInt32(eos))) }
        for (name, weight) in namedWeights {
            try writer.add(name, weight, as: weight.shape.count == 1 ? .f32 : type)
        }
        return writer
    }
}
