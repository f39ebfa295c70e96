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
    /// Quantizes the base weights group-wise. The weights before the first pruning or
    /// quantization are kept for `restoreDense`. An interrupt leaves the model quantized through
    /// a whole block (reported), never half a block.
    public func quantize(_ parameters: ModelQuantization.Parameters, calibrationSplit: String?, windows: Int, length: Int,
                         onLayer: @escaping (Int, ModelQuantization.LayerErrors) -> Void) throws -> QuantizeResult {
        let model = try requireModel()
        try parameters.validate(for: model.config)
        if let lora, lora.isMerged {
            throw WorkbenchError.invalid("the adapters are merged into the weights: `lora unmerge` first, so quantization reaches the base weights only")
        }
        try requireUniformWidths(model, for: "quantization")
        try requireNoConstrainedAdapters(for: "quantizing")
        var calibration = [[Int32]]()
        var splitName = ""
        if parameters.method == .gptq {
            guard length <= model.config.contextLength else {
                throw WorkbenchError.invalid("calibration_len=\(length) exceeds the model's context of \(model.config.contextLength) tokens")
            }
            splitName = try calibrationSplitName(calibrationSplit)
            calibration = try calibrationWindows(split: splitName, windows: windows, length: length)
        }
        try keepDenseWeights(model)
        // W_fp for QA-SparsePEFT: the weights just before this quantization, for what it quantizes.
        let chosen = Set((0..<model.config.layers).filter { parameters.layers?.contains($0) ?? true })
        let before = model.layers.enumerated().map { l, layer in
            Projection.allCases.enumerated().map { k, p in
                chosen.contains(l) && parameters.targets.contains(p) ? layer.float32Weight(p).copy() : (preQuantization?[l][k] ?? layer.float32Weight(p).copy())
            }
        }
        let started = Date()
        var done = [Int]()
        var errors = [Int: ModelQuantization.LayerErrors]()
        var interrupted = false
        do {
            try ModelQuantization.quantize(model: model, parameters: parameters, windows: calibration, cancellation: cancellation) { l, e in
                done.append(l)
                errors[l] = e
                onLayer(l, e)
            }
        } catch is CancellationError {
            interrupted = true
        }
        let packed = ModelQuantization.packedBytes(model)
        model.packQuantizedGrids()
        modelCard?.packed = packed
        if !done.isEmpty { preQuantization = before }
        if !done.isEmpty {
            var arguments = "\(parameters.method.rawValue), \(parameters.grid.description) of " + parameters.targets.map(\.rawValue).joined(separator: ",")
            if parameters.method == .gptq { arguments += ", calibration \(windows) × \(length) tokens of \(splitName)" }
            if interrupted || parameters.layers != nil { arguments += ", layers " + layerList(done) }
            record("quantized", arguments)
        }
        return QuantizeResult(parameters: parameters, layersDone: done, errors: errors, interrupted: interrupted,
                              seconds: Date().timeIntervalSince(started), packedBytes: packed.packed, float32Bytes: packed.float32,
                              calibrationTokens: calibration.count * length)
    }
}
