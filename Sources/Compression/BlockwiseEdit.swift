import Foundation
import Tensors
import Transformer

/// The one walk that every block-by-block edit of the base weights takes (Wanda, magnitude
/// pruning, RTN, GPTQ; SparseGPT or AWQ would too). A method supplies only its block body;
/// the walk does the rest:
///
///   1. calibration (when the method has windows): the base model at its full shape, adapters
///      off, each window's residual stream entering the block in hand;
///   2. for each chosen block, a snapshot of its target weights and grids, then the body;
///      should the body throw (an interrupt), the block goes back to its snapshot, so the model
///      is edited through the last block reported and never half a block;
///   3. the edited block's outputs become the next block's inputs (as Wanda and GPTQ do).
///
/// Cancellation is checked between blocks and between windows.
public enum BlockwiseEdit {
    /// What a body sees of the block it edits.
    public final class Block {
        public let index: Int
        public let layer: LlamaLayer
        public let config: LlamaConfiguration
        let model: LlamaModel
        let streams: [Tensor]
        let scratch: Tensor?
        let workspace: ForwardWorkspace?
        let cancellation: CancellationToken?

        init(index: Int, model: LlamaModel, streams: [Tensor], scratch: Tensor?, workspace: ForwardWorkspace?, cancellation: CancellationToken?) {
            self.index = index
            self.layer = model.layers[index]
            self.config = model.config
            self.model = model
            self.streams = streams
            self.scratch = scratch
            self.workspace = workspace
            self.cancellation = cancellation
        }

        /// Runs the block as it is now on every calibration window, with `observers` watching the
        /// inputs of their projections (they add nothing to the outputs). The windows' streams
        /// are left as they were.
        public func observe(_ observers: [Projection: ProjectionAdapter]) throws {
            guard let scratch, let workspace else { preconditionFailure("observing needs calibration windows") }
            layer.adapters = observers
            defer { layer.adapters = [:] }
            for stream in streams {
                try cancellation?.check()
                scratch.data.update(from: stream.data, count: stream.count)
                model.layerForward(index, stream: scratch, batch: 1, seq: workspace.seq, workspace: workspace)
            }
        }

        /// Lets the body check for an interrupt inside its own long steps.
        public func checkCancellation() throws { try cancellation?.check() }
    }

    /// Edits `layers` (ascending) of `model`: `body` on each, then `onLayer` with what it returned.
    /// `windows`, each a calibration sequence of one length, may be empty for methods that read
    /// the weights alone. Returns the number of blocks edited.
    @discardableResult
    public static func run<R>(model: LlamaModel, layers chosen: [Int], targets: [Projection], windows: [[Int32]] = [],
                              cancellation: CancellationToken? = nil, body: (Block) throws -> R,
                              onLayer: ((Int, R) -> Void)? = nil) throws -> Int {
        let c = model.config
        guard let last = chosen.last, !targets.isEmpty else { return 0 }
        precondition(chosen == chosen.sorted() && chosen.allSatisfy { (0..<c.layers).contains($0) }, "layers \(chosen)")
        guard !windows.isEmpty else {
            for l in chosen {
                try cancellation?.check()
                let block = Block(index: l, model: model, streams: [], scratch: nil, workspace: nil, cancellation: cancellation)
                let result = try editRestoringOnError(model.layers[l], targets: targets) { try body(block) }
                onLayer?(l, result)
            }
            return chosen.count
        }
        guard let seq = windows.first?.count, seq >= 1, windows.allSatisfy({ $0.count == seq }) else {
            throw LoRAError.mismatch("calibration needs windows of one length")
        }
        guard seq <= c.contextLength else {
            throw LoRAError.mismatch("calibration windows of \(seq) tokens exceed the model's context of \(c.contextLength)")
        }
        let wanted = Set(chosen)
        return try model.withBaseModelAtFullShape { () throws -> Int in
            let workspace = ForwardWorkspace(config: c, batch: 1, seq: seq)
            let streams = windows.map { model.embedded(tokens: $0) }
            let scratch = Tensor(uninitialized: [seq, c.dim])
            for l in 0...last {
                if wanted.contains(l) {
                    let block = Block(index: l, model: model, streams: streams, scratch: scratch, workspace: workspace, cancellation: cancellation)
                    let result = try editRestoringOnError(model.layers[l], targets: targets) { try body(block) }
                    onLayer?(l, result)
                }
                if l < last {
                    for stream in streams {
                        try cancellation?.check()
                        model.layerForward(l, stream: stream, batch: 1, seq: seq, workspace: workspace)
                    }
                }
            }
            return chosen.count
        }
    }

    /// Runs `edit` on a block; should it throw, the targets' weights and the layer's grids go
    /// back to what they were.
    static func editRestoringOnError<R>(_ layer: LlamaLayer, targets: [Projection], _ edit: () throws -> R) throws -> R {
        let weights = Dictionary(uniqueKeysWithValues: targets.map { ($0, layer.float32Weight($0).copy()) })
        let grids = layer.quantized
        do {
            return try edit()
        } catch {
            // A projection still packed only was never opened for writing: it is as it was.
            for (p, w) in weights where layer.hasFloat32(p) { layer.weight(p).data.update(from: w.data, count: w.count) }
            layer.quantized = grids
            throw error
        }
    }
}
