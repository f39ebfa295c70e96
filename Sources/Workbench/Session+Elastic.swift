import Compression
import Evaluation
import Foundation
import Search
import Tensors
import Transformer

/// What a search optimizes besides loss.
public enum SearchObjective: String, Sendable, CaseIterable {
    case loss, macs, params, latency
    /// Multiple-choice error on the loaded tasks (1 − accuracy), so that it is minimized too.
    case accuracy

    /// Loss and task error are the quality axis of a plot; the others are costs.
    public var isQuality: Bool { self == .loss || self == .accuracy }

    public var label: String {
        switch self {
        case .loss: return "validation loss"
        case .macs: return "MACs per token"
        case .params: return "parameters"
        case .latency: return "latency (ms)"
        case .accuracy: return "task error (1 − accuracy)"
        }
    }
}

/// A finished (or interrupted) search, kept under its name.
public struct SearchRecord: Sendable {
    public var name: String
    public var objectives: [SearchObjective]
    public var evaluated: [Individual]
    public var front: [Individual]
    public var generationsDone: Int
    public var generations: Int
    public var interrupted: Bool
    /// The midpoint heuristic and the largest subnet, evaluated the same way, for reference.
    public var heuristic: Individual?
    public var maximal: Individual?
    public var evalTokens: Int
    /// "NSGA-II", "LINAS", or the baseline the subnets come from.
    public var method = "NSGA-II"
    /// LINAS: each batch of real evaluations after the first, with how well the predictors ordered it.
    public var rounds = [LINAS.Round]()
    /// False for a baseline whose points are edited models (Wanda), not subnets to activate.
    public var pointsAreSubnets = true
}

/// A subnet's objectives as a search sees them: one real evaluation each.
struct SubnetSearchProblem: Problem {
    let session: Session
    let space: ElasticSpace
    let wanted: [SearchObjective]
    let evalTokens: Int
    let tasks: AccuracyProbe?
    var lower: [Int] { space.groups.map { _ in 0 } }
    var upper: [Int] { space.upperBounds }
    var objectiveCount: Int { wanted.count }
    func evaluate(_ genome: [Int]) throws -> [Double] { try session.objectives(genome, wanted, evalTokens: evalTokens, tasks: tasks) }
}

extension Session {
    /// Makes the adapters elastic: fresh LoRA at the largest rank (replacing any), and a search
    /// space over ranks (and MLP widths in mode B). The largest subnet is active.
    /// In mode B, `order` says which channels a narrower MLP keeps: those loaded first (LoNAS), or
    /// the most important on `calibrationTokens` tokens of the training split (EFTNAS). Reordering
    /// moves the frozen MLP weights; the model computes the same function.
    @discardableResult
    public func makeElastic(mode: ElasticMode, ranks: [Int], widths: [Double], grouping: ElasticGrouping,
                            targets: [Projection], alpha: Float?, dropout: Float, sparse: Bool = false,
                            order: MLPChannelOrder = .loaded, calibrationSplit: String? = nil, calibrationTokens: Int = 1024) throws -> ElasticSpace {
        let model = try requireModel()
        guard let top = ranks.max(), ranks.allSatisfy({ $0 >= 1 }) else { throw WorkbenchError.invalid("ranks must be positive") }
        if mode.hasWidth {
            guard !widths.isEmpty, widths.allSatisfy({ $0 > 0 && $0 <= 1 }) else {
                throw WorkbenchError.invalid("widths are fractions of the MLP in (0, 100%], e.g. widths=100%,75%,50%")
            }
            guard targets.contains(.gate) || targets.contains(.up) || targets.contains(.down) else {
                throw WorkbenchError.invalid("mode B slices the MLP: target at least one of gate, up, down")
            }
        }
        if sparse && mode.hasWidth {
            throw WorkbenchError.invalid("sparse=yes keeps the base's zeros under the update; mode B narrows the MLP itself: use mode A (Shears, SQFT)")
        }
        let configuration = LoRAConfiguration(rank: top, alpha: alpha ?? 2 * Float(top), targets: targets, dropout: dropout, sparse: sparse)
        // Reordering MLP channels moves weights; packed codes group along down's inputs and
        // would no longer line up.
        let reorders = mode.hasWidth && (order == .importance || model.layers.contains { $0.mlpChannelOrder != Array(0..<model.config.ffnDim) })
        if reorders && (model.layers.contains { !$0.quantized.isEmpty } || base.hasQuantizationBase) {
            throw WorkbenchError.invalid("the model is quantized: reordering its MLP channels would break the groups of its codes; "
                                         + "use order=loaded on a model quantized in its loaded order, or `sparsify restore` first")
        }
        // Checked before the calibration and before the old adapters come off.
        try configuration.validate(for: model.config)
        let space = ElasticSpace(config: model.config, mode: mode, rankChoices: Array(Set(ranks)), widthFractions: Array(Set(widths)),
                                 grouping: grouping, targets: targets)
        // Measured before anything changes, so that an interrupt or bad input leaves the old adapters.
        var importance: [[Double]]?
        if mode.hasWidth && order == .importance {
            let measured = try measureMLPImportance(split: calibrationSplit, tokens: calibrationTokens, widths: space.widthChoices)
            importance = measured.importance
            space.importanceKept = measured.kept
        }
        try attachLoRA(configuration) {
            // Between taking the old adapters off and putting the new ones on: the MLP order.
            if let importance {
                model.orderMLPChannels(byImportance: importance)
            } else if mode.hasWidth {
                model.restoreLoadedMLPOrder()
            }
        }
        elastic = space
        activeGenome = space.maximal
        return space
    }

    public func requireElastic() throws -> ElasticSpace {
        guard let elastic else { throw WorkbenchError.invalid("the adapters are not elastic: use `elastic mode=A ranks=32,24,16` first") }
        return elastic
    }

    /// A random subnet: uniform per group, the n-th draw of the session's seed.
    public func randomSubnet() throws -> [Int] {
        let space = try requireElastic()
        randomDraws += 1
        var rng = SeededGenerator(seed: seed &+ 0x5EED &* UInt64(randomDraws))
        return space.random(&rng)
    }

    /// Activates a subnet (a genome of choice indices).
    public func activate(_ genome: [Int]) throws {
        let space = try requireElastic()
        guard space.isValid(genome) else { throw WorkbenchError.invalid("a subnet has \(space.groups.count) choices, one per group") }
        space.apply(genome, model: try requireModel(), adapters: try requireLoRA())
        activeGenome = genome
    }

    /// Window shape for subnet evaluation: 4 sequences of up to 128 tokens.
    func evaluationShape(_ model: LlamaModel) -> (batch: Int, seq: Int) {
        (4, min(128, model.config.contextLength - 1))
    }

    /// Mean validation loss of a subnet on the first `tokens` tokens of the validation split.
    public func subnetLoss(_ genome: [Int], tokens: Int, validationSplit: String? = nil) throws -> Double {
        try subnetScore(genome, tokens: tokens, validationSplit: validationSplit).loss
    }

    /// Mean validation loss and next-token accuracy of a subnet on the first `tokens` tokens of the validation split.
    public func subnetScore(_ genome: [Int], tokens: Int, validationSplit: String? = nil) throws -> (loss: Double, accuracy: Double) {
        let model = try requireModel()
        // The validation split (Austen: Northanger Abbey); for a single text, the split `data text` chose.
        guard let (data, _) = try validationData(split: validationSplit) ?? validationData(split: evaluationSplit) else { throw WorkbenchError.noData }
        try activate(genome)
        let (batch, seq) = evaluationShape(model)
        let batches = max(1, (tokens + batch * seq - 1) / (batch * seq))
        return Training.validationScore(model: model, data: data, batch: batch, seq: seq, batches: batches)
    }

    /// Forward latency of a subnet on one sequence of `tokens` tokens: trimmed mean of `runs`
    /// timed passes after warm-up (measured, not computed).
    public func subnetLatency(_ genome: [Int], tokens: Int = 128, runs: Int = 7) throws -> Double {
        let model = try requireModel()
        try activate(genome)
        let seq = min(tokens, model.config.contextLength)
        let ids = (0..<seq).map { Int32(($0 * 7919) % model.config.vocabSize) }
        let workspace = ForwardWorkspace(config: model.config, batch: 1, seq: seq)
        return Throughput.trimmedMean(runs: runs) { _ = model.forward(tokens: ids, batch: 1, seq: seq, logits: .last, workspace: workspace) }
    }

    /// Latency of a subnet and of a reference subnet, timed in alternation (A B A B …, one forward
    /// each per round, after a warm-up) so that a busy moment on a shared machine weighs on both
    /// alike. An interrupt stops between rounds.
    public func pairedLatency(_ genome: [Int], against reference: [Int], tokens: Int = 128, rounds: Int = 15) throws -> PairedLatency {
        let model = try requireModel()
        let seq = min(tokens, model.config.contextLength)
        let ids = (0..<seq).map { Int32(($0 * 7919) % model.config.vocabSize) }
        let workspace = ForwardWorkspace(config: model.config, batch: 1, seq: seq)
        func time(_ subnet: [Int]) throws -> Double {
            try activate(subnet)
            let start = DispatchTime.now().uptimeNanoseconds
            _ = model.forward(tokens: ids, batch: 1, seq: seq, logits: .last, workspace: workspace)
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }
        _ = try time(genome); _ = try time(reference)
        var mine = [Double](), theirs = [Double]()
        for _ in 0..<max(1, rounds) {
            if cancellation.isCancelled { throw CancellationError() }
            mine.append(try time(genome))
            theirs.append(try time(reference))
        }
        return PairedLatency(subnet: mine, reference: theirs)
    }

    /// The objectives of a genome, in the order asked.
    public func objectives(_ genome: [Int], _ wanted: [SearchObjective], evalTokens: Int, tasks: AccuracyProbe? = nil) throws -> [Double] {
        let space = try requireElastic()
        let cost = space.cost(genome)
        return try wanted.map { objective in
            switch objective {
            case .loss: return try subnetLoss(genome, tokens: evalTokens)
            case .macs: return Double(cost.macsPerToken)
            case .params: return Double(cost.parameters)
            case .latency: return try subnetLatency(genome) * 1000
            case .accuracy: return 1 - (try subnetAccuracy(genome, probe: tasks ?? AccuracyProbe()))
            }
        }
    }

    /// NSGA-II over the space. Progress after each generation; an interrupt keeps what was found
    /// under the name. The active subnet is restored at the end.
    public func search(population: Int, generations: Int, objectives wanted: [SearchObjective], evalTokens: Int, tasks: AccuracyProbe? = nil, name: String,
                       progress: @escaping (NSGA2.Progress, SearchRecord) -> Void) throws -> SearchRecord {
        try withActiveSubnetRestored { space in
            var record = try newSearchRecord(name: name, space: space, objectives: wanted, evalTokens: evalTokens, tasks: tasks, generations: generations)
            var parameters = NSGA2.Parameters(population: population, generations: generations, seed: seed)
            // NNCF's BootstrapNAS settings: SBX p 0.9 η 10, polynomial mutation η 3.
            parameters.crossoverEta = 10
            parameters.mutationEta = 3
            let result = try NSGA2.run(SubnetSearchProblem(session: self, space: space, wanted: wanted, evalTokens: evalTokens, tasks: tasks),
                                       parameters: parameters, seeds: [space.maximal, space.heuristic],
                                       isCancelled: { self.cancellation.isCancelled }) { step in
                record.evaluated = step.evaluated
                record.front = space.distinct(Pareto.nonDominated(step.evaluated.map(\.objectives)).map { step.evaluated[$0] })
                record.generationsDone = step.generation
                self.fronts[name] = record
                progress(step, record)
            }
            record.evaluated = result.evaluated
            record.front = space.distinct(result.front)
            record.generationsDone = result.generationsDone
            record.interrupted = result.interrupted
            fronts[name] = record
            lastFront = name
            return record
        }
    }

    /// Runs a search or a baseline over the elastic space (with its adapters), and puts the
    /// active subnet back afterwards, also on a throw.
    func withActiveSubnetRestored<T>(_ body: (ElasticSpace) throws -> T) throws -> T {
        let space = try requireElastic()
        _ = try requireLoRA()
        let restore = activeGenome ?? space.maximal
        defer { try? activate(restore) }
        return try body(space)
    }

    /// A search's record before its first generation: the heuristic and the largest subnet
    /// evaluated the same way, for reference.
    func newSearchRecord(name: String, space: ElasticSpace, objectives wanted: [SearchObjective], evalTokens: Int, tasks: AccuracyProbe?,
                         generations: Int) throws -> SearchRecord {
        let heuristic = Individual(genome: space.heuristic, objectives: try objectives(space.heuristic, wanted, evalTokens: evalTokens, tasks: tasks), generation: 0)
        let maximal = Individual(genome: space.maximal, objectives: try objectives(space.maximal, wanted, evalTokens: evalTokens, tasks: tasks), generation: 0)
        return SearchRecord(name: name, objectives: wanted, evaluated: [], front: [], generationsDone: 0, generations: generations,
                            interrupted: false, heuristic: heuristic, maximal: maximal, evalTokens: evalTokens)
    }
}

extension ElasticSpace {
    /// A front without repeats: genomes that differ only in genes that do nothing (a skipped
    /// layer's width and rank) are one subnet, listed once.
    func distinct(_ front: [Individual]) -> [Individual] {
        var seen = Set<[Int]>()
        return front.filter { seen.insert(canonical($0.genome)).inserted }
    }
}
