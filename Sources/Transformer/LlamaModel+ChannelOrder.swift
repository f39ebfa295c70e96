import Foundation
import Tensors

// MLP channel order. An elastic MLP width keeps a prefix of the channels (LoNAS mode B). LoNAS
// keeps them in the order training left them; EFTNAS first sorts them by importance, so that a
// narrower MLP drops the channels that matter least. Permuting the channels of one MLP — rows
// of gate and up, columns of down, all by the same permutation — leaves the model's function
// unchanged: down · (silu(gate x) ⊙ up x) is a sum over channels, and a sum does not care about
// order.

/// Sums the square of every input channel a projection sees; adds nothing to its output.
/// Attached as an adapter to `down`, it observes the MLP's hidden activations h = silu(g) ⊙ u.
final class InputChannelSquares: ProjectionAdapter {
    var sums: [Double]
    var rows = 0

    init(channels: Int) { sums = [Double](repeating: 0, count: channels) }

    func forward(input: UnsafePointer<Float>, out: UnsafeMutablePointer<Float>, rows: Int, inFeatures: Int, outFeatures: Int, training: Bool) {
        for r in 0..<rows {
            let row = input + r * inFeatures
            for j in 0..<inFeatures { sums[j] += Double(row[j] * row[j]) }
        }
        self.rows += rows
    }

    func backward(dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, dInput: UnsafeMutablePointer<Float>, rows: Int,
                  inFeatures: Int, outFeatures: Int) {}
}

extension LlamaModel {
    /// Per layer, the importance of each MLP channel (in the stored order) on calibration text:
    ///   I_j = ‖W_down[:, j]‖₂ · √(mean_t h_tj²)
    /// the root-mean-square size of what channel j adds to the residual stream (Wanda's |W|·‖X‖,
    /// taken over a whole column of down). The frozen model at full width is measured: adapters
    /// are set aside while it runs and put back after. One forward pass per sequence; nil when
    /// `isCancelled` says so between them.
    public func mlpChannelImportance(sequences: [[Int32]], isCancelled: () -> Bool = { false }) -> [[Double]]? {
        let c = config
        let observers = layers.map { _ in InputChannelSquares(channels: c.ffnDim) }
        let finished = withBaseModelAtFullShape { () -> Bool in
            for (layer, observer) in zip(layers, observers) { layer.adapters = [.down: observer] }
            for tokens in sequences where !tokens.isEmpty {
                if isCancelled() { return false }
                _ = forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .last)
            }
            return true
        }
        guard finished else { return nil }
        return zip(layers, observers).map { layer, observer in
            let rows = Double(max(1, observer.rows))
            var norms = [Double](repeating: 0, count: c.ffnDim)
            for o in 0..<c.dim {
                let row = layer.wDown.data + o * c.ffnDim
                for j in 0..<c.ffnDim { norms[j] += Double(row[j] * row[j]) }
            }
            return (0..<c.ffnDim).map { j in norms[j].squareRoot() * (observer.sums[j] / rows).squareRoot() }
        }
    }

    /// Puts every layer's MLP channels back in the order they were loaded in.
    public func restoreLoadedMLPOrder() {
        for (l, layer) in layers.enumerated() {
            var inverse = [Int](repeating: 0, count: config.ffnDim)
            for (i, original) in layer.mlpChannelOrder.enumerated() { inverse[original] = i }
            if inverse != Array(0..<config.ffnDim) { permuteMLPChannels(layer: l, order: inverse) }
        }
    }

    /// Moves layer `index`'s MLP channels so that new channel i is old channel `order[i]`: rows of
    /// gate and up, columns of down. The model computes the same function. Adapters on gate, up or
    /// down would no longer line up, so there must be none.
    public func permuteMLPChannels(layer index: Int, order: [Int]) {
        let c = config, layer = layers[index]
        precondition(order.count == c.ffnDim && Set(order).count == c.ffnDim && order.allSatisfy { (0..<c.ffnDim).contains($0) },
                     "a permutation of the \(c.ffnDim) MLP channels")
        precondition([Projection.gate, .up, .down].allSatisfy { layer.adapters[$0] == nil }, "detach MLP adapters before reordering")
        for weight in [layer.wGate, layer.wUp] {   // (ffnDim, dim): move rows
            let copy = Tensor(uninitialized: weight.shape)
            copy.data.update(from: weight.data, count: weight.count)
            for (i, from) in order.enumerated() {
                (weight.data + i * c.dim).update(from: copy.data + from * c.dim, count: c.dim)
            }
        }
        let down = layer.wDown                      // (dim, ffnDim): move columns within each row
        var row = [Float](repeating: 0, count: c.ffnDim)
        for o in 0..<c.dim {
            let base = down.data + o * c.ffnDim
            for j in 0..<c.ffnDim { row[j] = base[j] }
            for (i, from) in order.enumerated() { base[i] = row[from] }
        }
        layer.mlpChannelOrder = order.map { layer.mlpChannelOrder[$0] }
    }

    /// Sorts every layer's MLP channels by descending importance (ties keep their order), so that
    /// an elastic width's prefix keeps the channels that matter most.
    public func orderMLPChannels(byImportance importance: [[Double]]) {
        precondition(importance.count == layers.count, "one importance list per layer")
        for (l, scores) in importance.enumerated() {
            permuteMLPChannels(layer: l, order: scores.indices.sorted { scores[$0] != scores[$1] ? scores[$0] > scores[$1] : $0 < $1 })
        }
    }
}
