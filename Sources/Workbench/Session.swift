import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

/// The engine's one public face: what a notebook session holds (the model, the text, the seed)
/// and the long jobs that run on them, each with progress and cancellation.
public final class Session {
    public static let defaultSeed: UInt64 = 0

    /// The seed every random choice of the session derives from.
    public var seed: UInt64
    public let started: Date
    public let cancellation = CancellationToken()

    public private(set) var model: LlamaModel?
    /// The loaded model's card, its memory read again each time (methods convert and pack weights).
    public internal(set) var modelCard: ModelCard? {
        get {
            guard var card = storedCard, let model else { return storedCard }
            card.refreshMemory(model)
            return card
        }
        set { storedCard = newValue }
    }
    private var storedCard: ModelCard?
    public private(set) var corpus: TextCorpus?
    /// The split `eval ppl` reads by default.
    public private(set) var evaluationSplit: String?
    /// Token streams by split, for the current model's tokenizer.
    private var tokenCache = [String: [Int32]]()
    /// LoRA adapters attached to the model, and every training step taken with them.
    public internal(set) var lora: LoRASet?
    public internal(set) var trainingHistory = [Training.Event]()
    /// The super-network's search space, its active subnet, and searches by name.
    public internal(set) var elastic: ElasticSpace?
    public internal(set) var activeGenome: [Int]?
    public internal(set) var fronts = [String: SearchRecord]()
    public internal(set) var lastFront: String?
    var randomDraws = 0
    /// Multiple-choice tasks that `eval accuracy` scores, and where they came from.
    public internal(set) var tasks = [MultipleChoiceTask]()
    /// Prompt/answer examples `train` learns from instead of the text (the loss on the answer only).
    public internal(set) var examples: (name: String, pairs: [(prompt: String, answer: String)])?
    /// Every transformation applied to the model since it was loaded, in order.
    public internal(set) var recipe = [RecipeStep]()
    /// What the session keeps of the base weights to go back (restore, QA-SparsePEFT's W_fp,
    /// unmerge), and the rules between the weights' forms.
    var base = BaseWeights()

    public init(seed: UInt64 = Session.defaultSeed) {
        self.seed = seed
        self.started = Date()
    }

    /// Forgets the model, the text and the results, and restores the seed.
    public func reset() {
        seed = Session.defaultSeed
        model = nil
        modelCard = nil
        corpus = nil
        evaluationSplit = nil
        tasks = []
        examples = nil
        forgetModelState()
    }

    /// The one list of what belongs to a model and goes with it, when another is installed or the
    /// session is reset: tokens, adapters and their training, the elastic space, its subnet, its
    /// searches and random draws, the recipe, and the base weights kept for restore, QA-SparsePEFT
    /// and unmerge.
    private func forgetModelState() {
        tokenCache = [:]
        lora = nil
        trainingHistory = []
        elastic = nil
        activeGenome = nil
        fronts = [:]
        lastFront = nil
        randomDraws = 0
        recipe = []
        base = BaseWeights()
    }

    /// Adds a step to the recipe.
    func record(_ action: String, _ arguments: String) {
        recipe.append(RecipeStep(action: action, arguments: arguments))
    }

    // MARK: Models

    /// Where the set-up puts SmolLM2-135M-Instruct.
    public static var smolLM2Path: String { TextCorpus.cacheDirectory() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf" }

    /// Loads a GGUF model; `progress` gets (tensors decoded, tensors in all).
    @discardableResult
    public func loadModel(path: String, name: String? = nil, keep: Bool = true, progress: ((Int, Int) -> Void)? = nil) throws -> ModelCard {
        let file = try GGUFFile(path: path)
        let loaded = try LlamaModel.load(file, keep: keep, progress: progress)
        let types = Dictionary(grouping: file.tensors, by: { $0.type.description }).map { "\($0.value.count) \($0.key)" }.sorted()
        let card = ModelCard(name: name ?? file.metadata["general.name"]?.string ?? URL(fileURLWithPath: path).lastPathComponent,
                             source: path, model: loaded, fileBytes: fileSize(path), fileTypes: "tensors " + types.joined(separator: ", "))
        install(loaded, card: card)
        record("loaded", path + (keep && loaded.isPacked ? " (blocks kept)" : ""))
        return card
    }

    /// A small random LLaMA with a byte tokenizer, seeded by the session's seed.
    @discardableResult
    public func tinyModel(layers: Int, dim: Int, heads: Int, kvHeads: Int, ffnDim: Int, vocab: Int, context: Int) throws -> ModelCard {
        let config: LlamaConfiguration
        do {
            config = try LlamaConfiguration(layers: layers, dim: dim, ffnDim: ffnDim, heads: heads, kvHeads: kvHeads,
                                            vocabSize: vocab, contextLength: context)
        } catch let error as GGUFError {
            throw WorkbenchError.invalid("not a valid tiny model: \(error)")
        }
        guard vocab >= 256 else { throw WorkbenchError.invalid("a tiny model's vocabulary holds the 256 bytes: vocab must be at least 256, not \(vocab)") }
        do {
            try MachineMemory.check(config.float32Bytes(), for: "a tiny model of \(formatCount(Double(config.parameterCount()))) parameters")
        } catch let error as MemoryError {
            throw WorkbenchError.invalid("\(error): choose fewer layers or smaller widths")
        }
        let tokens = (0..<vocab).map { $0 < 256 ? String(ByteLevelBPE.byteToUnicode[$0]) : "<unused\($0 - 256)>" }
        let types = (0..<vocab).map { $0 < 256 ? ByteLevelBPE.TokenType.normal.rawValue : ByteLevelBPE.TokenType.unused.rawValue }
        let tokenizer = ByteLevelBPE(tokens: tokens, tokenTypes: types, merges: [], preTokenizer: "gpt2")
        let model = LlamaModel.random(config: config, seed: seed, tokenizer: tokenizer)
        let card = ModelCard(name: "tiny (random, seed \(seed))", source: "random initialization", model: model, fileBytes: nil, fileTypes: nil)
        install(model, card: card)
        record("loaded", "tiny: \(layers) layers, dim \(dim), MLP \(ffnDim), \(heads) heads (\(kvHeads) KV), vocabulary \(vocab), seed \(seed)")
        return card
    }

    private func install(_ model: LlamaModel, card: ModelCard) {
        forgetModelState()
        self.model = model
        modelCard = card
    }

    public func requireModel() throws -> LlamaModel {
        guard let model else { throw WorkbenchError.noModel }
        return model
    }

    // MARK: Text

    /// Chooses the text; `split` is what `eval ppl` reads by default.
    public func useText(_ corpus: TextCorpus, evaluationSplit split: String? = nil) throws {
        let chosen = split ?? (corpus.isAusten ? "persuasion" : corpus.splits[0].name)
        _ = try corpus.text(chosen)
        self.corpus = corpus
        evaluationSplit = chosen
        tokenCache = [:]
    }

    /// The tokens of a split under the current model's tokenizer (cached).
    public func tokens(split: String) throws -> [Int32] {
        let model = try requireModel()
        guard let corpus else { throw WorkbenchError.noData }
        if let hit = tokenCache[split] { return hit }
        let tokens = model.tokenizer.encode(try corpus.text(split))
        tokenCache[split] = tokens
        return tokens
    }

    // MARK: Jobs

    /// Perplexity of the current model on the first `tokens` tokens of a split.
    public func perplexity(tokens count: Int, split: String? = nil, window: Int, stride: Int,
                           progress: ((Perplexity.Progress) -> Void)? = nil) throws -> (PerplexityResult, String) {
        let model = try requireModel()
        guard let split = split ?? evaluationSplit else { throw WorkbenchError.noData }
        let all = try tokens(split: split)
        guard all.count >= 2 else { throw WorkbenchError.notEnoughTokens(have: all.count, need: 2) }
        let slice = Array(all.prefix(count + 1))
        let result = try Perplexity.evaluate(model: model, tokens: slice,
                                             parameters: .init(window: min(window, model.config.contextLength),
                                                               stride: min(stride, window, model.config.contextLength)),
                                             cancellation: cancellation, progress: progress)
        return (result, split)
    }

    /// Generates after a prompt, streaming text; stops early (keeping what came) on interrupt.
    public func generate(prompt: String, tokens: Int, temperature: Float, topK: Int,
                         onText: @escaping (String) -> Void) throws -> Generation.Result {
        let model = try requireModel()
        let ids = model.tokenizer.encode(prompt, parseSpecial: true)
        guard !ids.isEmpty else { throw WorkbenchError.invalid("the prompt is empty") }
        guard ids.count < model.config.contextLength else {
            throw WorkbenchError.invalid("the prompt has \(ids.count) tokens; the context holds \(model.config.contextLength)")
        }
        return Generation.generate(model: model, prompt: ids,
                                   parameters: .init(maxTokens: tokens, temperature: temperature, topK: topK, seed: seed),
                                   cancellation: cancellation, onText: onText)
    }

    /// The session's state as label/value pairs, for `status`.
    public func summary() -> [(String, String)] {
        var rows = [("seed", String(seed))]
        if let modelCard {
            rows.append(("model", "\(modelCard.name): \(modelCard.config.layers) layers, \(formatCount(Double(modelCard.parameters))) parameters"))
        } else {
            rows.append(("model", "none"))
        }
        if let lora {
            let c = lora.configuration
            rows.append(("adapters", "LoRA rank \(c.rank), alpha \(formatCount(Double(c.alpha))) on \(c.targets.map(\.rawValue).joined(separator: ",")): "
                         + "\(formatCount(Double(lora.parameterCount))) parameters" + (lora.isMerged ? ", merged" : "")
                         + (trainingHistory.isEmpty ? "" : ", \(trainingHistory.last!.step) steps trained")))
        }
        if let elastic {
            let widths = elastic.mode.hasWidth ? ", MLP widths " + elastic.widthChoices.map(String.init).joined(separator: "/") : ""
            let active = activeGenome.map { $0 == elastic.maximal ? "largest" : $0 == elastic.minimal ? "smallest" : $0 == elastic.heuristic ? "heuristic" : "chosen" } ?? "largest"
            rows.append(("elastic", "mode \(elastic.mode.rawValue), ranks \(elastic.rankChoices.map(String.init).joined(separator: "/"))\(widths), "
                         + "grouped by \(elastic.grouping.rawValue): \(elastic.groups.count) groups, "
                         + String(format: "%.3g", elastic.subnetCount) + " subnets; active subnet: \(active)"))
        }
        if !fronts.isEmpty {
            rows.append(("searches", fronts.keys.sorted().joined(separator: ", ")))
        }
        if !recipe.isEmpty {
            for (i, step) in recipe.enumerated() { rows.append((i == 0 ? "recipe" : "", "\(i + 1). \(step)")) }
        }
        if let corpus, let evaluationSplit {
            rows.append(("data", "\(corpus.name), evaluating on \(evaluationSplit)"))
        } else {
            rows.append(("data", "none"))
        }
        if !tasks.isEmpty {
            rows.append(("tasks", "\(tasks.count) (\(tasks.reduce(0) { $0 + $1.examples.count }) examples): "
                         + tasks.map(\.name).prefix(6).joined(separator: ", ") + (tasks.count > 6 ? ", …" : "")))
        }
        if let examples {
            rows.append(("training examples", "\(examples.name): \(examples.pairs.count) (`train` learns from them)"))
        }
        rows.append(("memory (resident)", formatBytes(residentBytes())))
        rows.append(("uptime", String(format: "%.1f s", Date().timeIntervalSince(started))))
        return rows
    }
}

/// One transformation of the model, as `status` lists it and exports record it.
public struct RecipeStep: Sendable, CustomStringConvertible {
    public var action: String
    public var arguments: String

    public var description: String { arguments.isEmpty ? action : "\(action): \(arguments)" }
}

func fileSize(_ path: String) -> Int? {
    (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue
}

/// Resident memory of this process (Linux /proc), 0 where unknown.
public func residentBytes() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return (line.split(separator: " ").compactMap { Int($0) }.first ?? 0) * 1024
    }
    return 0
}
