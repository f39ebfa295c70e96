import Compression
import Foundation
import Tensors
import Transformer

/// The one owner of what the session keeps of the base weights, and of the rules between the
/// forms. The model's layers hold each projection's live forms (Float32, packed blocks, a
/// `quantize` grid's codes; `LlamaLayer` keeps those three in step). Beside them the session
/// keeps three earlier states, each for one way back:
///
///   - `beforeEdits`: the projections before the first pruning or quantization of this base,
///     for `sparsify restore`;
///   - `beforeQuantization`: the projections just before the last `quantize` (W_fp), the base
///     QA-SparsePEFT trains through the grid from;
///   - `gridsBeforeMerge`: the grids a plain merge moved the weights off, put back by unmerge.
///
/// The rules: pruning a quantized projection moves its codes and W_fp with it; a merge that
/// leaves the grid takes the grid off (and unmerge puts it back); and when a method edits the
/// base while adapters are merged, the merged weights become the base (`adoptMerge`): the
/// adapters go, unmerge no longer applies, and the three states start again from the new base.
struct BaseWeights {
    /// The projections by layer and `Projection.allCases` order, with the MLP channel order then.
    struct Snapshot {
        var weights: [[Tensor]]
        var channelOrder: [[Int]]
    }

    private(set) var beforeEdits: Snapshot?
    private(set) var beforeQuantization: [[Tensor]]?
    private var gridsBeforeMerge = [Int: [Projection: GroupQuantizedMatrix]]()

    var hasQuantizationBase: Bool { beforeQuantization != nil }

    // MARK: Edits

    /// Keeps a copy of every projection before the first pruning or quantization of this base.
    mutating func keepBeforeEdits(_ model: LlamaModel) throws {
        guard beforeEdits == nil else { return }
        try Self.checkRoomForACopy(of: model)
        beforeEdits = Snapshot(weights: model.layers.map { layer in Projection.allCases.map { layer.float32Weight($0).copy() } },
                               channelOrder: model.layers.map(\.mlpChannelOrder))
    }

    /// Whether memory holds a Float32 copy of every projection (a restore point).
    static func checkRoomForACopy(of model: LlamaModel) throws {
        let bytes = model.layers.reduce(0) { sum, layer in sum + Projection.allCases.reduce(0) { $0 + layer.shape($1).outFeatures * layer.shape($1).inFeatures * 4 } }
        do {
            try MachineMemory.check(Double(bytes), for: "a copy of the dense weights (to restore them later)")
        } catch let error as MemoryError {
            throw WorkbenchError.invalid("\(error)")
        }
    }

    /// Puts the projections back as they were before the first edit, with no grids: the base
    /// is Float32 and dense again, and nothing of the edits is kept.
    mutating func restore(_ model: LlamaModel) throws {
        guard let beforeEdits else { preconditionFailure("the session checks for a restore point first") }
        guard beforeEdits.channelOrder == model.layers.map(\.mlpChannelOrder) else {
            throw WorkbenchError.invalid("the MLP channels were reordered after pruning: reload the model to get the dense weights")
        }
        for (layer, weights) in zip(model.layers, beforeEdits.weights) {
            for (p, w) in zip(Projection.allCases, weights) { layer.weight(p).data.update(from: w.data, count: w.count) }
            layer.quantized = [:]
        }
        self = BaseWeights()
    }

    /// W_fp for a quantization of `targets` in `layers` (nil: all): the weights as they are for
    /// what it quantizes, the earlier W_fp (or the weights) for the rest. Taken before it runs.
    func quantizationBase(_ model: LlamaModel, layers: [Int]?, targets: [Projection]) -> [[Tensor]] {
        let chosen = Set(layers ?? Array(0..<model.config.layers))
        return model.layers.enumerated().map { l, layer in
            Projection.allCases.enumerated().map { k, p in
                chosen.contains(l) && targets.contains(p) ? layer.float32Weight(p).copy()
                    : (beforeQuantization?[l][k] ?? layer.float32Weight(p).copy())
            }
        }
    }

    /// A quantization finished (whole or in part) from `base`.
    mutating func quantized(from base: [[Tensor]]) { beforeQuantization = base }

    /// Pruning sets weights to zero, which is on a grid (q = z): the codes of a quantized
    /// projection follow, and so does W_fp, so a QA-SparsePEFT mask made from it knows.
    func pruned(_ model: LlamaModel, layers: [Int], targets: [Projection]) {
        for l in layers {
            let layer = model.layers[l]
            for p in targets {
                let w = layer.weight(p)
                if var grid = layer.quantized[p] {
                    for r in 0..<grid.rows {
                        for c in 0..<grid.columns where w[r * grid.columns + c] == 0 { grid.setCode(r, c, grid.zero(r, group: c / grid.group)) }
                    }
                    layer.quantized[p] = grid
                }
                if let base = beforeQuantization?[l][Projection.allCases.firstIndex(of: p)!] {
                    for i in 0..<w.count where w[i] == 0 { base[i] = 0 }
                }
            }
        }
    }

    // MARK: Adapters

    /// What a SparsePEFT adapter on (l, p) may update: the base's non-zeros as they are now; with
    /// QA-SparsePEFT, W_fp's non-zeros and the grid it trains through.
    func constraint(layer l: Int, _ p: Projection, model: LlamaModel, quantizationAware: Bool) -> UpdateConstraint {
        let layer = model.layers[l]
        if quantizationAware {
            // (`checkSQFT` makes sure both are there: never fall back to a plain mask silently.)
            guard let base = beforeQuantization?[l][Projection.allCases.firstIndex(of: p)!], let grid = layer.quantized[p] else {
                preconditionFailure("QA-SparsePEFT on \(l).\(p.rawValue) without W_fp and a grid")
            }
            return UpdateConstraint(mask: UpdateConstraint.nonZeros(of: base), quantization: (base, grid))
        }
        return UpdateConstraint(mask: UpdateConstraint.nonZeros(of: layer.float32Weight(p)))
    }

    /// After `set` merged: a dense update moves the weights off their grid, so the grid (and the
    /// packed form made from it) comes off, kept for unmerge. QA-SparsePEFT lands on its grid
    /// and keeps it. Returns how many projections left their grid.
    mutating func merged(_ set: LoRASet, into model: LlamaModel) -> Int {
        var unpacked = 0
        for (l, p, adapter) in set.ordered where adapter.constraint?.isQuantizationAware != true {
            if let grid = model.layers[l].quantized.removeValue(forKey: p) {
                gridsBeforeMerge[l, default: [:]][p] = grid
                unpacked += 1
            }
        }
        model.packQuantizedGrids()
        return unpacked
    }

    /// After an unmerge: the grids a plain merge took off, with the weights put exactly back on
    /// them. Returns whether any came back.
    mutating func unmerged(_ model: LlamaModel) -> Bool {
        guard !gridsBeforeMerge.isEmpty else { return false }
        for (l, grids) in gridsBeforeMerge {
            for (p, grid) in grids {
                grid.dequantize(into: model.layers[l].weight(p).data)
                model.layers[l].quantized[p] = grid
            }
        }
        gridsBeforeMerge = [:]
        model.packQuantizedGrids()
        return true
    }

    /// The merged weights are the base now: nothing from before the merge applies to them (the
    /// grids it left, W_fp, the restore point). The next edit keeps a new restore point.
    mutating func adoptMerge() { self = BaseWeights() }
}
