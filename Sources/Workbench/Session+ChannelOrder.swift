import Compression
import Foundation
import Transformer

extension Session {
    /// Importance of every MLP channel of the frozen model (stored order), measured on about
    /// `tokens` tokens of a training split in windows spread evenly over it (so the statistics
    /// are not one chapter's), and what each width in `widths` keeps of it in the loaded order and
    /// sorted. Throws `CancellationError` when interrupted; nothing has changed then.
    func measureMLPImportance(split: String?, tokens: Int, widths: [Int]) throws -> (importance: [[Double]], kept: ImportanceKept) {
        let model = try requireModel()
        let (data, name) = try trainingData(split: split)
        guard let windows = data as? TextWindows else { throw WorkbenchError.invalid("calibration needs plain text") }
        let seq = min(128, model.config.contextLength - 1)
        guard windows.stream.count > seq + 1 else { throw WorkbenchError.notEnoughTokens(have: windows.stream.count, need: seq + 2) }
        let count = max(1, (tokens + seq - 1) / seq)
        let span = windows.stream.count - seq
        let sequences = (0..<count).map { i -> [Int32] in
            let start = span * i / count
            return Array(windows.stream[start..<(start + seq)])
        }
        guard let importance = model.mlpChannelImportance(sequences: sequences, isCancelled: { self.cancellation.isCancelled }) else {
            throw CancellationError()
        }
        // The same scores in the order the weights were loaded, for the report.
        let loadedOrder = model.layers.enumerated().map { l, layer -> [Double] in
            var scores = [Double](repeating: 0, count: model.config.ffnDim)
            for (i, original) in layer.mlpChannelOrder.enumerated() { scores[original] = importance[l][i] }
            return scores
        }
        return (importance, ImportanceKept(importance: loadedOrder, channels: widths, calibrationTokens: count * seq, calibrationSplit: name))
    }
}
