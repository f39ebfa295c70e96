import Foundation
import Tensors

extension LlamaModel {
    /// ShortGPT's Block Influence of every layer on calibration sequences:
    ///
    ///   BI_l = 1 − mean_t cos(x_l,t, x_l+1,t)
    ///
    /// with x_l,t the residual stream entering block l at token t. A block whose output is nearly
    /// its input does little, and is the first to drop when a model loses depth. Measured with
    /// every layer kept at the active widths (a skipped layer is scored as if it ran), adapters as
    /// attached; the shape comes back after. Nil when `isCancelled` says so between sequences.
    public func blockInfluence(sequences: [[Int32]], isCancelled: () -> Bool = { false }) -> [Double]? {
        var allKept = activeShape
        for l in allKept.layers.indices { allKept.layers[l].kept = true }
        return withShape(allKept) { () -> [Double]? in
            var sums = [Double](repeating: 0, count: layers.count)
            var tokens = 0
            for sequence in sequences where !sequence.isEmpty {
                if isCancelled() { return nil }
                let streams = residualStreams(tokens: sequence, batch: 1, seq: sequence.count)
                for l in layers.indices {
                    for t in 0..<sequence.count {
                        sums[l] += 1 - cosine(streams[l].data + t * config.dim, streams[l + 1].data + t * config.dim, count: config.dim)
                    }
                }
                tokens += sequence.count
            }
            return sums.map { $0 / Double(max(1, tokens)) }
        }
    }
}

/// cos(a, b) = a·b / (‖a‖‖b‖), accumulated in Float64; 1 for two zero vectors (nothing changed).
func cosine(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, count: Int) -> Double {
    var ab = 0.0, aa = 0.0, bb = 0.0
    for i in 0..<count {
        let x = Double(a[i]), y = Double(b[i])
        ab += x * y
        aa += x * x
        bb += y * y
    }
    return aa > 0 && bb > 0 ? ab / (aa * bb).squareRoot() : 1
}
