import Compression
import Foundation
import Tensors
import Transformer

extension Session {
    /// The loss change of compressing one module of one layer alone, for every layer × module, on
    /// `tokens` tokens of the evaluation text in windows of `window`. The model is unchanged
    /// afterwards; an interrupt throws `SensitivityInterrupted` with the cells measured.
    public func sensitivity(_ treatment: Sensitivity.Treatment, targets: [Projection], tokens: Int, window: Int, split: String?,
                            calibrationSplit: String?, calibrationWindows: Int, calibrationLength: Int,
                            onCell: @escaping (Int, Int, Double) -> Void) throws -> Sensitivity.Result {
        let model = try requireModel()
        if let lora, lora.isMerged { throw WorkbenchError.invalid("the adapters are merged: `lora unmerge` first, so each module is compressed alone") }
        guard let split = split ?? evaluationSplit else { throw WorkbenchError.noData }
        let seq = min(window, model.config.contextLength - 1)
        let count = max(1, tokens / seq)
        let all = try self.tokens(split: split)
        guard all.count >= count * seq + 1 else { throw WorkbenchError.notEnoughTokens(have: all.count, need: count * seq + 1) }
        let windows = (0..<count).map { Array(all[($0 * seq)...($0 * seq + seq)]) }
        var calibration = [[Int32]]()
        if case .prune(_, wanda: true) = treatment {
            guard let corpus else { throw WorkbenchError.noData }
            calibration = try self.calibrationWindows(split: calibrationSplit ?? (corpus.isAusten ? "emma" : corpus.splits[0].name),
                                                 windows: calibrationWindows, length: min(calibrationLength, model.config.contextLength))
        }
        return try Sensitivity.measure(model: model, treatment: treatment, targets: targets, windows: windows, calibration: calibration,
                                       cancellation: cancellation, onCell: onCell)
    }
}
