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
    /// same length, no BOS), in `BlockwiseEdit`'s walk: the model is left pruned through the last
    /// block reported to `onLayer`. Returns the number of blocks pruned.
    @discardableResult
    public static func prune(model: LlamaModel, parameters p: PruningParameters, windows: [[Int32]],
                             cancellation: CancellationToken? = nil, onLayer: ((Int) -> Void)? = nil) throws -> Int {
        try p.validate(for: model.config)
        guard !windows.isEmpty else { throw LoRAError.mismatch("Wanda needs calibration windows") }
        let chosen = (0..<model.config.layers).filter { p.prunes(layer: $0) }
        return try BlockwiseEdit.run(model: model, layers: chosen, targets: p.targets, windows: windows, cancellation: cancellation, body: { block in
            // 1. ‖X_j‖² of every target's inputs, from the dense block.
            let observers = Dictionary(uniqueKeysWithValues: p.targets.map { ($0, InputNorms(inFeatures: $0.shape(block.config).inFeatures)) })
            try block.observe(observers)
            try block.checkCancellation()
            // 2. Prune the whole block.
            for projection in p.targets {
                let w = block.layer.weight(projection)
                let (i, o) = projection.shape(block.config)
                let s = scores(weight: w, rows: o, columns: i, inputSumOfSquares: observers[projection]!.sumOfSquares)
                Sparsity.prune(w, scores: s, rows: o, columns: i, pattern: p.pattern, wholeMatrix: false)
            }
        }, onLayer: { l, _ in onLayer?(l) })
    }
}
