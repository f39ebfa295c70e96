import Foundation

/// A weight matrix (rows = outputs, columns = inputs) quantized group-wise along its inputs:
/// every `group` consecutive inputs of a row share a scale s and an integer zero point z,
///
///     q = clamp(round(w / s) + z, 0, 2^bits − 1),     ŵ = s · (q − z).
///
/// Because z is an integer, a zero weight maps to q = z and comes back exactly zero: pruned
/// weights stay pruned. Scales are stored as half floats (as GGUF stores them), so they are
/// rounded to half precision when chosen. When `group` does not divide `columns`, the last
/// group of each row is shorter (ragged).
///
/// Storage: codes packed two 4-bit values per byte (low nibble first) or one 8-bit value per
/// byte, row by row; scales and zero points (rows, groupsPerRow).
public struct GroupQuantizedMatrix: Sendable, Equatable {
    public let rows: Int
    public let columns: Int
    public let bits: Int
    public let group: Int
    public let symmetric: Bool
    public private(set) var codes: [UInt8]
    public private(set) var scales: [Float]
    public private(set) var zeros: [UInt8]

    public var groupsPerRow: Int { (columns + group - 1) / group }
    public var largestCode: Int { (1 << bits) - 1 }
    /// Bytes of the packed form: codes, half-float scales, zero points at `bits` each
    /// (symmetric zero points are one constant, not stored).
    public var bytes: Int {
        codes.count + scales.count * 2 + (symmetric ? 0 : (zeros.count * bits + 7) / 8)
    }

    public init(rows: Int, columns: Int, bits: Int, group: Int, symmetric: Bool) {
        precondition(bits == 4 || bits == 8, "4 or 8 bits")
        precondition(rows > 0 && columns > 0 && group > 0, "a \(rows) × \(columns) matrix in groups of \(group)")
        self.rows = rows
        self.columns = columns
        self.bits = bits
        self.group = group
        self.symmetric = symmetric
        let perRow = bits == 4 ? (columns + 1) / 2 : columns
        codes = [UInt8](repeating: 0, count: rows * perRow)
        let groups = rows * ((columns + group - 1) / group)
        scales = [Float](repeating: 0, count: groups)
        zeros = [UInt8](repeating: 0, count: groups)
    }

    private var codesPerRow: Int { bits == 4 ? (columns + 1) / 2 : columns }

    /// The code of weight (r, c).
    @inline(__always) public func code(_ r: Int, _ c: Int) -> Int {
        if bits == 8 { return Int(codes[r * columns + c]) }
        let byte = codes[r * codesPerRow + c / 2]
        return Int(c % 2 == 0 ? byte & 0x0F : byte >> 4)
    }

    @inline(__always) public mutating func setCode(_ r: Int, _ c: Int, _ q: Int) {
        precondition((0...largestCode).contains(q), "code \(q) outside 0…\(largestCode)")
        if bits == 8 { codes[r * columns + c] = UInt8(q); return }
        let i = r * codesPerRow + c / 2
        codes[i] = c % 2 == 0 ? (codes[i] & 0xF0) | UInt8(q) : (codes[i] & 0x0F) | UInt8(q << 4)
    }

    public func scale(_ r: Int, group g: Int) -> Float { scales[r * groupsPerRow + g] }
    public func zero(_ r: Int, group g: Int) -> Int { Int(zeros[r * groupsPerRow + g]) }

    public mutating func setGroup(_ r: Int, _ g: Int, scale: Float, zero: Int) {
        precondition((0...largestCode).contains(zero), "zero point \(zero) outside 0…\(largestCode)")
        scales[r * groupsPerRow + g] = scale
        zeros[r * groupsPerRow + g] = UInt8(zero)
    }

    /// The code of w on the grid of (r, g): clamp(round(w / s) + z, 0, 2^bits − 1).
    @inline(__always) public func quantize(_ w: Float, row r: Int, group g: Int) -> Int {
        let s = scale(r, group: g), z = zero(r, group: g)
        guard s != 0 else { return z }
        return min(largestCode, max(0, Int((w / s).rounded()) + z))
    }

    /// ŵ = s · (q − z) for every weight, into `out` (rows, columns).
    public func dequantize(into out: UnsafeMutablePointer<Float>) {
        for r in 0..<rows {
            for g in 0..<groupsPerRow {
                let s = scale(r, group: g), z = zero(r, group: g)
                for c in (g * group)..<min(columns, (g + 1) * group) { out[r * columns + c] = s * Float(code(r, c) - z) }
            }
        }
    }

    /// The dequantized matrix as a tensor (rows, columns).
    public func dequantized() -> Tensor {
        let t = Tensor(uninitialized: [rows, columns])
        dequantize(into: t.data)
        return t
    }
}
