import Foundation
import Tensors
import Transformer

/// LoRA adapters as PEFT saves them: `adapter_model.safetensors` with PEFT's tensor names and
/// `adapter_config.json`. Q and K adapters are stored in Hugging Face's row order: Sculpt keeps
/// GGUF's (rows of each head interleaved for adjacent-pair RoPE), so `lora_B` of q and k is
/// permuted on the way out and back on the way in; `lora_A` is untouched (the permutation acts on
/// output rows only). When the MLP channels were reordered (`elastic order=importance`), gate and
/// up `lora_B` rows and down `lora_A` columns go back to the loaded order too.
public enum PEFTAdapters {
    public static let weightsFile = "adapter_model.safetensors"
    public static let configFile = "adapter_config.json"

    static func tensorName(layer: Int, projection: Projection, matrix: String) -> String {
        "base_model.model.model.layers.\(layer).\(projection.huggingFaceName).lora_\(matrix).weight"
    }

    /// GGUF row → Hugging Face row, per head of `headDim`: HF row c·d/2 + p holds GGUF row 2p + c.
    static func huggingFaceRow(_ ggufRow: Int, headDim d: Int) -> Int {
        let head = ggufRow / d, r = ggufRow % d
        return head * d + (r % 2) * (d / 2) + r / 2
    }

    /// Rows permuted GGUF → HF (`toHuggingFace`) or back.
    static func permuteRows(_ t: Tensor, headDim: Int, toHuggingFace: Bool) -> Tensor {
        let out = Tensor(zeros: t.shape)
        let width = t.shape[1]
        for row in 0..<t.shape[0] {
            let hf = huggingFaceRow(row, headDim: headDim)
            let (from, to) = toHuggingFace ? (row, hf) : (hf, row)
            (out.data + to * width).update(from: t.data + from * width, count: width)
        }
        return out
    }

    /// MLP channels in the loaded order (`toLoaded`) or back to the stored one: gate/up rows, down columns.
    /// Stored channel i is loaded channel `order[i]`.
    static func permuteChannels(_ t: Tensor, order: [Int], rows: Bool, toLoaded: Bool) -> Tensor {
        let out = Tensor(zeros: t.shape)
        let (height, width) = (t.shape[0], t.shape[1])
        for (stored, loaded) in order.enumerated() {
            let (from, to) = toLoaded ? (stored, loaded) : (loaded, stored)
            if rows {
                (out.data + to * width).update(from: t.data + from * width, count: width)
            } else {
                for r in 0..<height { out.data[r * width + to] = t.data[r * width + from] }
            }
        }
        return out
    }

    /// A tensor as PEFT (Hugging Face order, loaded MLP order) has it, or back (`toHuggingFace` false).
    static func exchangeOrder(_ t: Tensor, matrix: String, projection p: Projection, layer: LlamaLayer, model: LlamaModel,
                              toHuggingFace: Bool) -> Tensor {
        let reordered = layer.mlpChannelOrder != Array(layer.mlpChannelOrder.indices)
        switch (matrix, p) {
        case ("B", .q), ("B", .k): return permuteRows(t, headDim: model.config.headDim, toHuggingFace: toHuggingFace)
        case ("B", .gate) where reordered, ("B", .up) where reordered: return permuteChannels(t, order: layer.mlpChannelOrder, rows: true, toLoaded: toHuggingFace)
        case ("A", .down) where reordered: return permuteChannels(t, order: layer.mlpChannelOrder, rows: false, toLoaded: toHuggingFace)
        default: return t
        }
    }

    public static func save(_ set: LoRASet, model: LlamaModel, baseModel: String, to directory: String) throws {
        let url = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
            throw LoRAError.unwritable(path: directory, reason: "it is a file; adapters are saved as a directory of two files")
        }
        do {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        } catch {
            throw LoRAError.unwritable(path: directory, reason: fileSystemReason(error))
        }
        var tensors = [(String, Tensor)]()
        var rankPattern = [String: Int]()
        for (l, p, adapter) in set.ordered {
            // Gated adapters (ALoRA) keep only their open ranks: module m gets rank r_m.
            let (a, b) = openRanks(adapter)
            if adapter.gates != nil { rankPattern[moduleKey(layer: l, projection: p)] = a.shape[0] }
            for (matrix, tensor) in [("A", a), ("B", b)] {
                tensors.append((tensorName(layer: l, projection: p, matrix: matrix),
                                exchangeOrder(tensor, matrix: matrix, projection: p, layer: model.layers[l], model: model, toHuggingFace: true)))
            }
        }
        do {
            try Safetensors.encode(tensors, metadata: ["format": "pt"]).write(to: url.appendingPathComponent(weightsFile), options: .atomic)
            let scale = set.ordered.first?.adapter.scale ?? 1
            try configJSON(set.configuration, baseModel: baseModel, rankPattern: rankPattern, scale: scale)
                .write(to: url.appendingPathComponent(configFile), options: .atomic)
        } catch {
            throw LoRAError.unwritable(path: directory, reason: fileSystemReason(error))
        }
    }

    /// PEFT's key for a module in `rank_pattern` and `alpha_pattern`.
    static func moduleKey(layer: Int, projection: Projection) -> String { "model.layers.\(layer).\(projection.huggingFaceName)" }

    /// A and B with only the open ranks (all of them without gates). A module with none open is
    /// written as rank 1 with a zero B column: PEFT has no rank-0 adapter, and this one adds nothing.
    static func openRanks(_ adapter: LoRAAdapter) -> (a: Tensor, b: Tensor) {
        guard let gates = adapter.gates else { return (adapter.a, adapter.b) }
        let open = gates.indices.filter { gates[$0] != 0 }
        let kept = open.isEmpty ? [0] : open
        let a = Tensor(zeros: [kept.count, adapter.inFeatures]), b = Tensor(zeros: [adapter.outFeatures, kept.count])
        for (k, j) in kept.enumerated() {
            (a.data + k * adapter.inFeatures).update(from: adapter.a.data + j * adapter.inFeatures, count: adapter.inFeatures)
            if !open.isEmpty { for row in 0..<adapter.outFeatures { b[row * kept.count + k] = adapter.b[row * adapter.rank + j] } }
        }
        return (a, b)
    }

    static func configJSON(_ c: LoRAConfiguration, baseModel: String, rankPattern: [String: Int] = [:], scale: Float = 1) throws -> Data {
        // Uneven ranks: the most common rank is `r`, the others go in rank_pattern; alpha follows
        // each rank so that every module keeps the one scale s = alpha / r.
        let counts = Dictionary(grouping: rankPattern.values, by: { $0 }).mapValues(\.count)
        let r = rankPattern.isEmpty ? c.rank : counts.max { ($0.value, -$0.key) < ($1.value, -$1.key) }!.key
        let alpha = rankPattern.isEmpty ? c.alpha : scale * Float(r)
        let pattern = rankPattern.filter { $0.value != r }
        var config: [String: Any] = [
            "rank_pattern": pattern, "alpha_pattern": pattern.mapValues { scale * Float($0) },
            "peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": alpha, "lora_dropout": c.dropout,
            "target_modules": c.targets.map { String($0.huggingFaceName.split(separator: ".").last!) },
            "bias": "none", "fan_in_fan_out": false, "inference_mode": true, "use_rslora": false,
            "base_model_name_or_path": baseModel,
        ]
        if pattern.isEmpty { config["rank_pattern"] = [String: Int](); config["alpha_pattern"] = [String: Float]() }
        return try JSONSerialization.data(withJSONObject: config, options: [.prettyPrinted, .sortedKeys])
    }

    /// Adapters read from disk and checked against a model, not yet attached.
    public struct Stored {
        public let configuration: LoRAConfiguration
        /// Values per tensor name, already in Sculpt's row and channel order.
        let values: [String: Tensor]
        /// Uneven ranks (PEFT's rank_pattern): each module's rank; the set then holds the largest
        /// and gates the rest shut, as ALoRA's adapters do.
        let ranks: [String: Int]

        /// Attaches fresh adapters and fills them with the stored values.
        public func attach(to model: LlamaModel) throws -> LoRASet {
            let set = try LoRASet(model: model, configuration: configuration, seed: 0)
            for (l, p, adapter) in set.ordered {
                let a = values[tensorName(layer: l, projection: p, matrix: "A")]!, b = values[tensorName(layer: l, projection: p, matrix: "B")]!
                let r = a.shape[0]
                // A's first r rows and B's first r columns; the storage beyond stays closed.
                adapter.a.data.update(from: a.data, count: a.count)
                for row in 0..<adapter.outFeatures {
                    (adapter.b.data + row * adapter.rank).update(from: b.data + row * r, count: r)
                }
                if !ranks.isEmpty { adapter.setGates((0..<adapter.rank).map { Float($0 < r ? 1 : 0) }) }
            }
            return set
        }
    }

    /// Reads adapters saved by `save` (or by PEFT, in F32) and checks every tensor against `model`,
    /// which it does not change.
    public static func read(from directory: String, model: LlamaModel) throws -> Stored {
        let url = URL(fileURLWithPath: directory)
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) else {
            throw LoRAError.unreadable(path: directory, reason: "no such directory")
        }
        guard isDirectory.boolValue else {
            throw LoRAError.unreadable(path: directory, reason: "it is a file; give the directory that holds \(configFile) and \(weightsFile)")
        }
        let configPath = url.appendingPathComponent(configFile).path
        guard let configData = FileManager.default.contents(atPath: configPath) else {
            throw LoRAError.unreadable(path: directory, reason: "no readable \(configFile)")
        }
        guard let config = try? JSONSerialization.jsonObject(with: configData) as? [String: Any],
              let rankValue = config["r"] as? NSNumber, let alphaValue = config["lora_alpha"] as? NSNumber,
              let modules = config["target_modules"] as? [String] else {
            throw LoRAError.unreadable(path: configPath, reason: "needs r, lora_alpha and target_modules")
        }
        // NSNumber's intValue wraps huge values and truncates fractions: check the double first.
        let rankDouble = rankValue.doubleValue
        guard rankDouble.isFinite, rankDouble == rankDouble.rounded(), rankDouble >= 1, rankDouble <= 1_000_000 else {
            throw LoRAError.unreadable(path: configPath, reason: "r must be a positive integer, not \(rankValue)")
        }
        let alpha = alphaValue.floatValue
        guard alpha.isFinite else { throw LoRAError.unreadable(path: configPath, reason: "lora_alpha must be a finite number") }
        var targets = [Projection]()
        for module in modules {
            guard let p = Projection.allCases.first(where: { $0.huggingFaceName.hasSuffix("." + module) }) else {
                throw LoRAError.mismatch("unknown target module \(module)")
            }
            targets.append(p)
        }
        let dropout = (config["lora_dropout"] as? NSNumber)?.floatValue ?? 0
        guard dropout.isFinite, dropout >= 0, dropout < 1 else { throw LoRAError.unreadable(path: configPath, reason: "lora_dropout must be in [0, 1)") }
        // rank_pattern / alpha_pattern (uneven ranks, as ALoRA leaves them): one scale for all.
        let rankPattern = (config["rank_pattern"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
        let alphaPattern = (config["alpha_pattern"] as? [String: Any] ?? [:]).compactMapValues { ($0 as? NSNumber)?.doubleValue }
        var ranks = [String: Int]()
        if !rankPattern.isEmpty {
            let scale = Double(alpha) / rankDouble
            for l in model.layers.indices {
                for p in targets {
                    let key = moduleKey(layer: l, projection: p)
                    let match = rankPattern.first { key == $0.key || key.hasSuffix("." + $0.key) }
                    let r = match?.value ?? rankDouble
                    guard r.isFinite, r == r.rounded(), r >= 1, r <= 1_000_000 else {
                        throw LoRAError.unreadable(path: configPath, reason: "rank_pattern gives \(key) rank \(r)")
                    }
                    let moduleAlpha = alphaPattern.first { key == $0.key || key.hasSuffix("." + $0.key) }?.value ?? Double(alpha)
                    guard abs(moduleAlpha / r - scale) <= 1e-4 * scale else {
                        throw LoRAError.mismatch("\(key) has scale \(moduleAlpha / r), others \(scale): Sculpt loads uneven ranks with one scale alpha / r")
                    }
                    ranks[key] = Int(r)
                }
            }
        }
        let capacity = ranks.values.max() ?? Int(rankDouble)
        let configuration = LoRAConfiguration(rank: capacity, alpha: Float(Double(alpha) / rankDouble * Double(capacity)), targets: targets, dropout: dropout)
        try configuration.validate(for: model.config)

        let weightsPath = url.appendingPathComponent(weightsFile).path
        guard let weights = FileManager.default.contents(atPath: weightsPath) else {
            throw LoRAError.unreadable(path: directory, reason: "no readable \(weightsFile)")
        }
        let tensors = try Safetensors.decode(weights, path: weightsPath)
        var values = [String: Tensor]()
        for l in model.layers.indices {
            for p in configuration.targets {
                let (i, o) = p.shape(model.config)
                let r = ranks[moduleKey(layer: l, projection: p)] ?? configuration.rank
                for (matrix, shape) in [("A", [r, i]), ("B", [o, r])] {
                    let name = tensorName(layer: l, projection: p, matrix: matrix)
                    guard let source = tensors[name] else { throw LoRAError.mismatch("no tensor \(name)") }
                    guard source.shape == shape else { throw LoRAError.mismatch("\(name) is \(source.shape), this model needs \(shape)") }
                    values[name] = exchangeOrder(source, matrix: matrix, projection: p, layer: model.layers[l], model: model, toHuggingFace: false)
                }
            }
        }
        return Stored(configuration: configuration, values: values, ranks: ranks)
    }

    /// Reads adapters and attaches them to `model` (replacing none: the caller takes old ones off).
    public static func load(from directory: String, into model: LlamaModel) throws -> LoRASet {
        try read(from: directory, model: model).attach(to: model)
    }
}
