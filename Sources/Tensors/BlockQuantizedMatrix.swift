import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A weight matrix (rows = outputs, columns = inputs) kept as blocks of 32 consecutive inputs,
/// each block with a half-float scale d and integer codes:
///
///     4 bits:  w_j = d · (q_j − z)    or   w_j = d · q_j + m     q_j ∈ 0…15
///     8 bits:  w_j = d · (c_j − z)                                c_j ∈ −128…127
///
/// One representation for every format Sculpt computes from: GGUF's Q4_0 (z = 8), Q4_1 (a half
/// minimum m per block), Q8_0 (z = 0), and the group-wise INT4/INT8 grids `quantize` makes (a zero
/// point per group; an 8-bit code q is stored as c = q − 128 with z − 128, so that one signed
/// product serves both). The products (`quantizedLinear`) read the codes directly.
///
/// Storage, each row after the other: codes (16 bytes per 4-bit block in GGUF's nibble order,
/// element j < 16 in the low nibble of byte j and j + 16 in its high nibble; 32 signed bytes per
/// 8-bit block), half scales, and per-block zero points or minimums when they vary. Or, after
/// `interleaveRows()`, groups of 16 rows with their lanes interleaved for the AVX-512 kernels:
/// read codes and scales through `code`, `scale` and `additive`, never by address.
public final class BlockQuantizedMatrix: @unchecked Sendable {
    public static let blockSize = 32

    /// What the codes were, for the card and for export.
    public enum Format: Sendable, Equatable, CustomStringConvertible {
        case q4_0, q4_1, q8_0
        /// A `quantize` grid: bits, group size, symmetric.
        case grid(bits: Int, group: Int, symmetric: Bool)

        /// The GGUF type the blocks came from, or nil for a `quantize` grid.
        public var ggml: GGMLTypeTraits? {
            switch self {
            case .q4_0: return .q4_0
            case .q4_1: return .q4_1
            case .q8_0: return .q8_0
            case .grid: return nil
            }
        }

        public var description: String {
            switch self {
            case .q4_0, .q4_1, .q8_0: return ggml!.name
            case .grid(let bits, let group, let symmetric): return "INT\(bits) g\(group)\(symmetric ? " sym" : "")"
            }
        }
    }

    /// The additive part of a block: w = d·(q − z) with one z for all, or per block, or w = d·q + m.
    public enum Offset: @unchecked Sendable {
        case zeroPoint(Int)
        case zeroPoints(UnsafeMutablePointer<Int8>)
        case minimums(UnsafeMutablePointer<Float16>)
    }

    public let rows: Int
    public let columns: Int
    public let bits: Int
    public let format: Format
    public let blocksPerRow: Int
    /// Bytes of codes per block (16 or 32) and per row.
    public let codeBytesPerBlock: Int
    public var codeBytesPerRow: Int { blocksPerRow * codeBytesPerBlock }
    public let codes: UnsafeMutableRawPointer
    public let scales: UnsafeMutablePointer<Float16>
    public let offset: Offset
    /// Rows 0 ..< interleavedRows are stored in interleaved groups of 16 (all of them or none).
    public private(set) var interleavedRows = 0
    public static let interleaveGroup = 16

    /// How a new matrix stores its additive part.
    public enum OffsetStorage: Sendable { case zeroPoint(Int), zeroPoints, minimums }

    public init(rows: Int, columns: Int, bits: Int, format: Format, offset storage: OffsetStorage) {
        precondition(bits == 4 || bits == 8, "4 or 8 bits")
        precondition(rows > 0 && columns > 0 && columns % Self.blockSize == 0, "a \(rows) × \(columns) matrix in blocks of 32")
        self.rows = rows
        self.columns = columns
        self.bits = bits
        self.format = format
        blocksPerRow = columns / Self.blockSize
        codeBytesPerBlock = bits == 4 ? 16 : 32
        let blocks = rows * blocksPerRow
        codes = Self.allocate(blocks * codeBytesPerBlock)
        scales = Self.allocate(blocks * 2).bindMemory(to: Float16.self, capacity: blocks)
        switch storage {
        case .zeroPoints: offset = .zeroPoints(Self.allocate(blocks).bindMemory(to: Int8.self, capacity: blocks))
        case .minimums: offset = .minimums(Self.allocate(blocks * 2).bindMemory(to: Float16.self, capacity: blocks))
        case .zeroPoint(let z): offset = .zeroPoint(z)
        }
    }

    /// Weights are streamed once per token: 2 MiB pages keep the TLB out of the way, as for Tensor.
    private static func allocate(_ bytes: Int) -> UnsafeMutableRawPointer {
        let hugePage = 2 << 20
        let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, bytes), alignment: bytes >= hugePage ? hugePage : 64)
        #if os(Linux)
        if bytes >= hugePage { _ = madvise(raw, bytes / hugePage * hugePage, MADV_HUGEPAGE) }
        #endif
        return raw
    }

    deinit {
        codes.deallocate()
        UnsafeMutableRawPointer(scales).deallocate()
        switch offset {
        case .zeroPoints(let p): UnsafeMutableRawPointer(p).deallocate()
        case .minimums(let p): UnsafeMutableRawPointer(p).deallocate()
        case .zeroPoint: break
        }
    }

    /// Bytes held: codes, scales and per-block offsets.
    public var byteCount: Int {
        let blocks = rows * blocksPerRow
        switch offset {
        case .zeroPoint: return blocks * (codeBytesPerBlock + 2)
        case .zeroPoints: return blocks * (codeBytesPerBlock + 3)
        case .minimums: return blocks * (codeBytesPerBlock + 4)
        }
    }

    /// Where the scale (and per-block offset) of block b of row r is: row after row, or in an
    /// interleaved group the 16 rows' scales of a block side by side.
    @inline(__always) public func scaleIndex(_ r: Int, _ b: Int) -> Int {
        r < interleavedRows ? ((r >> 4) * blocksPerRow + b) * 16 + (r & 15) : r * blocksPerRow + b
    }

    /// d of block b of row r.
    @inline(__always) public func scale(row r: Int, block b: Int) -> Float { Float(scales[scaleIndex(r, b)]) }

    /// m_b, the additive term of block b of row r: −z·d, or the stored minimum.
    @inline(__always) public func additive(row r: Int, block b: Int) -> Float {
        let i = scaleIndex(r, b)
        switch offset {
        case .zeroPoint(let z): return -Float(z) * Float(scales[i])
        case .zeroPoints(let z): return -Float(z[i]) * Float(scales[i])
        case .minimums(let m): return Float(m[i])
        }
    }

    /// The integer code of weight (r, c): 0…15 for 4 bits, −128…127 for 8.
    @inline(__always) public func code(_ r: Int, _ c: Int) -> Int {
        let j = c % 32
        if r < interleavedRows {
            // Vector k of the group's block holds inputs 4k…4k+3 (8 bits, biased by 128) or, as
            // nibbles, 8t…8t+3 low and 8t+4…8t+7 high (4 bits); lane r & 15 is this row.
            let block = codes + ((r >> 4) * blocksPerRow + c / 32) * 16 * codeBytesPerBlock
            let lane = (r & 15) * 4
            if bits == 8 { return Int(Int8(bitPattern: block.load(fromByteOffset: (j / 4) * 64 + lane + j % 4, as: UInt8.self) ^ 0x80)) }
            let i = j % 8
            let byte = block.load(fromByteOffset: (j / 8) * 64 + lane + i % 4, as: UInt8.self)
            return Int(i < 4 ? byte & 0x0F : byte >> 4)
        }
        let block = codes + r * codeBytesPerRow + (c / 32) * codeBytesPerBlock
        if bits == 8 { return Int(block.load(fromByteOffset: j, as: Int8.self)) }
        let byte = block.load(fromByteOffset: j % 16, as: UInt8.self)
        return Int(j < 16 ? byte & 0x0F : byte >> 4)
    }

    /// Row r in Float32 (its first `count` columns): what the embedding lookup reads.
    public func dequantizeRow(_ r: Int, into out: UnsafeMutablePointer<Float>, count: Int? = nil) {
        let n = count ?? columns
        // Row layout: each block's 32 codes side by side, 32 (or 16 bytes of 2 × 16 nibbles) at once.
        if r >= interleavedRows {
            let row = UnsafeRawPointer(codes + r * codeBytesPerRow)
            for b in 0..<n / 32 {
                let d = scale(row: r, block: b), m = additive(row: r, block: b)
                let block = row + b * codeBytesPerBlock
                let (low, high): (SIMD16<Float>, SIMD16<Float>)
                if bits == 8 {
                    low = SIMD16<Float>(block.loadUnaligned(as: SIMD16<Int8>.self))
                    high = SIMD16<Float>(block.loadUnaligned(fromByteOffset: 16, as: SIMD16<Int8>.self))
                } else {
                    // Byte j holds code j in its low nibble and code j + 16 in its high one.
                    let bytes = block.loadUnaligned(as: SIMD16<UInt8>.self)
                    low = SIMD16<Float>(bytes & 0x0F)
                    high = SIMD16<Float>(bytes &>> 4)
                }
                let o = UnsafeMutableRawPointer(out + b * 32)
                o.storeBytes(of: low * d + m, as: SIMD16<Float>.self)
                o.storeBytes(of: high * d + m, toByteOffset: 64, as: SIMD16<Float>.self)
            }
        } else {
            // Interleaved: row r is lane r & 15 of its group's vectors, 4 codes per 32-bit lane.
            let lane = (r & 15) * 4
            for b in 0..<n / 32 {
                let d = scale(row: r, block: b), m = additive(row: r, block: b)
                let block = UnsafeRawPointer(codes + ((r >> 4) * blocksPerRow + b) * 16 * codeBytesPerBlock)
                let o = out + b * 32
                if bits == 8 {
                    // Vector k holds inputs 4k…4k+3, biased by 128.
                    for k in 0..<8 {
                        let word = block.loadUnaligned(fromByteOffset: k * 64 + lane, as: UInt32.self)
                        for i in 0..<4 { o[4 * k + i] = d * Float(Int8(bitPattern: UInt8(truncatingIfNeeded: word >> (8 * i)) ^ 0x80)) + m }
                    }
                } else {
                    // Vector t holds inputs 8t…8t+3 in low nibbles and 8t+4…8t+7 in high ones.
                    for t in 0..<4 {
                        let word = block.loadUnaligned(fromByteOffset: t * 64 + lane, as: UInt32.self)
                        for i in 0..<4 {
                            let byte = UInt8(truncatingIfNeeded: word >> (8 * i))
                            o[8 * t + i] = d * Float(byte & 0x0F) + m
                            o[8 * t + 4 + i] = d * Float(byte >> 4) + m
                        }
                    }
                }
            }
        }
        // A partial last block (an input narrower than a block), a code at a time.
        for c in n / 32 * 32..<n { out[c] = scale(row: r, block: c / 32) * Float(code(r, c)) + additive(row: r, block: c / 32) }
    }

    /// The whole matrix in Float32, (rows, columns).
    public func dequantized() -> Tensor {
        let t = Tensor(uninitialized: [rows, columns])
        parallelChunks(rows, minimumChunk: 64) { range in
            for r in range { self.dequantizeRow(r, into: t.data + r * self.columns) }
        }
        return t
    }
    /// Whether `interleaveRows` applies: one zero point for the whole matrix (Q8_0, Q4_0, a
    /// symmetric grid) or per-block minimums (Q4_1), and whole groups of 16 rows. (Per-block zero
    /// points, an asymmetric grid's, stay in rows.)
    public var canInterleave: Bool {
        if case .zeroPoints = offset { return false }
        return rows % Self.interleaveGroup == 0
    }

    /// The per-block minimums, when the matrix has them.
    var minimumsStorage: UnsafeMutablePointer<Float16>? {
        if case .minimums(let m) = offset { return m }
        return nil
    }

    /// Repacks the codes and scales in place for the AVX-512 VNNI kernels
    /// (InterleavedBlockKernelsAVX512), as llama.cpp repacks Q4_0 and Q8_0 for its x86 kernels:
    /// each group of 16 rows becomes, block after block, vectors whose 32-bit lane r is row r, and
    /// the group's 16 scales (and minimums) of a block one vector. A group takes the same bytes it took as rows,
    /// so nothing is allocated beyond one group's scratch. Every path still computes from the
    /// interleaved form (the narrower ones unpack a group at a time); `code`, `scale` and
    /// `additive` read it. A no-op where `canInterleave` is false or it is already done.
    public func interleaveRows() {
        guard canInterleave, interleavedRows == 0 else { return }
        let group = Self.interleaveGroup, groupCodeBytes = group * codeBytesPerRow, groupScales = group * blocksPerRow
        let codeScratch = UnsafeMutableRawPointer.allocate(byteCount: groupCodeBytes, alignment: 64)
        let scaleScratch = UnsafeMutablePointer<Float16>.allocate(capacity: 2 * groupScales)
        defer { codeScratch.deallocate(); scaleScratch.deallocate() }
        let minimums = minimumsStorage
        for g in 0..<(rows / group) {
            let groupCodes = codes + g * groupCodeBytes, firstScale = scales + g * groupScales
            let firstMinimum = minimums.map { $0 + g * groupScales }
            for r in 0..<group {
                for b in 0..<blocksPerRow {
                    scaleScratch[b * group + r] = firstScale[r * blocksPerRow + b]
                    if let m = firstMinimum { scaleScratch[groupScales + b * group + r] = m[r * blocksPerRow + b] }
                    let source = groupCodes + r * codeBytesPerRow + b * codeBytesPerBlock
                    let target = codeScratch + b * group * codeBytesPerBlock + r * 4
                    if bits == 8 {
                        for j in 0..<32 {
                            target.storeBytes(of: source.load(fromByteOffset: j, as: UInt8.self) ^ 0x80, toByteOffset: (j / 4) * 64 + j % 4, as: UInt8.self)
                        }
                    } else {
                        // GGUF order: byte j holds input j (low) and j + 16 (high).
                        func nibble(_ j: Int) -> UInt8 {
                            let byte = source.load(fromByteOffset: j % 16, as: UInt8.self)
                            return j < 16 ? byte & 0x0F : byte >> 4
                        }
                        for t in 0..<4 {
                            for i in 0..<4 {
                                target.storeBytes(of: nibble(8 * t + i) | nibble(8 * t + 4 + i) << 4, toByteOffset: t * 64 + i, as: UInt8.self)
                            }
                        }
                    }
                }
            }
            groupCodes.copyMemory(from: codeScratch, byteCount: groupCodeBytes)
            firstScale.update(from: scaleScratch, count: groupScales)
            firstMinimum?.update(from: scaleScratch + groupScales, count: groupScales)
        }
        interleavedRows = rows
    }

    /// Repacks for the path the products will take: interleaved, where the format allows, for the
    /// AVX-512 VNNI and AVX2 kernels (InterleavedBlockKernelsAVX512, InterleavedBlockKernelsAVX2);
    /// the scalar reference reads rows.
    public func prepareForKernels(path: KernelPath = KernelPath.current) {
        if path == .avx512vnni || path == .avx2 { interleaveRows() }
    }

    /// Rows g·16 … g·16 + 15 of an interleaved matrix back in the row layout: codes into
    /// `codes` (16 × codeBytesPerRow bytes), scales into `scales` and minimums, if it has them,
    /// into `minimums` (16 × blocksPerRow each), for the kernels that read rows.
    public func unpackGroup(_ g: Int, codes target: UnsafeMutableRawPointer, scales targetScales: UnsafeMutablePointer<Float16>,
                            minimums targetMinimums: UnsafeMutablePointer<Float16>? = nil) {
        let group = Self.interleaveGroup, minimums = minimumsStorage
        for r in 0..<group {
            let row = g * group + r
            for b in 0..<blocksPerRow {
                targetScales[r * blocksPerRow + b] = scales[scaleIndex(row, b)]
                if let m = minimums, let target = targetMinimums { target[r * blocksPerRow + b] = m[scaleIndex(row, b)] }
                let block = target + r * codeBytesPerRow + b * codeBytesPerBlock
                if bits == 8 {
                    for j in 0..<32 { block.storeBytes(of: Int8(code(row, b * 32 + j)), toByteOffset: j, as: Int8.self) }
                } else {
                    for j in 0..<16 { block.storeBytes(of: UInt8(code(row, b * 32 + j)) | UInt8(code(row, b * 32 + j + 16)) << 4, toByteOffset: j, as: UInt8.self) }
                }
            }
        }
    }
}

extension BlockQuantizedMatrix {
    /// GGUF blocks as they are in the file (`rows` × `columns` weights of a type the table marks
    /// kept packed: Q4_0, Q4_1 or Q8_0), or nil for another type.
    public convenience init?(ggmlType: Int, blocks source: UnsafeRawPointer, rows: Int, columns: Int) {
        guard let traits = UInt32(exactly: ggmlType).flatMap(GGMLTypeTraits.init(id:)), traits.isKeptPacked else { return nil }
        let blocks = rows * (columns / traits.blockSize)
        let size = traits.bytesPerBlock
        switch traits {
        case .q4_0:  // f16 d, u8 qs[16]
            self.init(rows: rows, columns: columns, bits: 4, format: .q4_0, offset: .zeroPoint(8))
            for b in 0..<blocks {
                scales[b] = Float16(bitPattern: source.loadUnaligned(fromByteOffset: b * size, as: UInt16.self))
                (codes + b * codeBytesPerBlock).copyMemory(from: source + b * size + 2, byteCount: codeBytesPerBlock)
            }
        case .q4_1:  // f16 d, f16 m, u8 qs[16]
            self.init(rows: rows, columns: columns, bits: 4, format: .q4_1, offset: .minimums)
            guard case .minimums(let m) = offset else { return nil }
            for b in 0..<blocks {
                scales[b] = Float16(bitPattern: source.loadUnaligned(fromByteOffset: b * size, as: UInt16.self))
                m[b] = Float16(bitPattern: source.loadUnaligned(fromByteOffset: b * size + 2, as: UInt16.self))
                (codes + b * codeBytesPerBlock).copyMemory(from: source + b * size + 4, byteCount: codeBytesPerBlock)
            }
        case .q8_0:  // f16 d, i8 qs[32]
            self.init(rows: rows, columns: columns, bits: 8, format: .q8_0, offset: .zeroPoint(0))
            for b in 0..<blocks {
                scales[b] = Float16(bitPattern: source.loadUnaligned(fromByteOffset: b * size, as: UInt16.self))
                (codes + b * codeBytesPerBlock).copyMemory(from: source + b * size + 2, byteCount: codeBytesPerBlock)
            }
        default:
            return nil
        }
    }

    /// A `quantize` grid, when its groups are whole blocks (group a multiple of 32, columns too);
    /// nil otherwise. Each block takes its group's scale and zero point.
    public convenience init?(_ grid: GroupQuantizedMatrix) {
        guard grid.group % 32 == 0, grid.columns % 32 == 0 else { return nil }
        let format = Format.grid(bits: grid.bits, group: grid.group, symmetric: grid.symmetric)
        // A symmetric grid has one zero point (the middle code): no per-block storage.
        let middle = 1 << (grid.bits - 1)
        let constant = grid.symmetric && (0..<grid.rows).allSatisfy { r in
            (0..<grid.groupsPerRow).allSatisfy { grid.zero(r, group: $0) == middle }
        }
        let bias = grid.bits == 8 ? 128 : 0
        self.init(rows: grid.rows, columns: grid.columns, bits: grid.bits, format: format,
                  offset: constant ? .zeroPoint(middle - bias) : .zeroPoints)
        for r in 0..<rows {
            for b in 0..<blocksPerRow {
                let g = b * 32 / grid.group
                let i = r * blocksPerRow + b
                scales[i] = Float16(grid.scale(r, group: g))
                if case .zeroPoints(let z) = offset { z[i] = Int8(grid.zero(r, group: g) - bias) }
                let block = codes + i * codeBytesPerBlock
                if bits == 8 {
                    for j in 0..<32 { block.storeBytes(of: Int8(grid.code(r, b * 32 + j) - 128), toByteOffset: j, as: Int8.self) }
                } else {
                    for j in 0..<16 {
                        let lo = UInt8(grid.code(r, b * 32 + j)), hi = UInt8(grid.code(r, b * 32 + j + 16))
                        block.storeBytes(of: lo | hi << 4, toByteOffset: j, as: UInt8.self)
                    }
                }
            }
        }
    }
}

extension BlockQuantizedMatrix {
    /// The GGUF blocks of a matrix loaded from Q4_0, Q4_1 or Q8_0, byte for byte as they were in
    /// the file (type and bytes), for its first `rows` rows; nil for a `quantize` grid.
    public func ggmlBlocks(rows count: Int? = nil) -> (type: GGMLTypeTraits, bytes: [UInt8])? {
        if interleavedRows > 0 { return rowOrderCopy().ggmlBlocks(rows: count) }
        guard let traits = format.ggml else { return nil }
        let blocks = (count ?? rows) * blocksPerRow
        func half(_ h: Float16) -> [UInt8] { [UInt8(h.bitPattern & 0xFF), UInt8(h.bitPattern >> 8)] }
        func blockCodes(_ b: Int) -> UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: codes + b * codeBytesPerBlock, count: codeBytesPerBlock) }
        var out = [UInt8]()
        out.reserveCapacity(blocks * traits.bytesPerBlock)
        switch (format, offset) {
        case (.q4_0, _), (.q8_0, _):
            for b in 0..<blocks { out += half(scales[b]); out += blockCodes(b) }
        case (.q4_1, .minimums(let m)):
            for b in 0..<blocks { out += half(scales[b]); out += half(m[b]); out += blockCodes(b) }
        default:
            return nil
        }
        return (traits, out)
    }

    /// A copy in the row layout (an interleaved matrix's rows, for export).
    func rowOrderCopy() -> BlockQuantizedMatrix {
        guard interleavedRows > 0 else { return self }
        let storage: OffsetStorage
        switch offset {
        case .zeroPoint(let z): storage = .zeroPoint(z)
        case .minimums: storage = .minimums
        case .zeroPoints: return self  // never interleaved
        }
        let copy = BlockQuantizedMatrix(rows: rows, columns: columns, bits: bits, format: format, offset: storage)
        for g in 0..<(rows / Self.interleaveGroup) {
            let first = g * Self.interleaveGroup
            unpackGroup(g, codes: copy.codes + first * codeBytesPerRow, scales: copy.scales + first * blocksPerRow,
                        minimums: copy.minimumsStorage.map { $0 + first * blocksPerRow })
        }
        return copy
    }
}
