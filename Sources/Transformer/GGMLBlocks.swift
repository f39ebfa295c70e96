import Foundation
import Tensors

// ggml's block formats: 32 consecutive weights along the contiguous axis per block. Block sizes
// and bytes are read from `GGMLTypeTraits`; what is inside a block is spelled here.
//
//   Q8_0  (34 B): f16 d, i8 q[32]            x = q · d
//   Q4_0  (18 B): f16 d, u8 qs[16]           x_j = ((nibble_j) − 8) · d
//   Q4_1  (20 B): f16 d, f16 m, u8 qs[16]    x_j = nibble_j · d + m
// Nibbles: element j < 16 is the low nibble of qs[j], element j ≥ 16 the high nibble of qs[j − 16].

enum GGMLBlocks {
    @inline(__always) static func half(_ p: UnsafeRawPointer) -> Float {
        Float(Float16(bitPattern: p.loadUnaligned(as: UInt16.self)))
    }

    @inline(__always) static func storeHalf(_ value: Float, _ p: UnsafeMutableRawPointer) {
        p.storeBytes(of: Float16(value).bitPattern, as: UInt16.self)
    }

    /// Decodes `count` elements of `type` from `source` into `out`.
    static func dequantize(_ type: GGMLType, _ source: UnsafeRawPointer, into out: UnsafeMutablePointer<Float>, count: Int) {
        switch type {
        case .f32:
            out.update(from: source.assumingMemoryBound(to: Float.self), count: count)
        case .f16:
            for i in 0..<count { out[i] = half(source + 2 * i) }
        case .bf16:
            for i in 0..<count {
                // bfloat16 is the top half of an IEEE float32.
                out[i] = Float(bitPattern: UInt32(source.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)) << 16)
            }
        case .q8_0:
            let (n, size) = (GGMLTypeTraits.q8_0.blockSize, GGMLTypeTraits.q8_0.bytesPerBlock)
            parallelBlocks(count, blockSize: n) { b in
                let block = source + b * size
                let d = half(block)
                let q = (block + 2).assumingMemoryBound(to: Int8.self)
                let o = out + b * n
                for j in 0..<n { o[j] = Float(q[j]) * d }
            }
        case .q4_0:
            let (n, size) = (GGMLTypeTraits.q4_0.blockSize, GGMLTypeTraits.q4_0.bytesPerBlock)
            parallelBlocks(count, blockSize: n) { b in
                let block = source + b * size
                let d = half(block)
                let qs = (block + 2).assumingMemoryBound(to: UInt8.self)
                let o = out + b * n
                for j in 0..<(n / 2) {
                    o[j] = Float(Int(qs[j] & 0x0F) - 8) * d
                    o[j + n / 2] = Float(Int(qs[j] >> 4) - 8) * d
                }
            }
        case .q4_1:
            let (n, size) = (GGMLTypeTraits.q4_1.blockSize, GGMLTypeTraits.q4_1.bytesPerBlock)
            parallelBlocks(count, blockSize: n) { b in
                let block = source + b * size
                let d = half(block), m = half(block + 2)
                let qs = (block + 4).assumingMemoryBound(to: UInt8.self)
                let o = out + b * n
                for j in 0..<(n / 2) {
                    o[j] = Float(qs[j] & 0x0F) * d + m
                    o[j + n / 2] = Float(qs[j] >> 4) * d + m
                }
            }
        default:
            preconditionFailure("dequantize called for unsupported type \(type)")
        }
    }

    private static func parallelBlocks(_ count: Int, blockSize: Int, _ body: (Int) -> Void) {
        let blocks = count / blockSize
        let workers = blocks >= 4096 ? processorCount : 1
        let chunk = (blocks + workers - 1) / workers
        DispatchQueue.concurrentPerform(iterations: workers) { w in
            for b in (w * chunk)..<min(blocks, (w + 1) * chunk) { body(b) }
        }
    }

    /// The blocks of `type` that hold a grid's codes exactly, for its first `rows` rows and
    /// `columns` columns, or nil when `type` cannot: groups of 32 only; Q4_0 for symmetric INT4
    /// (d = s, nibble = q), Q8_0 for symmetric INT8 (d = s, q − 128), Q4_1 for INT4 whose
    /// minimum −z·s is a half float (d = s, m = −z·s, nibble = q).
    public static func pack(_ grid: GroupQuantizedMatrix, rows: Int, columns: Int, as type: GGMLType) -> [UInt8]? {
        switch (type, grid.bits, grid.symmetric) {
        case (.q4_0, 4, true), (.q4_1, 4, _), (.q8_0, 8, true):
            break
        default:
            return nil
        }
        let (n, bytesPerBlock) = (type.traits!.blockSize, type.traits!.bytesPerBlock)
        guard grid.group == n, columns % n == 0, rows <= grid.rows, columns <= grid.columns else { return nil }
        let blocksPerRow = columns / n
        var out = [UInt8](repeating: 0, count: rows * blocksPerRow * bytesPerBlock)
        var exact = true
        out.withUnsafeMutableBytes { p in
            for r in 0..<rows {
                for g in 0..<blocksPerRow {
                    let block = p.baseAddress! + (r * blocksPerRow + g) * bytesPerBlock
                    let s = grid.scale(r, group: g), z = grid.zero(r, group: g)
                    guard Float(Float16(s)) == s else { exact = false; return }
                    storeHalf(s, block)
                    switch type {
                    case .q8_0:
                        for j in 0..<n { block.storeBytes(of: Int8(grid.code(r, g * n + j) - z), toByteOffset: 2 + j, as: Int8.self) }
                    case .q4_0, .q4_1:
                        var start = 2
                        if type == .q4_1 {
                            let m = -Float(z) * s
                            guard Float(Float16(m)) == m else { exact = false; return }
                            storeHalf(m, block + 2)
                            start = 4
                        }
                        for j in 0..<(n / 2) {
                            let lo = UInt8(grid.code(r, g * n + j)), hi = UInt8(grid.code(r, g * n + j + n / 2))
                            block.storeBytes(of: lo | (hi << 4), toByteOffset: start + j, as: UInt8.self)
                        }
                    default:
                        exact = false
                        return
                    }
                }
            }
        }
        return exact ? out : nil
    }

    /// Encodes `count` floats (a multiple of the block size for block types) as `type`.
    static func quantize(_ type: GGMLType, _ x: UnsafePointer<Float>, count: Int) -> [UInt8] {
        switch type {
        case .f32:
            return Array(UnsafeRawBufferPointer(start: x, count: count * 4))
        case .f16:
            var out = [UInt8](repeating: 0, count: count * 2)
            out.withUnsafeMutableBytes { p in for i in 0..<count { storeHalf(x[i], p.baseAddress! + 2 * i) } }
            return out
        case .q8_0:
            // d = amax / 127, q = round(x / d)
            let (n, size) = (GGMLTypeTraits.q8_0.blockSize, GGMLTypeTraits.q8_0.bytesPerBlock)
            var out = [UInt8](repeating: 0, count: count / n * size)
            out.withUnsafeMutableBytes { p in
                for b in 0..<(count / n) {
                    let v = x + b * n
                    var amax: Float = 0
                    for j in 0..<n { amax = max(amax, abs(v[j])) }
                    let d = amax / 127
                    let inverse: Float = d == 0 ? 0 : 1 / d
                    let block = p.baseAddress! + b * size
                    storeHalf(d, block)
                    for j in 0..<n { block.storeBytes(of: Int8((v[j] * inverse).rounded()), toByteOffset: 2 + j, as: Int8.self) }
                }
            }
            return out
        case .q4_0:
            // max = the value of largest magnitude (signed), d = max / −8, q = min(15, ⌊x/d + 8.5⌋)
            let (n, size) = (GGMLTypeTraits.q4_0.blockSize, GGMLTypeTraits.q4_0.bytesPerBlock)
            var out = [UInt8](repeating: 0, count: count / n * size)
            out.withUnsafeMutableBytes { p in
                for b in 0..<(count / n) {
                    let v = x + b * n
                    var amax: Float = 0, signedMax: Float = 0
                    for j in 0..<n where abs(v[j]) > amax { amax = abs(v[j]); signedMax = v[j] }
                    let d = signedMax / -8
                    let inverse: Float = d == 0 ? 0 : 1 / d
                    let block = p.baseAddress! + b * size
                    storeHalf(d, block)
                    for j in 0..<(n / 2) {
                        let lo = min(15, UInt8(clamping: Int8(clamping: Int(v[j] * inverse + 8.5))))
                        let hi = min(15, UInt8(clamping: Int8(clamping: Int(v[j + n / 2] * inverse + 8.5))))
                        block.storeBytes(of: lo | (hi << 4), toByteOffset: 2 + j, as: UInt8.self)
                    }
                }
            }
            return out
        case .q4_1:
            // d = (max − min) / 15, m = min, q = min(15, ⌊(x − min)/d + 0.5⌋)
            let (n, size) = (GGMLTypeTraits.q4_1.blockSize, GGMLTypeTraits.q4_1.bytesPerBlock)
            var out = [UInt8](repeating: 0, count: count / n * size)
            out.withUnsafeMutableBytes { p in
                for b in 0..<(count / n) {
                    let v = x + b * n
                    var lo = Float.greatestFiniteMagnitude, hi = -Float.greatestFiniteMagnitude
                    for j in 0..<n { lo = min(lo, v[j]); hi = max(hi, v[j]) }
                    let d = (hi - lo) / 15
                    let inverse: Float = d == 0 ? 0 : 1 / d
                    let block = p.baseAddress! + b * size
                    storeHalf(d, block)
                    storeHalf(lo, block + 2)
                    for j in 0..<(n / 2) {
                        let a = min(15, UInt8(clamping: Int8(clamping: Int((v[j] - lo) * inverse + 0.5))))
                        let c = min(15, UInt8(clamping: Int8(clamping: Int((v[j + n / 2] - lo) * inverse + 0.5))))
                        block.storeBytes(of: a | (c << 4), toByteOffset: 4 + j, as: UInt8.self)
                    }
                }
            }
            return out
        default:
            preconditionFailure("quantize called for unsupported type \(type)")
        }
    }
}
