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

    /// Quantizes the chosen layers in `BlockwiseEdit`'s walk: a block interrupted part-way is put
    /// back as it was, so the model is quantized through the last block reported to `onLayer`.
    @discardableResult
    public static func quantize(model: LlamaModel, parameters p: Parameters, windows: [[Int32]] = [],
                                cancellation: CancellationToken? = nil, onLayer: ((Int, LayerErrors) -> Void)? = nil) throws -> Int {
        try p.validate(for: model.config)
        let chosen = (0..<model.config.layers).filter { p.layers?.contains($0) ?? true }
        switch p.method {
        case .rtn:
            return try BlockwiseEdit.run(model: model, layers: chosen, targets: p.targets, cancellation: cancellation,
                                         body: { try roundToNearest($0, p) }, onLayer: onLayer)
        case .gptq:
            guard !windows.isEmpty else { throw LoRAError.mismatch("GPTQ needs calibration windows") }
            return try BlockwiseEdit.run(model: model, layers: chosen, targets: p.targets, windows: windows, cancellation: cancellation,
                                         body: { try gptq($0, p) }, onLayer: onLayer)
        }
    }

    /// RTN's block body: each target rounded to its nearest grid point, group by group.
    static func roundToNearest(_ block: BlockwiseEdit.Block, _ p: Parameters) throws -> LayerErrors {
        var errors = LayerErrors()
        for projection in p.targets {
            let w = block.layer.weight(projection)
            let (i, o) = projection.shape(block.config)
            let m = GroupQuantizer.quantize(w, rows: o, columns: i, parameters: p.grid)
            errors[projection] = GroupQuantizer.relativeError(w, m)
            m.dequantize(into: w.data)
            block.layer.quantized[projection] = m
        }
        return errors
    }

    /// GPTQ's block body, stage by stage: one Gram matrix of the stage's inputs from the block as
    /// quantized so far, then each of its projections.
    static func gptq(_ block: BlockwiseEdit.Block, _ p: Parameters) throws -> LayerErrors {
        let c = block.config
        var errors = LayerErrors()
        for stage in stages {
            let targets = stage.filter(p.targets.contains)
            guard let first = targets.first else { continue }
            // Projections of one stage read the same input: one Gram matrix.
            let gram = GPTQ.InputGram(inFeatures: first.shape(c).inFeatures)
            try block.observe([first: gram])
            let (u, dead) = try GPTQ.inverseCholesky(gram.gram, n: first.shape(c).inFeatures, cancellation: block.cancellation)
            for projection in targets {
                let w = block.layer.weight(projection)
                let original = w.copy()
                let (i, o) = projection.shape(c)
                let m = try GPTQ.quantize(w, rows: o, columns: i, u: u, dead: dead, parameters: p.grid, cancellation: block.cancellation)
                errors[projection] = GroupQuantizer.relativeError(original, m)
                block.layer.quantized[projection] = m
            }
        }
        return errors
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
