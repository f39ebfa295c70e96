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

    public var label: String {
        switch self {
        case .dropLayers: return "layer dropping by Block Influence (ShortGPT)"
        case .uniformWidth: return "uniform MLP width (Minitron's width pruning, no distillation)"
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
            var record = SearchRecord(name: name, objectives: wanted, evaluated: [], front: [], generationsDone: 0, generations: subnets.count,
                                      interrupted: false, heuristic: nil, maximal: nil, evalTokens: evalTokens)
            record.method = baseline.label
            for (k, subnet) in subnets.enumerated() {
                if cancellation.isCancelled {
                    record.interrupted = true
                    break
                }
                record.evaluated.append(Individual(genome: subnet.genome, objectives: try objectives(subnet.genome, wanted, evalTokens: evalTokens, tasks: tasks),
                                                   generation: k))
                record.front = Pareto.nonDominated(record.evaluated.map(\.objectives)).map { record.evaluated[$0] }
                record.generationsDone = k + 1
                fronts[name] = record
                progress(record)
            }
            fronts[name] = record
            lastFront = name
            return record
        }
    }
}
