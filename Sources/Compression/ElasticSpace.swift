import Foundation
import Tensors
import Transformer

/// LoNAS's two kinds of elastic adapters.
public enum ElasticMode: String, Sendable, CaseIterable {
    /// Elastic rank only (Shears' NLS, SQFT).
    case a = "A"
    /// Elastic rank and elastic MLP width: the first channels of the frozen gate/up outputs (with
    /// their lora_B rows) and of down's inputs (with its lora_A columns) (LoNAS).
    case b = "B"
    /// Elastic rank, MLP width and depth: each layer kept or skipped, but the first and the last
    /// (LLaMA-NAS: the architecture of the base model itself).
    case nas = "NAS"

    /// Whether the space narrows the MLP (B and NAS).
    public var hasWidth: Bool { self != .a }
}

/// Which adapters share one rank choice.
public enum ElasticGrouping: String, Sendable, CaseIterable {
    /// One rank per layer for all its adapters (SQFT).
    case layer
    /// Per layer, attention adapters together and MLP adapters together (LoNAS: [q,k,v], [gate,up]).
    case family
    /// Every adapter its own choice.
    case module
}

/// Which subnets a super-network training step trains.
public enum SubnetSampler: String, Sendable, CaseIterable {
    /// One random subnet, uniform per group (LoNAS, Shears, NNCF).
    case uniform
    /// The largest, the smallest and one random subnet, gradients averaged (BigNAS's sandwich rule).
    /// The largest comes first: with in-place distillation it is the teacher.
    case sandwich
    /// InstaTune (LLaMA-NAS): the steps alternate, the full network on even steps and one random
    /// subnet on odd ones, each its own update (not averaged within a step, as the sandwich does).
    case instatune

    /// The genomes of step `step` (counted over every `train` of the adapters, from 0).
    public func genomes(_ space: ElasticSpace, _ rng: inout SeededGenerator, step: Int = 0) -> [[Int]] {
        switch self {
        case .uniform: return [space.random(&rng)]
        case .sandwich: return [space.maximal, space.minimal, space.random(&rng)]
        case .instatune: return [step % 2 == 0 ? space.maximal : space.random(&rng)]
        }
    }
}

/// Which MLP channels an elastic width keeps (mode B).
public enum MLPChannelOrder: String, Sendable, CaseIterable {
    /// The first channels of the weights as loaded (LoNAS).
    case loaded
    /// The first channels after sorting each layer's channels by importance on calibration text (EFTNAS).
    case importance
}

/// How much of an MLP's channel importance each width choice keeps, mean over layers:
/// in the order the channels were loaded, and after sorting them by importance.
public struct ImportanceKept: Sendable, Equatable {
    public var channels: [Int]
    public var loadedOrder: [Double]
    public var importanceOrder: [Double]
    public var calibrationTokens: Int
    public var calibrationSplit: String

    /// Shares kept by the first `channels[k]` channels, from per-layer importance in the loaded order.
    public init(importance: [[Double]], channels: [Int], calibrationTokens: Int, calibrationSplit: String) {
        func meanShare(_ w: Int, sorted: Bool) -> Double {
            let shares = importance.map { scores -> Double in
                let ranked = sorted ? scores.sorted(by: >) : scores
                return ranked.prefix(w).reduce(0, +) / max(scores.reduce(0, +), .leastNonzeroMagnitude)
            }
            return shares.reduce(0, +) / Double(max(1, shares.count))
        }
        self.channels = channels
        loadedOrder = channels.map { meanShare($0, sorted: false) }
        importanceOrder = channels.map { meanShare($0, sorted: true) }
        self.calibrationTokens = calibrationTokens
        self.calibrationSplit = calibrationSplit
    }
}

/// One design variable: a group of adapters sharing a rank, or a layer's MLP width.
public struct ElasticGroup: Sendable, Equatable {
    public enum Kind: Sendable, Equatable {
        case rank(layer: Int, projections: [Projection])
        case width(layer: Int)
        /// Whether the layer runs: choices [1, 0], kept first (the largest subnet keeps every layer).
        case depth(layer: Int)
    }

    public var kind: Kind
    /// Descending values: ranks, or MLP channels.
    public var choices: [Int]

    public var name: String {
        switch kind {
        case .rank(let layer, let projections): return "layer \(layer) rank [\(projections.map(\.rawValue).joined(separator: ","))]"
        case .width(let layer): return "layer \(layer) MLP width"
        case .depth(let layer): return "layer \(layer) kept"
        }
    }
}

/// What a subnet costs, computed from shapes without running it.
public struct SubnetCost: Sendable, Equatable {
    public var parameters: Int
    public var adapterParameters: Int
    /// Multiply-accumulates per token for the projections, adapters and output head.
    public var macsPerToken: Int
    /// Bytes of the Float32 weights (frozen and adapters) the subnet reads.
    public var bytes: Int
}

/// A weight-sharing super-network's search space: the groups, their choices, and how a genome
/// (one choice index per group, 0 = largest) turns into active ranks and widths.
public final class ElasticSpace {
    public let mode: ElasticMode
    public let grouping: ElasticGrouping
    public let rankChoices: [Int]
    /// Fractions of the MLP width, descending (mode B).
    public let widthFractions: [Double]
    public let groups: [ElasticGroup]
    public let config: LlamaConfiguration
    public let targets: [Projection]
    /// What each width keeps of the MLP's importance, when the channels were sorted by it (mode B).
    public var importanceKept: ImportanceKept?
    /// Which channels a narrower MLP keeps.
    public var channelOrder: MLPChannelOrder { importanceKept == nil ? .loaded : .importance }

    public init(config: LlamaConfiguration, mode: ElasticMode, rankChoices: [Int], widthFractions: [Double],
                grouping: ElasticGrouping, targets: [Projection]) {
        self.config = config
        self.mode = mode
        self.grouping = grouping
        self.rankChoices = rankChoices.sorted(by: >)
        self.widthFractions = mode.hasWidth ? widthFractions.sorted(by: >) : [1]
        self.targets = targets.sorted()
        var groups = [ElasticGroup]()
        let ranks = self.rankChoices
        for layer in 0..<config.layers {
            switch grouping {
            case .layer:
                groups.append(ElasticGroup(kind: .rank(layer: layer, projections: self.targets), choices: ranks))
            case .family:
                let attention = self.targets.filter { [.q, .k, .v, .o].contains($0) }
                let mlp = self.targets.filter { [.gate, .up, .down].contains($0) }
                for family in [attention, mlp] where !family.isEmpty {
                    groups.append(ElasticGroup(kind: .rank(layer: layer, projections: family), choices: ranks))
                }
            case .module:
                for p in self.targets { groups.append(ElasticGroup(kind: .rank(layer: layer, projections: [p]), choices: ranks)) }
            }
            if mode.hasWidth {
                let widths = self.widthFractions.map { ElasticSpace.channels($0, of: config.ffnDim) }
                groups.append(ElasticGroup(kind: .width(layer: layer), choices: widths))
            }
            // The first and the last layer always run (embedding-side and head-side blocks matter most).
            if mode == .nas && layer != 0 && layer != config.layers - 1 {
                groups.append(ElasticGroup(kind: .depth(layer: layer), choices: [1, 0]))
            }
        }
        self.groups = groups
    }

    /// Channels kept for a fraction of the MLP: rounded to a multiple of 8 (GEMM-friendly), at least 8.
    public static func channels(_ fraction: Double, of full: Int) -> Int {
        let raw = Int((fraction * Double(full)).rounded())
        return raw >= full ? full : max(8, raw / 8 * 8)
    }

    /// MLP channel choices, largest first (mode B; empty in mode A).
    public var widthChoices: [Int] {
        mode.hasWidth ? widthFractions.map { ElasticSpace.channels($0, of: config.ffnDim) } : []
    }

    public var subnetCount: Double { groups.reduce(1.0) { $0 * Double($1.choices.count) } }
    public var upperBounds: [Int] { groups.map { $0.choices.count - 1 } }

    // MARK: Named subnets

    public var maximal: [Int] { groups.map { _ in 0 } }
    public var minimal: [Int] { groups.map { $0.choices.count - 1 } }
    /// The midpoint heuristic of LoNAS/Shears/SQFT: index (n − 1) / 2 of each descending list
    /// (even lengths round to the larger value: [32, 28] → 32); every layer kept.
    public var heuristic: [Int] {
        groups.map { group in
            if case .depth = group.kind { return 0 }
            return (group.choices.count - 1) / 2
        }
    }

    public func random(_ rng: inout SeededGenerator) -> [Int] {
        groups.map { Int(rng.next() % UInt64($0.choices.count)) }
    }

    /// Every group at the choice nearest a rank and/or a width fraction.
    public func uniform(rank: Int?, widthFraction: Double?) -> [Int] {
        groups.map { group in
            let target: Int?
            switch group.kind {
            case .rank: target = rank
            case .width: target = widthFraction.map { ElasticSpace.channels($0, of: config.ffnDim) }
            case .depth: target = nil
            }
            guard let target else { return 0 }
            return group.choices.indices.min { abs(group.choices[$0] - target) < abs(group.choices[$1] - target) } ?? 0
        }
    }

    public func isValid(_ genome: [Int]) -> Bool {
        genome.count == groups.count && zip(genome, groups).allSatisfy { $0 >= 0 && $0 < $1.choices.count }
    }

    // MARK: Applying

    /// Active rank per (layer, projection) and MLP width per layer for a genome.
    public func resolve(_ genome: [Int]) -> (ranks: [[Projection: Int]], widths: [Int]) {
        var ranks = [[Projection: Int]](repeating: [:], count: config.layers)
        var widths = [Int](repeating: config.ffnDim, count: config.layers)
        for (group, index) in zip(groups, genome) {
            switch group.kind {
            case .rank(let layer, let projections): for p in projections { ranks[layer][p] = group.choices[index] }
            case .width(let layer): widths[layer] = group.choices[index]
            case .depth: break
            }
        }
        return (ranks, widths)
    }

    /// The genome with the genes that do nothing set to the largest choice: a skipped layer's rank
    /// and width. Two genomes with the same canonical form are the same subnet.
    public func canonical(_ genome: [Int]) -> [Int] {
        let kept = kept(genome)
        return zip(groups, genome).map { group, gene in
            switch group.kind {
            case .rank(let layer, _), .width(let layer): return kept[layer] ? gene : 0
            case .depth: return gene
            }
        }
    }

    /// Whether each layer runs in a genome (every layer outside mode NAS).
    public func kept(_ genome: [Int]) -> [Bool] {
        var kept = [Bool](repeating: true, count: config.layers)
        for (group, index) in zip(groups, genome) {
            if case .depth(let layer) = group.kind { kept[layer] = group.choices[index] == 1 }
        }
        return kept
    }

    /// Sets the model's MLP widths and the adapters' ranks.
    public func apply(_ genome: [Int], model: LlamaModel, adapters: LoRASet) {
        precondition(isValid(genome), "a genome of \(genome.count) genes for \(groups.count) groups")
        let (ranks, widths) = resolve(genome)
        let kept = kept(genome)
        var shape = model.activeShape
        for l in shape.layers.indices {
            shape.layers[l].mlpWidth = widths[l]
            shape.layers[l].kept = kept[l]
        }
        model.activeShape = shape
        for l in model.layers.indices {
            for (p, adapter) in adapters.adapters[l] { adapter.activeRank = ranks[l][p] ?? adapter.rank }
        }
    }

    // MARK: Cost

    public func cost(_ genome: [Int]) -> SubnetCost {
        let c = config
        let (ranks, widths) = resolve(genome)
        let kept = kept(genome)
        var frozen = c.vocabSize * c.dim + c.dim
        var macs = c.vocabSize * c.dim
        var adapterParameters = 0
        // A skipped layer costs nothing: no weights read, no products.
        for l in 0..<c.layers where kept[l] {
            let attention = 2 * c.dim * c.dim + 2 * c.kvDim * c.dim
            let mlp = 3 * c.dim * widths[l]
            frozen += attention + mlp + 2 * c.dim
            macs += attention + mlp
            for (p, r) in ranks[l] {
                let (i, o) = p.shape(c, ffn: widths[l])
                adapterParameters += r * (i + o)
                macs += r * (i + o)
            }
        }
        return SubnetCost(parameters: frozen + adapterParameters, adapterParameters: adapterParameters,
                          macsPerToken: macs, bytes: 4 * (frozen + adapterParameters))
    }
}
