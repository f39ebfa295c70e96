import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

/// A pruning method `sparsify` runs.
public enum PruningMethod: String, CaseIterable, Sendable {
    case wanda, magnitude
}

/// What a `sparsify` did: the blocks pruned, whether it was interrupted, and the zeros it left.
public struct SparsifyResult: Sendable {
    public var method: PruningMethod
    public var pattern: Sparsity.Pattern
    /// Layers pruned, in order; when interrupted, the model is pruned through the last of them.
    public var layersPruned: [Int]
    public var interrupted: Bool
    public var seconds: Double
    /// Zeros and entries of the seven projections of every layer, after.
    public var zeros: Int
    public var entries: Int
    public var calibrationTokens: Int
}

extension Session {
    /// The calibration text: the one named, else Emma for Austen, else the corpus's first split.
    func calibrationSplitName(_ given: String?) throws -> String {
        guard let corpus else { throw WorkbenchError.noData }
        return given ?? (corpus.isAusten ? "emma" : corpus.splits[0].name)
    }

    /// The first `windows × length` tokens of `split`, tokenized as a whole without BOS, as
    /// consecutive windows: Wanda's calibration sequences.
    public func calibrationWindows(split: String, windows: Int, length: Int) throws -> [[Int32]] {
        let model = try requireModel()
        var all = try tokens(split: split)
        if model.tokenizer.addBOS, let bos = model.tokenizer.bosID, all.first == bos { all.removeFirst() }
        guard all.count >= windows * length else { throw WorkbenchError.notEnoughTokens(have: all.count, need: windows * length) }
        return (0..<windows).map { Array(all[($0 * length)..<(($0 + 1) * length)]) }
    }

    /// Prunes the base weights. Before the first pruning the dense weights are kept, so
    /// `restoreDense` brings them back without reloading. An interrupt leaves the model pruned
    /// through a whole block (reported), never half a block.
    public func sparsify(_ method: PruningMethod, parameters: PruningParameters, calibrationSplit: String?, windows: Int, length: Int,
                         onLayer: @escaping (Int) -> Void) throws -> SparsifyResult {
        let model = try requireModel()
        try parameters.validate(for: model.config)
        if let lora, lora.isMerged {
            throw WorkbenchError.invalid("the adapters are merged into the weights: `lora unmerge` first, so pruning reaches the base weights only")
        }
        try requireUniformWidths(model, for: "pruning")
        try requireNoConstrainedAdapters(for: "pruning")
        var calibration = [[Int32]]()
        var splitName = ""
        if method == .wanda {
            let split = try calibrationSplitName(calibrationSplit)
            splitName = split
            guard length <= model.config.contextLength else {
                throw WorkbenchError.invalid("calibration_len=\(length) exceeds the model's context of \(model.config.contextLength) tokens")
            }
            calibration = try calibrationWindows(split: split, windows: windows, length: length)
        }
        try keepDenseWeights(model)
        let started = Date()
        var pruned = [Int]()
        var interrupted = false
        do {
            switch method {
            case .wanda:
                try Wanda.prune(model: model, parameters: parameters, windows: calibration, cancellation: cancellation) {
                    pruned.append($0)
                    onLayer($0)
                }
            case .magnitude:
                try MagnitudePruning.prune(model: model, parameters: parameters, cancellation: cancellation) {
                    pruned.append($0)
                    onLayer($0)
                }
            }
        } catch is CancellationError {
            interrupted = true
        }
        if !pruned.isEmpty { keepQuantizedFormsInStep(model, layers: pruned, targets: parameters.targets) }
        model.packQuantizedGrids()
        let totals = Sparsity.totals(model)
        if !pruned.isEmpty {
            var arguments = "\(parameters.pattern) of " + parameters.targets.map(\.rawValue).joined(separator: ",")
            if method == .wanda { arguments += ", calibration \(windows) × \(length) tokens of \(splitName)" }
            if interrupted || parameters.layers != nil { arguments += ", layers " + layerList(pruned) }
            record("sparsified (\(method.rawValue))", arguments + String(format: ": %.2f %% zeros", 100 * Double(totals.zeros) / Double(totals.entries)))
        }
        return SparsifyResult(method: method, pattern: parameters.pattern, layersPruned: pruned, interrupted: interrupted,
                              seconds: Date().timeIntervalSince(started), zeros: totals.zeros, entries: totals.entries,
                              calibrationTokens: calibration.count * length)
    }

    /// Pruning a quantized projection sets weights to zero, which is on its grid (q = z): the
    /// codes follow, and so does W_fp (QA-SparsePEFT's base), so the mask made from it knows.
    func keepQuantizedFormsInStep(_ model: LlamaModel, layers: [Int], targets: [Projection]) {
        for l in layers {
            let layer = model.layers[l]
            for p in targets {
                let w = layer.weight(p)
                let k = Projection.allCases.firstIndex(of: p)!
                if var grid = layer.quantized[p] {
                    for r in 0..<grid.rows {
                        for c in 0..<grid.columns where w[r * grid.columns + c] == 0 { grid.setCode(r, c, grid.zero(r, group: c / grid.group)) }
                    }
                    layer.quantized[p] = grid
                }
                if let base = preQuantization?[l][k] { for i in 0..<w.count where w[i] == 0 { base[i] = 0 } }
            }
        }
    }

    /// Keeps a copy of every projection's weights before the first pruning or quantization.
    func keepDenseWeights(_ model: LlamaModel) throws {
        guard denseWeights == nil else { return }
        let bytes = model.layers.reduce(0) { sum, layer in sum + Projection.allCases.reduce(0) { $0 + layer.shape($1).outFeatures * layer.shape($1).inFeatures * 4 } }
        do {
            try MachineMemory.check(Double(bytes), for: "a copy of the dense weights (to restore them later)")
        } catch let error as MemoryError {
            throw WorkbenchError.invalid("\(error)")
        }
        denseWeights = DenseWeights(weights: model.layers.map { layer in Projection.allCases.map { layer.float32Weight($0).copy() } },
                                    channelOrder: model.layers.map(\.mlpChannelOrder))
    }

    /// Puts back the weights as they were before the first `sparsify`. Refused when the MLP
    /// channels were reordered since (the copy is in the old order) or adapters are merged.
    public func restoreDense() throws {
        let model = try requireModel()
        guard let denseWeights else { throw WorkbenchError.invalid("the weights were never pruned or quantized: nothing to restore") }
        if let lora, lora.isMerged { throw WorkbenchError.invalid("the adapters are merged into the weights: `lora unmerge` first") }
        try requireNoConstrainedAdapters(for: "restoring the dense weights")
        guard denseWeights.channelOrder == model.layers.map(\.mlpChannelOrder) else {
            throw WorkbenchError.invalid("the MLP channels were reordered after pruning: reload the model to get the dense weights")
        }
        for (layer, weights) in zip(model.layers, denseWeights.weights) {
            for (p, w) in zip(Projection.allCases, weights) { layer.weight(p).data.update(from: w.data, count: w.count) }
            layer.quantized = [:]
        }
        self.denseWeights = nil
        preQuantization = nil
        packedBeforeMerge = [:]
        modelCard?.packed = nil
        record("restored dense weights", "")
    }

    func layerList(_ layers: [Int]) -> String {
        guard let first = layers.first, let last = layers.last else { return "none" }
        return layers == Array(first...last) ? (first == last ? "\(first)" : "\(first)–\(last)") : layers.map(String.init).joined(separator: ",")
    }
}

/// The projections' weights as they were before the first pruning, by layer and projection.
struct DenseWeights {
    var weights: [[Tensor]]
    var channelOrder: [[Int]]
}
