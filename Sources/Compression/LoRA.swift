import Foundation
import Tensors
import Transformer

/// Why adapters could not be made, saved, loaded or merged.
public enum LoRAError: Error, CustomStringConvertible, Equatable {
    /// A rank that does not fit a projection.
    case badRank(Int, projection: String, limit: Int)
    /// An adapter file that does not fit the loaded model.
    case mismatch(String)
    /// An adapter file that could not be read.
    case unreadable(path: String, reason: String)
    /// Adapters that could not be written.
    case unwritable(path: String, reason: String)
    /// The operation needs adapters and there are none.
    case noAdapters

    public var description: String {
        switch self {
        case .badRank(let r, let p, let limit): return "rank \(r) does not fit \(p) (at most \(limit))"
        case .mismatch(let reason): return "the adapters do not fit this model: \(reason)"
        case .unreadable(let path, let reason): return "cannot read adapters from \(path): \(reason)"
        case .unwritable(let path, let reason): return "cannot save adapters to \(path): \(reason)"
        case .noAdapters: return "there are no adapters: use `lora rank=8 alpha=16 targets=q,k,v,up,down` first"
        }
    }
}

/// LoRA's settings: rank, alpha, which projections, dropout.
public struct LoRAConfiguration: Equatable, Sendable {
    public var rank: Int
    public var alpha: Float
    public var targets: [Projection]
    public var dropout: Float
    /// SparsePEFT: updates masked by the base's non-zeros, so a merge keeps the sparsity.
    public var sparse = false
    /// QA-SparsePEFT: trained through the base's quantization grid (needs `sparse` and a
    /// quantized base); the merge gives one quantized model.
    public var quantizationAware = false

    public init(rank: Int, alpha: Float, targets: [Projection], dropout: Float = 0, sparse: Bool = false, quantizationAware: Bool = false) {
        self.rank = rank
        self.alpha = alpha
        self.targets = targets.sorted()
        self.dropout = dropout
        self.sparse = sparse || quantizationAware
        self.quantizationAware = quantizationAware
    }

    /// Checks the settings against a model before anything is attached, so that a bad rank or an
    /// empty target list fails with the old adapters still in place.
    public func validate(for config: LlamaConfiguration) throws {
        guard !targets.isEmpty else { throw LoRAError.mismatch("no target projections") }
        guard alpha.isFinite else { throw LoRAError.mismatch("alpha must be a finite number, not \(alpha)") }
        for p in targets {
            let (i, o) = p.shape(config)
            guard rank >= 1, rank <= min(i, o) else { throw LoRAError.badRank(rank, projection: p.rawValue, limit: min(i, o)) }
        }
    }
}

/// The adapters attached to a model, one per (layer, target projection).
public final class LoRASet {
    public let configuration: LoRAConfiguration
    /// adapters[layer][projection]
    public let adapters: [[Projection: LoRAAdapter]]
    public private(set) var isMerged = false

    /// Attaches fresh adapters (A Kaiming-uniform, B zero) to every target projection of `model`.
    /// Throws before attaching anything when the configuration does not fit the model.
    public init(model: LlamaModel, configuration: LoRAConfiguration, seed: UInt64) throws {
        try configuration.validate(for: model.config)
        self.configuration = configuration
        var all = [[Projection: LoRAAdapter]]()
        for (l, layer) in model.layers.enumerated() {
            var perLayer = [Projection: LoRAAdapter]()
            for (j, p) in configuration.targets.enumerated() {
                let (i, o) = p.shape(model.config)
                let adapter = LoRAAdapter(inFeatures: i, outFeatures: o, rank: configuration.rank, alpha: configuration.alpha,
                                          dropout: configuration.dropout, seed: seed &+ UInt64(l * 16 + j) &* 0x9E37_79B9)
                perLayer[p] = adapter
                layer.adapters[p] = adapter
            }
            all.append(perLayer)
        }
        adapters = all
    }

    /// Every adapter in (layer, projection) order.
    public var ordered: [(layer: Int, projection: Projection, adapter: LoRAAdapter)] {
        adapters.enumerated().flatMap { l, perLayer in
            perLayer.keys.sorted().map { (l, $0, perLayer[$0]!) }
        }
    }

    public var parameterCount: Int { ordered.reduce(0) { $0 + $1.adapter.parameterCount } }

    /// (parameter, gradient) pairs for the optimizer.
    public var parameters: [(Tensor, Tensor)] {
        ordered.flatMap { [($0.adapter.a, $0.adapter.gradA), ($0.adapter.b, $0.adapter.gradB)] }
    }

    public func zeroGradients() { ordered.forEach { $0.adapter.zeroGradients() } }

    /// Puts detached adapters back on the model, merged again if they were merged before.
    public func reattach(to model: LlamaModel, merged: Bool) {
        for (l, p, adapter) in ordered { model.layers[l].adapters[p] = adapter }
        if merged { merge(into: model) }
    }

    /// Removes the adapters from the model (unmerging first if merged).
    public func detach(from model: LlamaModel) {
        if isMerged { unmerge(from: model) }
        for (l, perLayer) in adapters.enumerated() {
            for p in perLayer.keys { model.layers[l].adapters[p] = nil }
        }
    }

    /// Takes merged adapters off the model and leaves their update in the weights: the merged
    /// weights are the base from now on. (Put back with `reattach(to:merged: true)`, they add
    /// nothing again, as merged adapters do.)
    public func release(from model: LlamaModel) {
        precondition(isMerged, "only merged adapters leave their update behind")
        for (l, perLayer) in adapters.enumerated() {
            for p in perLayer.keys { model.layers[l].adapters[p] = nil }
        }
    }

    /// Folds s·B·A into the frozen weights; the adapters then add nothing until `unmerge`.
    public func merge(into model: LlamaModel) {
        guard !isMerged else { return }
        for (l, p, adapter) in ordered {
            adapter.fold(into: model.layers[l].weight(p), sign: 1)
            // QA-SparsePEFT lands on the base's grid: the layer keeps the merged codes.
            if let codes = adapter.mergedCodes() { model.layers[l].quantized[p] = codes }
            adapter.markMerged(true)
        }
        isMerged = true
    }

    public func unmerge(from model: LlamaModel) {
        guard isMerged else { return }
        for (l, p, adapter) in ordered {
            adapter.fold(into: model.layers[l].weight(p), sign: -1)
            if let grid = adapter.constraint?.quantization?.grid { model.layers[l].quantized[p] = grid }
            adapter.markMerged(false)
        }
        isMerged = false
    }
}
