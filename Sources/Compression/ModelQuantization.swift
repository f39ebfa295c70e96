import Foundation
import Tensors
import Transformer

/// Quantizes a model's projections group-wise (`GroupQuantizer`), by rounding to nearest or by
/// GPTQ, block by block. The layer keeps the packed form and its Float32 weight the dequantized
/// values. GPTQ runs "true sequential" within a block, as AutoGPTQ does: q, k, v first on the
/// block's inputs, then o on the attention output of the quantized q, k, v, then gate and up,
/// then down; each group's Gram matrix comes from a forward of the block as quantized so far.
public enum ModelQuantization {
    public enum Method: String, CaseIterable, Sendable { case rtn, gptq }

    public struct Parameters: Sendable {
        public var grid = GroupQuantizer.Parameters()
        public var method = Method.rtn
        public var targets: [Projection] = Projection.allCases
        /// Layers to quantize (all when nil).
        public var layers: [Int]?

        public init() {}

        public func validate(for c: LlamaConfiguration) throws {
            guard grid.bits == 4 || grid.bits == 8 else { throw LoRAError.mismatch("bits must be 4 or 8, not \(grid.bits)") }
            guard grid.group >= 1 else { throw LoRAError.mismatch("a group holds at least one weight") }
            if let layers, let bad = layers.first(where: { !(0..<c.layers).contains($0) }) {
                throw LoRAError.mismatch("layer \(bad) outside 0…\(c.layers - 1)")
            }
        }
    }

    /// The relative error ‖W − Ŵ‖/‖W‖ of every quantized projection of one layer.
    public typealias LayerErrors = [Projection: Double]

    /// The order GPTQ quantizes a block's projections in: each stage's inputs come from the block
    /// with the earlier stages quantized.
    static let stages: [[Projection]] = [[.q, .k, .v], [.o], [.gate, .up], [.down]]

    /// Quantizes the chosen layers. Cancellation is checked between blocks and between a block's
    /// calibration windows; a block interrupted part-way is put back as it was, so the model is
    /// quantized through the last block reported to `onLayer`.
    @discardableResult
    public static func quantize(model: LlamaModel, parameters p: Parameters, windows: [[Int32]] = [],
                                cancellation: CancellationToken? = nil, onLayer: ((Int, LayerErrors) -> Void)? = nil) throws -> Int {
        try p.validate(for: model.config)
        let c = model.config
        let chosen = (0..<c.layers).filter { p.layers?.contains($0) ?? true }
        guard let last = chosen.last, !p.targets.isEmpty else { return 0 }
        if p.method == .rtn {
            for l in chosen {
                try cancellation?.check()
                let layer = model.layers[l]
                var errors = LayerErrors()
                for projection in p.targets {
                    let w = layer.weight(projection)
                    let (i, o) = projection.shape(c)
                    let m = GroupQuantizer.quantize(w, rows: o, columns: i, parameters: p.grid)
                    errors[projection] = GroupQuantizer.relativeError(w, m)
                    m.dequantize(into: w.data)
                    layer.quantized[projection] = m
                }
                onLayer?(l, errors)
            }
            return chosen.count
        }

        guard let seq = windows.first?.count, windows.allSatisfy({ $0.count == seq }), seq <= c.contextLength else {
            throw LoRAError.mismatch("GPTQ needs calibration windows of one length within the context")
        }
        // Calibration runs on the base model at full width (adapters and subnet come back after).
        return try model.withBaseModelAtFullShape { () throws -> Int in
            let workspace = ForwardWorkspace(config: c, batch: 1, seq: seq)
            let streams = windows.map { model.embedded(tokens: $0) }
            let scratch = Tensor(uninitialized: [seq, c.dim])
            var done = 0
            for l in 0...last {
                let layer = model.layers[l]
                if chosen.contains(l) {
                    let original = Dictionary(uniqueKeysWithValues: p.targets.map { ($0, layer.weight($0).copy()) })
                    let originalPacked = layer.quantized
                    do {
                        var errors = LayerErrors()
                        for stage in stages {
                            let targets = stage.filter(p.targets.contains)
                            guard let first = targets.first else { continue }
                            // Projections of one stage read the same input: one Gram matrix.
                            let gram = GPTQ.InputGram(inFeatures: first.shape(c).inFeatures)
                            layer.adapters = [first: gram]
                            for stream in streams {
                                try cancellation?.check()
                                scratch.data.update(from: stream.data, count: stream.count)
                                model.layerForward(l, stream: scratch, batch: 1, seq: seq, workspace: workspace)
                            }
                            layer.adapters = [:]
                            let (u, dead) = try GPTQ.inverseCholesky(gram.gram, n: first.shape(c).inFeatures, cancellation: cancellation)
                            for projection in targets {
                                let w = layer.weight(projection)
                                let (i, o) = projection.shape(c)
                                let m = try GPTQ.quantize(w, rows: o, columns: i, u: u, dead: dead, parameters: p.grid, cancellation: cancellation)
                                errors[projection] = GroupQuantizer.relativeError(original[projection]!, m)
                                layer.quantized[projection] = m
                            }
                        }
                        done += 1
                        onLayer?(l, errors)
                    } catch {
                        // Never half a block: the block's weights as they were.
                        for (projection, w) in original { layer.weight(projection).data.update(from: w.data, count: w.count) }
                        layer.quantized = originalPacked
                        layer.adapters = [:]
                        throw error
                    }
                }
                if l < last {
                    for stream in streams {
                        try cancellation?.check()
                        model.layerForward(l, stream: stream, batch: 1, seq: seq, workspace: workspace)
                    }
                }
            }
            return done
        }
    }

    /// Bytes of the packed projections, and of the Float32 weights they stand for.
    public static func packedBytes(_ model: LlamaModel) -> (packed: Int, float32: Int, projections: Int) {
        var packed = 0, float32 = 0, count = 0
        for layer in model.layers {
            for (p, m) in layer.quantized {
                packed += m.bytes
                float32 += layer.shape(p).outFeatures * layer.shape(p).inFeatures * 4
                count += 1
            }
        }
        return (packed, float32, count)
    }
}
