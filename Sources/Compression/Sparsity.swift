import Foundation
import Tensors
import Transformer

/// Unstructured and N:M sparsity of a weight matrix (out, in): which entries a score zeroes, and
/// how many zeros a matrix holds. Wanda and magnitude pruning choose the scores; this file
/// chooses the entries.
///
/// Comparison groups (Wanda's code, §1.7):
///   per row      zero the ⌊in·s⌋ lowest scores of every output row
///   N:M          in every M consecutive inputs of a row, zero the N lowest
///   whole matrix zero the ⌊out·in·s⌋ lowest scores of the matrix (magnitude's one threshold)
/// Ties go to the lower index, so the same scores always give the same mask.
public enum Sparsity {
    /// Which entries compete with each other.
    public enum Pattern: Equatable, Sendable, CustomStringConvertible {
        /// A fraction of every row (Wanda) or of the whole matrix (magnitude).
        case unstructured(Double)
        /// N zeros in every M consecutive inputs of a row (2:4, 4:8).
        case nOfM(Int, Int)

        public var description: String {
            switch self {
            case .unstructured(let s): return String(format: "%g %%", s * 100)
            case .nOfM(let n, let m): return "\(n):\(m)"
            }
        }

        /// Parses "2:4", "4:8" (N < M, M ≤ 64).
        public static func nOfM(parsing text: String) -> Pattern? {
            let parts = text.split(separator: ":").map { Int($0) }
            guard parts.count == 2, let n = parts[0], let m = parts[1], n >= 1, n < m, m <= 64 else { return nil }
            return .nOfM(n, m)
        }
    }

    /// Zeroes entries of `weight` (rows, columns) by `score` (same shape), lowest first, in the
    /// groups `pattern` and `wholeMatrix` choose. Returns the entries zeroed that were not zero.
    @discardableResult
    public static func prune(_ weight: Tensor, scores: [Float], rows: Int, columns: Int, pattern: Pattern, wholeMatrix: Bool) -> Int {
        precondition(scores.count == rows * columns && weight.count == rows * columns, "scores for \(rows) × \(columns)")
        var cut = 0
        func zero(_ index: Int) {
            if weight[index] != 0 { cut += 1 }
            weight[index] = 0
        }
        // The k lowest of `indices` by score, ties to the lower index. A non-negative Float's bits
        // order as its value does, so (bits << 32 | index) sorts as (score, index), as integers.
        func lowest(_ indices: Range<Int>, _ k: Int) -> [Int] {
            guard k > 0 else { return [] }
            // (A NaN score, from a NaN weight, ranks last: it is never the one pruned.)
            var keys = indices.map { UInt64(scores[$0] >= 0 ? scores[$0].bitPattern : Float.infinity.bitPattern) << 32 | UInt64($0) }
            keys.sort()
            return keys.prefix(k).map { Int($0 & 0xFFFF_FFFF) }
        }
        switch pattern {
        case .unstructured(let s) where wholeMatrix:
            for i in lowest(0..<(rows * columns), Int(Double(rows * columns) * s)) { zero(i) }
        case .unstructured(let s):
            let k = Int(Double(columns) * s)
            for r in 0..<rows { for i in lowest((r * columns)..<((r + 1) * columns), k) { zero(i) } }
        case .nOfM(let n, let m):
            precondition(columns % m == 0, "\(columns) inputs do not split into groups of \(m)")
            for r in 0..<rows {
                for g in stride(from: r * columns, to: (r + 1) * columns, by: m) { for i in lowest(g..<(g + m), n) { zero(i) } }
            }
        }
        return cut
    }

    /// Zero entries of the first `count` values.
    public static func zeros(_ t: Tensor, count: Int? = nil) -> Int {
        let n = count ?? t.count
        var z = 0
        for i in 0..<n where t[i] == 0 { z += 1 }
        return z
    }

    /// The fraction of zeros of every (layer, projection), for the heat map and the card.
    public static func measured(_ model: LlamaModel) -> [[Double]] {
        model.layers.map { layer in Projection.allCases.map { let w = layer.float32Weight($0); return Double(zeros(w)) / Double(w.count) } }
    }

    /// Zeros and entries over all seven projections of every layer (embeddings and the head are
    /// never pruned and not counted).
    public static func totals(_ model: LlamaModel) -> (zeros: Int, entries: Int) {
        var z = 0, n = 0
        for layer in model.layers {
            for p in Projection.allCases {
                let w = layer.float32Weight(p)
                z += zeros(w)
                n += w.count
            }
        }
        return (z, n)
    }
}

/// What a pruning method is told: how much, in what pattern, where.
public struct PruningParameters: Sendable {
    public var pattern: Sparsity.Pattern = .unstructured(0.5)
    public var targets: [Projection] = Projection.allCases
    /// Layers to prune (all when nil).
    public var layers: [Int]?

    public init() {}

    /// Checks the pattern against every target's input width.
    public func validate(for c: LlamaConfiguration) throws {
        if case .unstructured(let s) = pattern, !(s >= 0 && s < 1) {
            throw LoRAError.mismatch("sparsity must be a fraction in [0, 1): \(s)")
        }
        if case .nOfM(_, let m) = pattern {
            for p in targets where p.shape(c).inFeatures % m != 0 {
                throw LoRAError.mismatch("\(p.rawValue)'s \(p.shape(c).inFeatures) inputs do not split into groups of \(m)")
            }
        }
        if let layers, let bad = layers.first(where: { !(0..<c.layers).contains($0) }) {
            throw LoRAError.mismatch("layer \(bad) outside 0…\(c.layers - 1)")
        }
    }

    func prunes(layer l: Int) -> Bool { layers.map { $0.contains(l) } ?? true }
}

/// Magnitude pruning: score |W_ij|; unstructured sparsity takes one threshold over the whole
/// matrix (layer-wise), N:M works within each row's groups.
public enum MagnitudePruning {
    /// Prunes every target of every chosen layer, in `BlockwiseEdit`'s walk (no calibration):
    /// the model is pruned consistently up to a layer. Returns the layers pruned.
    @discardableResult
    public static func prune(model: LlamaModel, parameters p: PruningParameters, cancellation: CancellationToken? = nil,
                             onLayer: ((Int) -> Void)? = nil) throws -> Int {
        try p.validate(for: model.config)
        let chosen = (0..<model.config.layers).filter { p.prunes(layer: $0) }
        return try BlockwiseEdit.run(model: model, layers: chosen, targets: p.targets, cancellation: cancellation, body: { block in
            for projection in p.targets {
                let w = block.layer.weight(projection)
                let (i, o) = projection.shape(block.config)
                let scores = (0..<w.count).map { abs(w[$0]) }
                Sparsity.prune(w, scores: scores, rows: o, columns: i, pattern: p.pattern, wholeMatrix: true)
            }
        }, onLayer: { l, _ in onLayer?(l) })
    }
}
