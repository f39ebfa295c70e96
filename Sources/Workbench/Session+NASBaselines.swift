import Compression
import Foundation
import Search
import Transformer

/// The structured baselines LLaMA-NAS's subnets are judged against, each a line of subnets of the
/// same super-network (same adapters, so the same recovery budget), scored as a search scores its
/// subnets and kept as a front that `compare` draws beside a search's.
public enum NASBaseline: String, Sendable, CaseIterable {
    /// ShortGPT: drop the layers of lowest Block Influence first, 0, 1, 2, … of them, at full width.
    case dropLayers = "drop_layers"
    /// Minitron's width pruning without its distillation: every MLP at the same width (channels
    /// kept in the importance order when the space sorted them), every layer kept.
    case uniformWidth = "uniform_width"
    /// Wanda at the parameter counts a front spans: the largest subnet's base pruned at each
    /// sparsity (or N:M) in turn. Not subnets: its points are pruned models, parameters counted
    /// without their zeros.
    case wanda

    public var label: String {
        switch self {
        case .dropLayers: return "layer dropping by Block Influence (ShortGPT)"
        case .uniformWidth: return "uniform MLP width (Minitron's width pruning, no distillation)"
        case .wanda: return "Wanda (unstructured or N:M, parameters without zeros)"
        }
    }
}

extension Session {
    /// The baseline's subnets in the elastic space (mode NAS for layer dropping, B or NAS for
    /// width), from the largest down, with what each is ("3 layers dropped: 5, 9, 12").
    public func baselineSubnets(_ baseline: NASBaseline, calibrationSplit: String?, calibrationTokens: Int) throws -> [(genome: [Int], label: String)] {
        let space = try requireElastic()
        switch baseline {
        case .dropLayers:
            let depthGenes = space.groups.indices.compactMap { i -> (gene: Int, layer: Int)? in
                if case .depth(let layer) = space.groups[i].kind { return (i, layer) }
                return nil
            }
            guard !depthGenes.isEmpty else { throw WorkbenchError.invalid("layer dropping needs depth genes: `elastic mode=NAS ...` first") }
            let influence = try blockInfluence(split: calibrationSplit, tokens: calibrationTokens)
            let order = depthGenes.sorted { influence[$0.layer] < influence[$1.layer] }
            var genome = space.maximal
            var out = [(genome, "all \(space.config.layers) layers")]
            var dropped = [Int]()
            for (gene, layer) in order {
                genome[gene] = 1
                dropped.append(layer)
                out.append((genome, "\(dropped.count) dropped: " + dropped.map(String.init).joined(separator: ",")))
            }
            return out
        case .uniformWidth:
            guard space.mode.hasWidth else { throw WorkbenchError.invalid("uniform width needs width genes: `elastic mode=B ...` or `mode=NAS` first") }
            return space.widthChoices.indices.map { j in
                let genome = zip(space.groups, space.maximal).map { group, gene -> Int in
                    if case .width = group.kind { return j }
                    return gene
                }
                return (genome, "MLP \(space.widthChoices[j]) of \(space.config.ffnDim) everywhere")
            }
        case .wanda:
            throw WorkbenchError.invalid("Wanda's points are pruned models, not subnets: `runWandaBaseline`")
        }
    }

    /// Block Influence of every layer (ShortGPT) at the active subnet, on `tokens` tokens of the
    /// calibration text in windows of up to 128.
    public func blockInfluence(split: String?, tokens: Int) throws -> [Double] {
        let model = try requireModel()
        let length = min(128, model.config.contextLength)
        let windows = max(1, tokens / length)
        let sequences = try calibrationWindows(split: calibrationSplitName(split), windows: windows, length: length)
        guard let influence = model.blockInfluence(sequences: sequences, isCancelled: { self.cancellation.isCancelled }) else {
            throw CancellationError()
        }
        return influence
    }

    /// Scores a baseline's subnets (`baselineSubnets`) as a search scores its own, and keeps them
    /// under `name` (method: the baseline) for `compare` and `pareto`. An interrupt keeps the
    /// subnets scored so far.
    public func runBaseline(_ baseline: NASBaseline, subnets: [(genome: [Int], label: String)], objectives wanted: [SearchObjective],
                            evalTokens: Int, tasks: AccuracyProbe? = nil, name: String,
                            progress: @escaping (SearchRecord) -> Void) throws -> SearchRecord {
        try withActiveSubnetRestored { _ in
            var record = baselineRecord(baseline, name: name, objectives: wanted, points: subnets.count, evalTokens: evalTokens)
            for subnet in subnets {
                if cancellation.isCancelled {
                    record.interrupted = true
                    break
                }
                add(try objectives(subnet.genome, wanted, evalTokens: evalTokens, tasks: tasks), genome: subnet.genome, to: &record, progress: progress)
            }
            fronts[name] = record
            lastFront = name
            return record
        }
    }

    /// Wanda at the sizes of a front: the largest subnet first as it is, then its base pruned by
    /// each pattern in turn (Wanda on `calibration`, every projection of every layer), scored
    /// with the super-network's adapters as they are, its parameters counted without the zeros
    /// pruning added (MACs and latency stay those of the dense path the kernels run). The weights
    /// are put back after each pattern, and the session ends as it began: base, recipe, subnet.
    /// An interrupt keeps the patterns scored so far and drops the one under way.
    public func runWandaBaseline(patterns: [Sparsity.Pattern], calibration: CalibrationRequest, objectives wanted: [SearchObjective],
                                 evalTokens: Int, tasks: AccuracyProbe? = nil, name: String,
                                 progress: @escaping (SearchRecord) -> Void) throws -> SearchRecord {
        let model = try requireModel()
        guard base.beforeEdits == nil, !base.hasQuantizationBase, model.layers.allSatisfy(\.quantized.isEmpty) else {
            throw WorkbenchError.invalid("the Wanda baseline prunes the base as it is and puts it back; this base was already pruned or "
                                         + "quantized: `sparsify restore` first")
        }
        if let lora, lora.isMerged { throw WorkbenchError.invalid("the adapters are merged: `lora unmerge` first") }
        for pattern in patterns {
            var parameters = PruningParameters()
            parameters.pattern = pattern
            try parameters.validate(for: model.config)
        }
        return try withActiveSubnetRestored { space in
            var record = baselineRecord(.wanda, name: name, objectives: wanted, points: patterns.count + 1, evalTokens: evalTokens)
            record.pointsAreSubnets = false
            try activate(space.maximal)
            let paramsIndex = wanted.firstIndex(of: .params)
            let zerosBefore = Sparsity.totals(model).zeros
            add(try objectives(space.maximal, wanted, evalTokens: evalTokens, tasks: tasks), genome: space.maximal, to: &record, progress: progress)
            let recipeBefore = recipe
            defer { recipe = recipeBefore }
            for pattern in patterns {
                if cancellation.isCancelled {
                    record.interrupted = true
                    break
                }
                var parameters = PruningParameters()
                parameters.pattern = pattern
                let result: SparsifyResult
                do {
                    defer { if base.beforeEdits != nil { try? restoreDense() } }
                    result = try sparsify(.wanda, parameters: parameters, calibrationSplit: calibration.split, windows: calibration.windows,
                                          length: calibration.length, onLayer: { _ in })
                    if result.interrupted {
                        record.interrupted = true
                        break
                    }
                    var scores = try objectives(space.maximal, wanted, evalTokens: evalTokens, tasks: tasks)
                    if let paramsIndex { scores[paramsIndex] -= Double(result.zeros - zerosBefore) }
                    add(scores, genome: space.maximal, to: &record, progress: progress)
                }
            }
            fronts[name] = record
            lastFront = name
            return record
        }
    }

    func baselineRecord(_ baseline: NASBaseline, name: String, objectives: [SearchObjective], points: Int, evalTokens: Int) -> SearchRecord {
        var record = SearchRecord(name: name, objectives: objectives, evaluated: [], front: [], generationsDone: 0, generations: points,
                                  interrupted: false, heuristic: nil, maximal: nil, evalTokens: evalTokens)
        record.method = baseline.label
        return record
    }

    /// One more point of a baseline: kept, its front updated, shown.
    func add(_ scores: [Double], genome: [Int], to record: inout SearchRecord, progress: (SearchRecord) -> Void) {
        record.evaluated.append(Individual(genome: genome, objectives: scores, generation: record.evaluated.count))
        record.front = Pareto.nonDominated(record.evaluated.map(\.objectives)).map { record.evaluated[$0] }
        record.generationsDone = record.evaluated.count
        fronts[record.name] = record
        progress(record)
    }
}
