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
    /// Prunes the base weights (`editBaseWeights`: before the first edit the dense weights are
    /// kept for `restoreDense`; merged adapters become the base). An interrupt leaves the model
    /// pruned through a whole block (reported), never half a block.
    public func sparsify(_ method: PruningMethod, parameters: PruningParameters, calibrationSplit: String?, windows: Int, length: Int,
                         onLayer: @escaping (Int) -> Void) throws -> SparsifyResult {
        try parameters.validate(for: try requireModel().config)
        var pruned = [Int]()
        let report: (Int) -> Void = {
            pruned.append($0)
            onLayer($0)
        }
        let calibration = method == .wanda ? CalibrationRequest(split: calibrationSplit, windows: windows, length: length) : nil
        let run = try editBaseWeights("pruning", calibration: calibration, edited: { !pruned.isEmpty }) { model, windows in
            // Also after an interrupt: the codes and W_fp of the blocks pruned follow their zeros.
            defer { base.pruned(model, layers: pruned, targets: parameters.targets) }
            switch method {
            case .wanda: try Wanda.prune(model: model, parameters: parameters, windows: windows, cancellation: cancellation, onLayer: report)
            case .magnitude: try MagnitudePruning.prune(model: model, parameters: parameters, cancellation: cancellation, onLayer: report)
            }
        }
        let model = try requireModel()
        let totals = Sparsity.totals(model)
        if !pruned.isEmpty {
            var arguments = "\(parameters.pattern) of " + parameters.targets.map(\.rawValue).joined(separator: ",")
            if method == .wanda { arguments += ", calibration \(windows) × \(length) tokens of \(run.split)" }
            if run.interrupted || parameters.layers != nil { arguments += ", layers " + layerList(pruned) }
            record("sparsified (\(method.rawValue))", arguments + String(format: ": %.2f %% zeros", 100 * Double(totals.zeros) / Double(totals.entries)))
        }
        return SparsifyResult(method: method, pattern: parameters.pattern, layersPruned: pruned, interrupted: run.interrupted,
                              seconds: run.seconds, zeros: totals.zeros, entries: totals.entries, calibrationTokens: run.calibrationTokens)
    }
}
