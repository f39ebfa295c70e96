import Foundation
import Tensors
import Transformer

/// ALoRA (NAACL'24): LoRA whose ranks move between modules. Every module starts at the budget's
/// rank; each rank has a 0/1 gate. AB-LoRA scores every open rank r of a module on a fixed
/// validation batch,
///
///     CS(r) = −S(M \ r) + S(M_r),   S = −cross-entropy,
///
/// where M \ r is the network with r's gate closed and M_r the base model with only r open. A
/// round prunes the lowest-scoring ranks and gives as many fresh ranks (A's row Kaiming-uniform,
/// B's column zero, as LoRA starts) to the modules that lost none, the most important first.
///
/// Adapters hold `capacity` ranks of storage; the scale s = alpha / budget stays fixed, so a
/// module's rank is the number of its open gates and its update is s · B G A.
public enum ALoRA {
    public struct Parameters: Sendable {
        /// Mean rank per module: the total budget is budget × modules (LoRA rank `budget`'s).
        public var budget = 8
        /// Largest rank one module may reach (storage per adapter).
        public var capacity = 16
        public var alpha: Float = 16
        public var targets: [Projection] = Projection.allCases
        public var dropout: Float = 0

        public init() {}
    }

    /// One adapted projection of one layer.
    public struct Module: Hashable, Sendable, Comparable {
        public var layer: Int
        public var projection: Projection

        public init(layer: Int, projection: Projection) {
            self.layer = layer
            self.projection = projection
        }

        public static func < (a: Module, b: Module) -> Bool { (a.layer, a.projection) < (b.layer, b.projection) }
        public var name: String { "\(layer).\(projection.rawValue)" }
    }

    /// Fresh adapters with `capacity` ranks of storage and the first `budget` gates open.
    public static func attach(model: LlamaModel, parameters p: Parameters, seed: UInt64) throws -> LoRASet {
        guard p.budget >= 1, p.capacity >= p.budget else {
            throw LoRAError.mismatch("ALoRA needs 1 ≤ budget ≤ capacity (budget \(p.budget), capacity \(p.capacity))")
        }
        // alpha' = s · capacity keeps the scale s = alpha / budget whatever the storage.
        let configuration = LoRAConfiguration(rank: p.capacity, alpha: p.alpha / Float(p.budget) * Float(p.capacity),
                                              targets: p.targets, dropout: p.dropout)
        let set = try LoRASet(model: model, configuration: configuration, seed: seed)
        let gates = (0..<p.capacity).map { Float($0 < p.budget ? 1 : 0) }
        for (_, _, adapter) in set.ordered { adapter.setGates(gates) }
        return set
    }

    /// Open ranks per module.
    public static func allocation(_ set: LoRASet) -> [Module: Int] {
        var out = [Module: Int]()
        for (l, p, adapter) in set.ordered { out[Module(layer: l, projection: p)] = adapter.openRanks }
        return out
    }

    /// What one scoring round found and what it cost.
    public struct Importance: Sendable {
        /// Score of every open rank, by module: (storage index, CS).
        public var scores: [Module: [(rank: Int, score: Double)]]
        /// Batched partial forward passes run: each carries one copy of the batch per rank.
        public var passes: Int
        /// Ranks scored; each needs two evaluations (M \ r and M_r), 2 × this unbatched passes.
        public var ranksScored: Int = 0
        public var seconds: Double
        /// Layers run per copy of the batch, and what whole forward passes from the embedding
        /// (two per rank) would have run.
        public var layersRun: Int
        public var layersWithoutCache: Int
        /// One whole forward pass of the batch from the embedding (the best of three, measured):
        /// two per rank are what scoring would cost without the cache and the batching.
        public var wholePassSeconds: Double = 0

        /// Seconds two whole forwards per rank would take.
        public var secondsWithoutCache: Double { Double(2 * ranksScored) * wholePassSeconds }

        /// The mean score of a module's open ranks.
        public func meanScore(_ m: Module) -> Double {
            guard let s = scores[m], !s.isEmpty else { return -.infinity }
            return s.map(\.score).reduce(0, +) / Double(s.count)
        }
    }

    /// Rows one batched scoring pass may carry by default: the ranks of a module at the
    /// defaults (capacity 16, 4 × 64 tokens) in one pass, activations of tens of MB.
    public static let rowsPerScoringPass = 4096

    /// AB-LoRA importance of every open rank on one fixed batch. The residual streams entering
    /// each layer are computed once for the whole network (for M \ r) and once for the base model
    /// (for M_r), so a rank's evaluations run only the layers from its module's on; and the ranks
    /// of one module run together, one copy of the batch per rank in one batched pass whose
    /// adapter gates each copy differently (`ranksPerPass` copies at most, by default as many as
    /// fit `rowsPerScoringPass` rows). The adapters are exactly as they were afterwards, also
    /// when cancelled.
    public static func importance(model: LlamaModel, set: LoRASet, tokens: [Int32], targets: [Int32], batch: Int, seq: Int,
                                  ranksPerPass: Int? = nil,
                                  cancellation: CancellationToken? = nil,
                                  progress: ((Int, Int) -> Void)? = nil) throws -> Importance {
        let started = Date()
        let dim = model.config.dim
        let copyRows = batch * seq
        let perPass = max(1, ranksPerPass ?? rowsPerScoringPass / copyRows)
        let workspace = ForwardWorkspace(config: model.config, batch: batch, seq: seq)
        let saved = model.layers.map(\.adapters)
        defer { for (layer, adapters) in zip(model.layers, saved) { layer.adapters = adapters } }
        // What one evaluation would cost without the cache: a whole forward, timed.
        var wholePass = Double.infinity
        for _ in 0..<3 {
            let t0 = Date()
            _ = model.forward(tokens: tokens, batch: batch, seq: seq, logits: .all, workspace: workspace)
            wholePass = min(wholePass, Date().timeIntervalSince(t0))
        }
        let full = model.residualStreams(tokens: tokens, batch: batch, seq: seq, workspace: workspace)
        for layer in model.layers { layer.adapters = [:] }
        let base = model.residualStreams(tokens: tokens, batch: batch, seq: seq, workspace: workspace)
        for (layer, adapters) in zip(model.layers, saved) { layer.adapters = adapters }

        // One batched pass from layer l: copy g of the batch runs with `groups[g]` as the
        // adapter's gates. Returns each copy's mean cross-entropy.
        var workspaces = [Int: ForwardWorkspace]()
        func meanLosses(from l: Int, residual: Tensor, adapter: LoRAAdapter, groups: [[Float]]) throws -> [Double] {
            let k = groups.count
            let w = workspaces[k] ?? ForwardWorkspace(config: model.config, batch: k * batch, seq: seq)
            workspaces[k] = w
            let stacked = Tensor(uninitialized: [k * copyRows, dim])
            for g in 0..<k { (stacked.data + g * copyRows * dim).update(from: residual.data, count: copyRows * dim) }
            adapter.setGroupGates(groups)
            defer { adapter.setGroupGates(nil) }
            let x = try model.finalStream(fromLayer: l, residual: stacked, batch: k * batch, seq: seq, workspace: w, cancellation: cancellation)
            let losses = model.nextTokenLosses(finalStream: x, rows: k * copyRows, targets: Array(repeating: targets, count: k).flatMap { $0 })
            let counted = max(1, targets.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) })
            return (0..<k).map { g in losses[(g * copyRows)..<((g + 1) * copyRows)].reduce(0.0) { $0 + Double($1) } / Double(counted) }
        }

        var scores = [Module: [(rank: Int, score: Double)]]()
        var passes = 0, layersRun = 0
        let modules = set.ordered
        let total = modules.reduce(0) { $0 + $1.adapter.openRanks }
        var done = 0
        for (l, p, adapter) in modules {
            let gates = adapter.gates ?? [Float](repeating: 1, count: adapter.rank)
            let open = gates.indices.filter { gates[$0] != 0 }
            var moduleScores = [(rank: Int, score: Double)]()
            for chunkStart in stride(from: 0, to: open.count, by: perPass) {
                try cancellation?.check()
                let chunk = Array(open[chunkStart..<min(open.count, chunkStart + perPass)])
                // M \ r: this rank closed, everything else as it is.
                let without = chunk.map { j -> [Float] in var g = gates; g[j] = 0; return g }
                let lossesWithout = try meanLosses(from: l, residual: full[l], adapter: adapter, groups: without)
                // M_r: the base model with only this rank open (the layers before l are the base's).
                let only = chunk.map { j -> [Float] in var g = [Float](repeating: 0, count: gates.count); g[j] = 1; return g }
                for (k, layer) in model.layers.enumerated() where k >= l { layer.adapters = k == l ? [p: adapter] : [:] }
                defer { for (k, layer) in model.layers.enumerated() where k >= l { layer.adapters = saved[k] } }
                let lossesOnly = try meanLosses(from: l, residual: base[l], adapter: adapter, groups: only)
                // CS(r) = −S(M \ r) + S(M_r) = CE(M \ r) − CE(M_r)
                for (i, j) in chunk.enumerated() { moduleScores.append((j, lossesWithout[i] - lossesOnly[i])) }
                passes += 2
                layersRun += 2 * chunk.count * (model.layers.count - l)
                done += chunk.count
                progress?(done, total)
            }
            scores[Module(layer: l, projection: p)] = moduleScores
        }
        return Importance(scores: scores, passes: passes, ranksScored: total, seconds: Date().timeIntervalSince(started),
                          layersRun: layersRun, layersWithoutCache: 2 * total * model.layers.count, wholePassSeconds: wholePass)
    }

    /// A round's changes: the ranks closed, and the modules that got fresh ones.
    public struct Reallocation: Sendable {
        public var pruned: [(module: Module, rank: Int, score: Double)]
        public var grown: [Module: Int]
    }

    /// Closes the `count` lowest-scoring open ranks and opens as many fresh ones in the modules
    /// that lost none and have room: one each in turn, the highest mean score first, so the new
    /// ranks spread as evenly as possible (ALoRA's Algorithm 1). The total rank stays the same.
    public static func reallocate(set: LoRASet, importance: Importance, count: Int) -> Reallocation {
        var adapters = [Module: LoRAAdapter]()
        for (l, p, adapter) in set.ordered { adapters[Module(layer: l, projection: p)] = adapter }
        let ranked = importance.scores.flatMap { m, s in s.map { (module: m, rank: $0.rank, score: $0.score) } }
            .sorted { ($0.score, $0.module, $0.rank) < ($1.score, $1.module, $1.rank) }
        let pruned = Array(ranked.prefix(count))
        for cut in pruned {
            let adapter = adapters[cut.module]!
            var gates = adapter.gates ?? [Float](repeating: 1, count: adapter.rank)
            gates[cut.rank] = 0
            adapter.setGates(gates)
        }
        let losers = Set(pruned.map(\.module))
        var receivers = adapters.keys.filter { !losers.contains($0) }
            .sorted { (importance.meanScore($0), $1) > (importance.meanScore($1), $0) }
        var grown = [Module: Int]()
        var left = pruned.count
        while left > 0 {
            receivers = receivers.filter { adapters[$0]!.openRanks < adapters[$0]!.rank }
            guard !receivers.isEmpty else { break }
            for m in receivers where left > 0 {
                let adapter = adapters[m]!
                var gates = adapter.gates ?? [Float](repeating: 1, count: adapter.rank)
                guard let free = gates.firstIndex(of: 0) else { continue }
                adapter.reinitializeRank(free)
                gates[free] = 1
                adapter.setGates(gates)
                grown[m, default: 0] += 1
                left -= 1
            }
        }
        // No receiver had room: the pruned ranks go back where they were, so the total holds.
        for cut in pruned.suffix(left) {
            let adapter = adapters[cut.module]!
            var gates = adapter.gates ?? [Float](repeating: 1, count: adapter.rank)
            gates[cut.rank] = 1
            adapter.setGates(gates)
        }
        return Reallocation(pruned: Array(pruned.prefix(pruned.count - left)), grown: grown)
    }
}
