import Compression
import Foundation
import Tensors
import Transformer

extension Session {
    /// The loss change of compressing one module of one layer alone, for every layer × module, on
    /// `tokens` tokens of the evaluation text in windows of `window`. The model is unchanged
    /// afterwards (with merged adapters, the merged weights are what is compressed); an interrupt throws `SensitivityInterrupted` with the cells measured.
    public func sensitivity(_ treatment: Sensitivity.Treatment, targets: [Projection], tokens: Int, window: Int, split: String?,
                            calibrationSplit: String?, calibrationWindows: Int, calibrationLength: Int,
                            onCell: @escaping (Int, Int, Double) -> Void) throws -> Sensitivity.Result {
        let model = try requireModel()
        // Merged adapters add nothing of their own: the cells measure the merged weights, as the model computes.
        try requireUniformWidths(model, for: "sensitivity")
        guard let split = split ?? evaluationSplit else { throw WorkbenchError.noData }
        let seq = min(window, model.config.contextLength - 1)
        let count = max(1, tokens / seq)
        let all = try self.tokens(split: split)
        guard all.count >= count * seq + 1 else { throw WorkbenchError.notEnoughTokens(have: all.count, need: count * seq + 1) }
        let windows = (0..<count).map { Array(all[($0 * seq)...($0 * seq + seq)]) }
        // The residual stream entering every layer is kept for the whole batch, with one batched
        // forward's activations: say so before allocating them.
        let c = model.config
        let rows = Double(count * seq)
        let bytes = 4 * (rows * Double(c.dim) * Double(c.layers + 1) + rows * Double(5 * c.dim + 3 * c.ffnDim)
                         + Double(count * c.heads) * Double(seq) * Double(seq))
        do {
            try MachineMemory.check(bytes, for: "sensitivity on \(count * seq) tokens")
        } catch let error as MemoryError {
            throw WorkbenchError.invalid("\(error): use fewer tokens")
        }
        var calibration = [[Int32]]()
        if case .prune(_, wanda: true) = treatment {
            calibration = try self.calibrationWindows(split: calibrationSplitName(calibrationSplit),
                                                 windows: calibrationWindows, length: min(calibrationLength, model.config.contextLength))
        }
        return try Sensitivity.measure(model: model, treatment: treatment, targets: targets, windows: windows, calibration: calibration,
                                       cancellation: cancellation, onCell: onCell)
    }
}
