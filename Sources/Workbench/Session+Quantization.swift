import Compression
import Foundation
import Tensors
import Transformer

/// What a `quantize` did: the blocks done, each one's relative errors, and the memory after.
public struct QuantizeResult: Sendable {
    public var parameters: ModelQuantization.Parameters
    public var layersDone: [Int]
    public var errors: [Int: ModelQuantization.LayerErrors]
    public var interrupted: Bool
    public var seconds: Double
    public var packedBytes: Int
    public var float32Bytes: Int
    public var calibrationTokens: Int
}

extension Session {
    /// Quantizes the base weights group-wise (`editBaseWeights`: the weights before the first
    /// edit are kept for `restoreDense`; merged adapters become the base). An interrupt leaves
    /// the model quantized through a whole block (reported), never half a block.
    public func quantize(_ parameters: ModelQuantization.Parameters, calibrationSplit: String?, windows: Int, length: Int,
                         onLayer: @escaping (Int, ModelQuantization.LayerErrors) -> Void) throws -> QuantizeResult {
        try parameters.validate(for: try requireModel().config)
        var done = [Int]()
        var errors = [Int: ModelQuantization.LayerErrors]()
        let calibration = parameters.method == .gptq ? CalibrationRequest(split: calibrationSplit, windows: windows, length: length) : nil
        let run = try editBaseWeights("quantization", calibration: calibration, edited: { !done.isEmpty }) { model, windows in
            // W_fp for QA-SparsePEFT: the weights just before this quantization, for what it quantizes.
            let before = base.quantizationBase(model, layers: parameters.layers, targets: parameters.targets)
            defer { if !done.isEmpty { base.quantized(from: before) } }
            try ModelQuantization.quantize(model: model, parameters: parameters, windows: windows, cancellation: cancellation) { l, e in
                done.append(l)
                errors[l] = e
                onLayer(l, e)
            }
        }
        let packed = ModelQuantization.packedBytes(try requireModel())
        if !done.isEmpty {
            var arguments = "\(parameters.method.rawValue), \(parameters.grid.description) of " + parameters.targets.map(\.rawValue).joined(separator: ",")
            if parameters.method == .gptq { arguments += ", calibration \(windows) × \(length) tokens of \(run.split)" }
            if run.interrupted || parameters.layers != nil { arguments += ", layers " + layerList(done) }
            record("quantized", arguments)
        }
        return QuantizeResult(parameters: parameters, layersDone: done, errors: errors, interrupted: run.interrupted,
                              seconds: run.seconds, packedBytes: packed.packed, float32Bytes: packed.float32,
                              calibrationTokens: run.calibrationTokens)
    }
}
