import Foundation
import Tensors
import Transformer

/// Wanda (pruning by Weights and activations), as its code runs (§1.7). Block by block:
///
///   1. run the block, dense, on the current calibration activations, and keep for every
///      linear the squared norm of each input column over all calibration tokens, ‖X_j‖²;
///   2. score S_ij = |W_ij| · ‖X_j‖ and zero the lowest of every output row (or the N lowest of
///      every M consecutive inputs of a row);
///   3. run the block again with its pruned weights: its outputs are the next block's inputs.
///
/// The embedding and the output head are never pruned. Adapters are left out of the
/// calibration forward (Wanda prunes the base by the base's activations) and an elastic MLP
/// runs at its full width; both are restored afterwards.
public enum Wanda {
    /// The squared input-column norms of a projection, summed over every row it sees.
    /// Watches a forward pass and adds nothing to it.
    final class InputNorms: ProjectionAdapter {
        var sumOfSquares: [Double]

        init(inFeatures: Int) { sumOfSquares = [Double](repeating: 0, count: inFeatures) }

        func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, training: Bool) {
            precondition(inFeatures == sumOfSquares.count, "observed \(inFeatures) inputs, expected \(sumOfSquares.count)")
            for r in 0..<rows {
                let x = input + r * inFeatures
                for j in 0..<inFeatures { sumOfSquares[j] += Double(x[j] * x[j]) }
            }
        }

        func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                      inFeatures: Int, outFeatures: Int) {
            preconditionFailure("input norms are gathered in inference only")
        }
    }

    /// S_ij = |W_ij| · ‖X_j‖ for a weight (out, in) and the inputs' squared column norms.
    public static func scores(weight: Tensor, rows: Int, columns: Int, inputSumOfSquares: [Double]) -> [Float] {
        let norms = inputSumOfSquares.map { Float($0.squareRoot()) }
        var out = [Float](repeating: 0, count: rows * columns)
        for r in 0..<rows {
            for j in 0..<columns { out[r * columns + j] = abs(weight[r * columns + j]) * norms[j] }
        }
        return out
    }

    /// Prunes the chosen layers block by block on `windows` (each a calibration sequence of the
    /// same length, no BOS). Cancellation is checked between blocks and between windows, never
    /// inside one block's pruning: the model is left pruned consistently through the last block
    /// reported to `onLayer`. Returns the number of blocks pruned.
    @discardableResult
    public static func prune(model: LlamaModel, parameters p: PruningParameters, windows: [[Int32]],
                             cancellation: CancellationToken? = nil, onLayer: ((Int) -> Void)? = nil) throws -> Int {
        try p.validate(for: model.config)
        guard let seq = windows.first?.count, seq >= 1, windows.allSatisfy({ $0.count == seq }) else {
            throw LoRAError.mismatch("Wanda needs calibration windows of one length")
        }
        guard seq <= model.config.contextLength else {
            throw LoRAError.mismatch("calibration windows of \(seq) tokens exceed the model's context of \(model.config.contextLength)")
        }
        let c = model.config
        let chosen = (0..<c.layers).filter { p.prunes(layer: $0) }
        guard let last = chosen.last else { return 0 }

        // Calibration runs on the base model at full width (adapters and subnet come back after).
        return try model.withBaseModelAtFullShape { () throws -> Int in
            let workspace = ForwardWorkspace(config: c, batch: 1, seq: seq)
            let streams = windows.map { model.embedded(tokens: $0) }
            let scratch = Tensor(uninitialized: [seq, c.dim])
            var pruned = 0
            for l in 0...last {
                let layer = model.layers[l]
                if p.prunes(layer: l) {
                    // 1. ‖X_j‖² of every target's inputs, from the dense block.
                    var observers = [Projection: InputNorms]()
                    for projection in p.targets { observers[projection] = InputNorms(inFeatures: projection.shape(c).inFeatures) }
                    layer.adapters = observers
                    for stream in streams {
                        try cancellation?.check()
                        scratch.data.update(from: stream.data, count: stream.count)
                        model.layerForward(l, stream: scratch, batch: 1, seq: seq, workspace: workspace)
                    }
                    layer.adapters = [:]
                    try cancellation?.check()
                    // 2. Prune the whole block (not interrupted part-way).
                    for projection in p.targets {
                        let w = layer.weight(projection)
                        let (i, o) = projection.shape(c)
                        let s = scores(weight: w, rows: o, columns: i, inputSumOfSquares: observers[projection]!.sumOfSquares)
                        Sparsity.prune(w, scores: s, rows: o, columns: i, pattern: p.pattern, wholeMatrix: false)
                    }
                    pruned += 1
                    onLayer?(l)
                }
                // 3. The pruned block's outputs feed the next block.
                if l < last {
                    for stream in streams {
                        try cancellation?.check()
                        model.layerForward(l, stream: stream, batch: 1, seq: seq, workspace: workspace)
                    }
                }
            }
            return pruned
        }
    }
}
