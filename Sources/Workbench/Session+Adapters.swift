import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

extension Session {
    /// Attaches fresh LoRA adapters (replacing any), seeded by the session's seed. `beforeAttaching`
    /// runs on the bare model, once the old adapters are off. A configuration that does not fit the
    /// model fails before the old adapters come off.
    @discardableResult
    public func attachLoRA(_ configuration: LoRAConfiguration, beforeAttaching: () -> Void = {}) throws -> LoRASet {
        let model = try requireModel()
        try configuration.validate(for: model.config)
        try checkSQFT(configuration, model: model)
        return try replaceAdapters(on: model) {
            beforeAttaching()
            let set = try LoRASet(model: model, configuration: configuration, seed: seed)
            constrainForSQFT(set, model: model)
            return set
        }
    }

    /// QA-SparsePEFT trains through the base's grid: every target must be quantized, from
    /// weights the session kept (W_fp).
    func checkSQFT(_ configuration: LoRAConfiguration, model: LlamaModel) throws {
        guard configuration.quantizationAware else { return }
        if let lora, lora.isMerged {
            // New adapters would make the merged weights the base, and they are off the last
            // quantization's W_fp: quantizing them again gives QA-SparsePEFT its base.
            throw WorkbenchError.invalid("the adapters are merged: quantization_aware=yes trains from the weights of the last `quantize`, "
                                         + "which the merge changed: `quantize int4 ...` the merged model first (or `lora unmerge`)")
        }
        guard base.hasQuantizationBase else {
            throw WorkbenchError.invalid("quantization_aware=yes trains through the base's quantization grid: `quantize int4 ...` first")
        }
        for (l, layer) in model.layers.enumerated() {
            for p in configuration.targets where layer.quantized[p] == nil {
                throw WorkbenchError.invalid("\(l).\(p.rawValue) is not quantized: quantization_aware=yes needs every target quantized "
                                             + "(quantize with the same targets, or adapt fewer)")
            }
        }
    }

    /// SparsePEFT masks by the base's non-zeros as they are now; QA-SparsePEFT adds W_fp and the grid.
    func constrainForSQFT(_ set: LoRASet, model: LlamaModel) {
        guard set.configuration.sparse else { return }
        for (l, p, adapter) in set.ordered {
            adapter.constrain(base.constraint(layer: l, p, model: model, quantizationAware: set.configuration.quantizationAware))
        }
    }

    /// Takes the current adapters (and any elastic state) off the model, then installs new ones.
    /// Merged adapters stay in the weights: the merged weights become the base the new adapters
    /// train on. Callers validate first; should `make` still fail, the old adapters, the base's
    /// kept states and the recipe go back as they were, so the session never ends up with none.
    func replaceAdapters(on model: LlamaModel, _ make: () throws -> LoRASet) throws -> LoRASet {
        try requireUniformWidths(model, for: "adapters")
        let old = (lora, lora?.isMerged ?? false, elastic, activeGenome, trainingHistory, model.activeShape, base, recipe)
        if old.1 { adoptMergedAdapters(model) } else { lora?.detach(from: model) }
        lora = nil
        elastic = nil
        activeGenome = nil
        trainingHistory = []
        model.activeShape = model.fullShape
        do {
            let set = try make()
            lora = set
            return set
        } catch {
            // Merged adapters were released with their update in the weights: put back, they add nothing again.
            old.0?.reattach(to: model, merged: old.1)
            (lora, elastic, activeGenome, trainingHistory, base, recipe) = (old.0, old.2, old.3, old.4, old.6, old.7)
            model.activeShape = old.5
            throw error
        }
    }

    /// After an unmerge: the grids a plain merge took off come back, and the card says so.
    func restoreGridsAfterUnmerge(_ model: LlamaModel) {
        if base.unmerged(model) { modelCard?.packed = ModelQuantization.packedBytes(model) }
    }

    /// A `deci` model's narrower layers are stored padded with zeros to the widest: the commands
    /// that re-slice, prune, quantize or adapt the MLP would treat the padding as weights.
    func requireUniformWidths(_ model: LlamaModel, for what: String) throws {
        guard model.layers.contains(where: { $0.storedFFN != model.config.ffnDim }) else { return }
        throw WorkbenchError.invalid("this model was loaded with per-layer MLP widths (a `deci` file): it evaluates, generates and exports, "
                                     + "but \(what) need equal widths; load the full model and cut the subnet again")
    }

    /// SparsePEFT and QA-SparsePEFT adapters hold masks and grids made from the base when they
    /// were attached: changing the base under them would let their updates fill new zeros.
    /// (Merged ones are not in the way: an edit makes them the base first.)
    func requireNoConstrainedAdapters(for what: String) throws {
        guard let lora, !lora.isMerged, lora.ordered.contains(where: { $0.adapter.constraint != nil }) else { return }
        throw WorkbenchError.invalid("SparsePEFT adapters are attached, with masks (and grids) made from the base as it was: "
                                     + "`lora remove` them before \(what)")
    }

    public func requireLoRA() throws -> LoRASet {
        guard let lora else { throw LoRAError.noAdapters }
        return lora
    }

    /// The training text: `split` of the chosen corpus (Austen default: the train role, Emma + Mansfield Park).
    public func trainingData(split: String?) throws -> (TrainingData, String) {
        guard let corpus else { throw WorkbenchError.noData }
        let name = split ?? (corpus.isAusten ? "train" : corpus.splits[0].name)
        return (TextWindows(try tokens(split: name)), name)
    }

    /// Validation text (Austen default: Northanger Abbey), or nil for a single-file corpus with no split given.
    public func validationData(split: String?) throws -> (TrainingData, String)? {
        guard let corpus else { throw WorkbenchError.noData }
        guard let name = split ?? (corpus.isAusten ? "validation" : nil) else { return nil }
        return (TextWindows(try tokens(split: name)), name)
    }

    /// Trains the attached adapters. Progress after every step; an interrupt stops between
    /// micro-batches and keeps the adapters as trained so far. Every step joins the history.
    /// With elastic adapters, `sampler` says which subnets each step trains; with
    /// `parameters.distillation`, the sandwich's largest subnet teaches the other two.
    public func train(_ parameters: Training.Parameters, split: String?, validationSplit: String?, sampler: SubnetSampler = .uniform,
                      progress: @escaping (Training.Event) -> Void) throws -> Training.Result {
        let model = try requireModel()
        let set = try requireLoRA()
        if sampler != .uniform && elastic == nil {
            throw WorkbenchError.invalid("sampler=\(sampler.rawValue) picks subnets of elastic adapters: use `elastic` first")
        }
        if parameters.distillation && (elastic == nil || sampler != .sandwich) {
            throw WorkbenchError.invalid("distill=yes needs a teacher in every step: with elastic adapters, use sampler=sandwich "
                                         + "(the largest subnet learns from the labels and teaches the smallest and the random one)")
        }
        if set.isMerged {
            throw WorkbenchError.invalid("the adapters are merged into the weights: `lora unmerge` before training them, "
                                         + "or attach new ones (`lora ...`), which train on the merged weights as the base")
        }
        guard parameters.seq < model.config.contextLength else {
            throw WorkbenchError.invalid("seq=\(parameters.seq) does not fit the model's context of \(model.config.contextLength)")
        }
        // Prompt/answer examples (`data examples`) take the place of the text unless a split is named.
        let fromExamples = split == nil ? try exampleData() : nil
        let (train, trainName) = try fromExamples.map { ($0.train, $0.name) } ?? trainingData(split: split)
        let validation: (TrainingData, String)?
        if let fromExamples, validationSplit == nil {
            validation = (fromExamples.validation, fromExamples.name + " (held out)")
        } else {
            validation = try validationData(split: validationSplit)
        }
        // Windows of seq + 1 tokens must fit in each text; say so rather than sample past the end.
        for (data, name) in [(train, trainName)] + (validation.map { [$0] } ?? []) {
            if let windows = data as? TextWindows, windows.stream.count <= parameters.seq + 1 {
                throw WorkbenchError.invalid("`\(name)` has \(windows.stream.count) tokens, too few for windows of seq=\(parameters.seq) "
                                             + "(it needs more than \(parameters.seq + 1)): use a longer text or a smaller seq")
            }
        }
        if trainingHistory.isEmpty, let validation {
            // Where the curve starts: the validation loss before any step.
            let before = Training.validationLoss(model: model, data: validation.0, batch: parameters.batch, seq: parameters.seq,
                                                 batches: parameters.validationBatches)
            let start = Training.Event(step: 0, steps: parameters.steps, trainLoss: .nan, validationLoss: before,
                                       learningRate: 0, gradientNorm: 0, tokensPerSecond: 0, elapsed: 0)
            trainingHistory.append(start)
            progress(start)
        }
        let offset = trainingHistory.last?.step ?? 0
        var p = parameters
        p.seed = seed &+ UInt64(offset)
        // With elastic adapters, every step trains the subnets the sampler picks (LoNAS: one random
        // subnet, uniform per group); validation measures the active subnet, which stays active afterwards.
        let space = elastic
        let active = activeGenome
        // Steps count on from earlier `train`s, so that InstaTune's alternation carries on.
        var step = offset
        let sample: ((inout SeededGenerator) -> [() -> Void])? = space.map { space in
            { rng in
                defer { step += 1 }
                return sampler.genomes(space, &rng, step: step).map { genome in { space.apply(genome, model: model, adapters: set) } }
            }
        }
        let validate: (() -> Void)? = space.map { space in { space.apply(active ?? space.maximal, model: model, adapters: set) } }
        let run = {
            Training.run(model: model, adapters: set, train: train, validation: validation?.0, parameters: p,
                         cancellation: self.cancellation, sampleSubnets: sample, validationSubnet: validate) { event in
                var shifted = event
                shifted.step += offset
                self.trainingHistory.append(shifted)
                progress(shifted)
            }
        }
        // A packed model trains with Float32 copies of its weights for the backward passes (taken
        // away after) when memory allows; otherwise each step dequantizes what it reads.
        let copies = model.float32CopyBytes
        let result = copies > 0 && (try? MachineMemory.check(Double(copies), for: "Float32 copies")) != nil
            ? model.withFloat32Copies(run) : run()
        let c = set.configuration
        let family = c.quantizationAware ? "QA-SparsePEFT" : c.sparse ? "SparsePEFT" : "LoRA"
        let kind = elastic.map { "elastic mode \($0.mode.rawValue) \(family) adapters, sampler \(sampler.rawValue)" } ?? "\(family) rank \(c.rank)"
        record("trained", "\(kind), \((trainingHistory.last?.step ?? offset) - offset) step\((trainingHistory.last?.step ?? offset) - offset == 1 ? "" : "s") of \(p.batch) × \(p.seq) on \(trainName), lr \(p.learningRate)"
               + (result.interrupted ? " (interrupted)" : ""))
        return result
    }

    /// Folds the adapters into the frozen weights. On a sparse base a dense update fills the
    /// zeros: the result says how many zeros were lost, so the caller can warn.
    public func mergeAdapters() throws -> (merged: Int, zerosBefore: Int, zerosAfter: Int, entries: Int, unpacked: Int) {
        let model = try requireModel()
        let set = try requireLoRA()
        guard !set.isMerged else { throw WorkbenchError.invalid("the adapters are already merged") }
        let before = Sparsity.totals(model)
        set.merge(into: model)
        let unpacked = base.merged(set, into: model)
        if unpacked > 0 { modelCard?.packed = ModelQuantization.packedBytes(model) }
        let after = Sparsity.totals(model)
        record("merged adapters", String(format: "%d adapters; zeros %.2f %% → %.2f %%", set.ordered.count,
                                         100 * Double(before.zeros) / Double(before.entries), 100 * Double(after.zeros) / Double(after.entries)))
        return (set.ordered.count, before.zeros, after.zeros, after.entries, unpacked)
    }

    /// Takes the adapters off the model (out of the weights first if merged), with the elastic
    /// space and its subnet: the model computes as its base weights do.
    public func removeAdapters() throws -> Int {
        let model = try requireModel()
        let set = try requireLoRA()
        let wasMerged = set.isMerged
        set.detach(from: model)
        restoreGridsAfterUnmerge(model)
        model.activeShape = model.fullShape
        lora = nil
        elastic = nil
        activeGenome = nil
        trainingHistory = []
        record("removed adapters", wasMerged ? "unmerged first" : "")
        return set.ordered.count
    }

    /// Takes merged adapters back out of the weights.
    public func unmergeAdapters() throws -> Int {
        let model = try requireModel()
        let set = try requireLoRA()
        guard set.isMerged else { throw WorkbenchError.invalid("the adapters are not merged") }
        set.unmerge(from: model)
        restoreGridsAfterUnmerge(model)
        record("unmerged adapters", "")
        return set.ordered.count
    }

    public func saveAdapters(to path: String) throws {
        let model = try requireModel()
        let set = try requireLoRA()
        try PEFTAdapters.save(set, model: model, baseModel: modelCard?.name ?? "unknown", to: path)
    }

    @discardableResult
    public func loadAdapters(from path: String) throws -> LoRASet {
        let model = try requireModel()
        // Read and check everything first: a bad file leaves the current adapters in place.
        let stored = try PEFTAdapters.read(from: path, model: model)
        return try replaceAdapters(on: model) { try stored.attach(to: model) }
    }
}
