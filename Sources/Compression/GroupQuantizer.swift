import Foundation
import Tensors
import Transformer

/// Group-wise INT4/INT8 quantization of a weight (out, in) along its inputs, with an integer
/// zero point per group (§1.8), by rounding to nearest (RTN). GPTQ picks the grid the same way
/// and the codes differently.
///
/// The grid of a group:
///   symmetric, 4 bits   s = w* / −8 with w* the group's weight of largest magnitude (signed),
///                       z = 8: GGUF's Q4_0 rule, so a group of 32 is exactly a Q4_0 block
///   symmetric, 8 bits   s = max|w| / 127, z = 128: GGUF's Q8_0 rule (codes 1…255)
///   asymmetric          lo = min(w, 0), hi = max(w, 0), s = (hi − lo) / (2^bits − 1),
///                       z = round(−lo / s): zero is always on the grid
/// s is rounded to half precision, as GGUF stores it.
public enum GroupQuantizer {
    public struct Parameters: Sendable, Equatable {
        public var bits = 4
        public var group = 32
        public var symmetric = false

        public init(bits: Int = 4, group: Int = 32, symmetric: Bool = false) {
            self.bits = bits
            self.group = group
            self.symmetric = symmetric
        }

        public var description: String { "INT\(bits), group \(group), \(symmetric ? "symmetric" : "asymmetric")" }
    }

    /// Sets the scale and zero point of group g of row r from its weights.
    static func chooseGrid(_ m: inout GroupQuantizedMatrix, row r: Int, group g: Int, weights w: UnsafePointer<Float>, count: Int) {
        let largest = Float(m.largestCode)
        if m.symmetric {
            var amax: Float = 0, signedMax: Float = 0
            for j in 0..<count where abs(w[j]) > amax { amax = abs(w[j]); signedMax = w[j] }
            let s = m.bits == 4 ? signedMax / -8 : amax / 127
            m.setGroup(r, g, scale: Float(Float16(s)), zero: m.bits == 4 ? 8 : 128)
        } else {
            var lo: Float = 0, hi: Float = 0
            for j in 0..<count { lo = min(lo, w[j]); hi = max(hi, w[j]) }
            let s = Float(Float16((hi - lo) / largest))
            let z = s == 0 ? 0 : Int((-lo / s).rounded())
            m.setGroup(r, g, scale: s, zero: min(m.largestCode, max(0, z)))
        }
    }

    /// Round-to-nearest quantization of `weight` (rows, columns).
    public static func quantize(_ weight: Tensor, rows: Int, columns: Int, parameters p: Parameters) -> GroupQuantizedMatrix {
        precondition(weight.count == rows * columns, "a weight of \(weight.shape) as \(rows) × \(columns)")
        var m = GroupQuantizedMatrix(rows: rows, columns: columns, bits: p.bits, group: p.group, symmetric: p.symmetric)
        for r in 0..<rows {
            for g in 0..<m.groupsPerRow {
                let start = g * p.group, count = min(columns, start + p.group) - start
                chooseGrid(&m, row: r, group: g, weights: weight.data + r * columns + start, count: count)
                for c in start..<(start + count) { m.setCode(r, c, m.quantize(weight[r * columns + c], row: r, group: g)) }
            }
        }
        return m
    }

    /// Relative error ‖W − Ŵ‖ / ‖W‖.
    public static func relativeError(_ weight: Tensor, _ m: GroupQuantizedMatrix) -> Double {
        let q = m.dequantized()
        var difference = 0.0, norm = 0.0
        for i in 0..<weight.count {
            let d = Double(weight[i] - q[i])
            difference += d * d
            norm += Double(weight[i]) * Double(weight[i])
        }
        return norm == 0 ? 0 : (difference / norm).squareRoot()
    }
}
