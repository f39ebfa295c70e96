import Foundation
import Tensors
import Transformer

/// Per-module sensitivity: the loss change when only one module of one layer is compressed,
/// for every layer × module. The residual stream entering each layer is computed once, so a
/// cell runs only the layers from its own on; the module is put back after each cell, so the
/// model is unchanged afterwards, also when interrupted.
public enum Sensitivity {
    /// What is done to one module.
    public enum Treatment: Sendable, CustomStringConvertible {
        /// Prune with a pattern; Wanda scores by the dense model's activations, else magnitude.
        case prune(Sparsity.Pattern, wanda: Bool)
        /// Quantize by rounding to nearest on a grid.
        case quantize(GroupQuantizer.Parameters)
        /// Keep the first fraction of one layer's MLP channels (one column: the MLP).
        case width(Double)

        public var description: String {
            switch self {
            case .prune(let pattern, let wanda): return "\(wanda ? "Wanda" : "magnitude") \(pattern)"
            case .quantize(let grid): return "RTN " + grid.description
            case .width(let fraction): return String(format: "MLP width %g %%", fraction * 100)
            }
        }
    }

    public struct Result: Sendable {
        /// Mean next-token loss of the model as it is.
        public var baseLoss: Double
        public var columns: [String]
        /// Loss change per (layer, column); nil where not measured (interrupted).
        public var deltas: [[Double?]]
        public var tokens: Int
        public var seconds: Double
    }

    /// Measures every cell on `windows` (each of seq + 1 tokens: inputs, then next-token targets).
    /// `calibration` windows give Wanda its input norms (from the unchanged model).
    public static func measure(model: LlamaModel, treatment: Treatment, targets: [Projection], windows: [[Int32]], calibration: [[Int32]],
                               cancellation: CancellationToken? = nil,
                               onCell: ((Int, Int, Double) -> Void)? = nil) throws -> Result {
        let started = Date()
        let c = model.config
        guard let length = windows.first?.count, length >= 2, windows.allSatisfy({ $0.count == length }) else {
            throw LoRAError.mismatch("sensitivity needs evaluation windows of one length")
        }
        let seq = length - 1, batch = windows.count
        let tokens = windows.flatMap { $0.prefix(seq) }
        let labels = windows.flatMap { $0.dropFirst() }
        let columns: [Projection?]
        if case .width = treatment { columns = [nil] } else { columns = targets }
        if case .prune(.nOfM(_, let m), _) = treatment, let bad = targets.first(where: { $0.shape(c).inFeatures % m != 0 }) {
            throw LoRAError.mismatch("\(bad.rawValue)'s \(bad.shape(c).inFeatures) inputs do not split into groups of \(m)")
        }

        // Wanda's norms of every projection, from the model as it is.
        var norms = [[Projection: [Double]]](repeating: [:], count: c.layers)
        if case .prune(_, wanda: true) = treatment {
            let saved = model.layers.map(\.adapters)
            defer { for (layer, adapters) in zip(model.layers, saved) { layer.adapters = adapters } }
            var observers = [[Projection: Wanda.InputNorms]]()
            for (layer, shape) in zip(model.layers, model.activeShape.layers) {
                var perLayer = [Projection: Wanda.InputNorms]()
                for p in targets { perLayer[p] = Wanda.InputNorms(inFeatures: p.shape(c, ffn: shape.mlpWidth).inFeatures) }
                layer.adapters = perLayer
                observers.append(perLayer)
            }
            for window in calibration {
                try cancellation?.check()
                _ = model.forward(tokens: window, batch: 1, seq: window.count, logits: .last)
            }
            norms = observers.map { $0.mapValues(\.sumOfSquares) }
        }

        let workspace = ForwardWorkspace(config: c, batch: batch, seq: seq)
        let streams = model.residualStreams(tokens: tokens, batch: batch, seq: seq, workspace: workspace)
        func loss(from l: Int) throws -> Double {
            let x = try model.finalStream(fromLayer: l, residual: streams[l], batch: batch, seq: seq, workspace: workspace, cancellation: cancellation)
            let losses = model.nextTokenLosses(finalStream: x, rows: batch * seq, targets: Array(labels))
            return losses.reduce(0.0) { $0 + Double($1) } / Double(losses.count)
        }
        let base = try loss(from: c.layers)
        var deltas = [[Double?]](repeating: [Double?](repeating: nil, count: columns.count), count: c.layers)
        var interrupted: Error?
        outer: for l in 0..<c.layers {
            let layer = model.layers[l]
            for (k, column) in columns.enumerated() {
                do {
                    try cancellation?.check()
                    let measured: Double
                    if let p = column {
                        // A packed projection is measured in Float32 and packed again after.
                        let packed = layer.packed[p], hadFloat32 = packed == nil || layer.hasFloat32(p)
                        let w = layer.weight(p)
                        let original = w.copy()
                        defer {
                            w.data.update(from: original.data, count: w.count)
                            if let packed { layer.setPacked(packed, for: p, keepFloat32: hadFloat32) }
                        }
                        let (i, o) = p.shape(c)
                        switch treatment {
                        case .prune(let pattern, let wanda):
                            let scores: [Float]
                            if wanda, let n = norms[l][p], n.count == i {
                                scores = Wanda.scores(weight: w, rows: o, columns: i, inputSumOfSquares: n)
                            } else {
                                scores = (0..<w.count).map { abs(w[$0]) }
                            }
                            Sparsity.prune(w, scores: scores, rows: o, columns: i, pattern: pattern, wholeMatrix: !wanda)
                        case .quantize(let grid):
                            GroupQuantizer.quantize(w, rows: o, columns: i, parameters: grid).dequantize(into: w.data)
                        case .width:
                            break
                        }
                        measured = try loss(from: l)
                    } else {
                        guard case .width(let fraction) = treatment else { continue }
                        var narrower = model.activeShape
                        narrower.layers[l].mlpWidth = max(1, Int((Double(c.ffnDim) * fraction).rounded()))
                        measured = try model.withShape(narrower) { try loss(from: l) }
                    }
                    deltas[l][k] = measured - base
                    onCell?(l, k, measured - base)
                } catch let error as CancellationError {
                    interrupted = error
                    break outer
                }
            }
        }
        if let interrupted { throw SensitivityInterrupted(partial: Result(baseLoss: base, columns: columns.map { $0?.rawValue ?? "mlp" },
                                                                            deltas: deltas, tokens: batch * seq,
                                                                            seconds: Date().timeIntervalSince(started)), cause: interrupted) }
        return Result(baseLoss: base, columns: columns.map { $0?.rawValue ?? "mlp" }, deltas: deltas, tokens: batch * seq,
                      seconds: Date().timeIntervalSince(started))
    }
}

/// An interrupted sensitivity run, with the cells measured before the interrupt.
public struct SensitivityInterrupted: Error {
    public var partial: Sensitivity.Result
    public var cause: Error
}
