// What one call of a quantized tile kernel reads and writes, for every instruction-set path.
// This module is a leaf (Tensors calls it), so the type lives here and Tensors' own paths use it
// too. Its methods are @inlinable: Tensors compiles them for its own CPU, never for AVX-512.

/// Up to 4 weight rows against up to `actRows` activation rows, over `blocks` blocks of 32:
///
///     out[w · actRows + t] = Σ_b [ d_w,b · d_t,b · Σ_j code_w,b,j · a_t,b,j  +  m_w,b · S_t,b ]
///
/// with m the block's additive term: −z·d for a zero point z (one for the matrix, `zeroPoint`, or
/// per block, `zeroPoints`), or a stored minimum (`minimums`); S_t,b = d_t,b · Σ_j a_t,b,j.
///
/// Weight row w (w < weightRows) starts at `codes + w·codeStride` bytes, its half scales at
/// `scales + w·scaleStride`; activation row t (t < actRows) at `acts + t·actStride` with scales
/// `actScales + t·actScaleStride`. Rows past the counts repeat the last one; their results are
/// computed and not used, so kernels never branch on a partial tile. The additive part of each
/// block is the kernel's, so that it runs in vectors beside the integer products.
public struct TileOperands {
    public var codes: UnsafeRawPointer
    public var codeStride: Int
    public var scales: UnsafePointer<Float16>
    public var scaleStride: Int
    public var weightRows: Int
    public var acts: UnsafePointer<Int8>
    public var actStride: Int
    public var actScales: UnsafePointer<Float>
    public var actScaleStride: Int
    public var actRows: Int
    public var actSums: UnsafePointer<Float>
    /// The additive term: per-block minimums, else per-block zero points, else `zeroPoint`.
    public var minimums: UnsafePointer<Float16>?
    public var zeroPoints: UnsafePointer<Int8>?
    public var zeroPoint: Int
    public var blocks: Int
    public var out: UnsafeMutablePointer<Float>

    @inlinable public init(codes: UnsafeRawPointer, codeStride: Int, scales: UnsafePointer<Float16>, scaleStride: Int, weightRows: Int,
                acts: UnsafePointer<Int8>, actStride: Int, actScales: UnsafePointer<Float>, actScaleStride: Int, actRows: Int,
                actSums: UnsafePointer<Float>, minimums: UnsafePointer<Float16>?, zeroPoints: UnsafePointer<Int8>?, zeroPoint: Int,
                blocks: Int, out: UnsafeMutablePointer<Float>) {
        self.codes = codes
        self.codeStride = codeStride
        self.scales = scales
        self.scaleStride = scaleStride
        self.weightRows = weightRows
        self.acts = acts
        self.actStride = actStride
        self.actScales = actScales
        self.actScaleStride = actScaleStride
        self.actRows = actRows
        self.actSums = actSums
        self.minimums = minimums
        self.zeroPoints = zeroPoints
        self.zeroPoint = zeroPoint
        self.blocks = blocks
        self.out = out
    }

    /// How far ahead of the codes it reads a matrix-vector kernel prefetches: the same place two
    /// tiles (8 rows) on. A decode step streams every weight from memory once, in short rows (576
    /// bytes for a Q8_0 row of SmolLM2) that the hardware prefetcher picks up too late: asking
    /// two tiles ahead took the sweep over SmolLM2's matrices from 8.9 to 14.6 GB/s (Q8_0) and
    /// from 8.6 to 12 GB/s (Q4_0) on AVX-512; one tile ahead was close, four no better.
    @inlinable public var prefetchDistance: Int { 8 * codeStride }

    /// Weight row w (clamped to the last real row): codes, scales, and the additive term's
    /// per-block minimums or zero points when it has them.
    @inlinable @inline(__always) public func weightRow(_ w: Int) -> WeightRow {
        let r = min(w, weightRows - 1)
        return WeightRow(codes: codes + r * codeStride, scales: scales + r * scaleStride,
                         minimums: minimums.map { $0 + r * scaleStride }, zeroPoints: zeroPoints.map { $0 + r * scaleStride })
    }

    /// Activation row t (clamped to the last real row): codes, scales and sums S.
    @inlinable @inline(__always) public func actRow(_ t: Int) -> ActRow {
        let r = min(t, actRows - 1)
        return ActRow(codes: acts + r * actStride, scales: actScales + r * actScaleStride, sums: actSums + r * actScaleStride)
    }

    /// m of block b of a weight row, z biased by `bias` (a path that reads codes shifted by it).
    @inlinable @inline(__always) public func additive(_ row: WeightRow, _ b: Int, bias: Int = 0) -> Float {
        if let m = row.minimums { return Float(m[b]) }
        let z = (row.zeroPoints.map { Int($0[b]) } ?? zeroPoint) + bias
        return -Float(z) * Float(row.scales[b])
    }

    /// Writes weight row k's sums against activation rows 0…3 (those that exist).
    @inlinable @inline(__always) public func store(_ k: Int, _ s0: SIMD16<Float>, _ s1: SIMD16<Float>, _ s2: SIMD16<Float>, _ s3: SIMD16<Float>) {
        let row = out + k * actRows
        row[0] = s0.sum()
        if actRows > 1 { row[1] = s1.sum() }
        if actRows > 2 { row[2] = s2.sum() }
        if actRows > 3 { row[3] = s3.sum() }
    }
}

/// One weight row of a tile.
public struct WeightRow {
    public var codes: UnsafeRawPointer
    public var scales: UnsafePointer<Float16>
    public var minimums: UnsafePointer<Float16>?
    public var zeroPoints: UnsafePointer<Int8>?

    @inlinable public init(codes: UnsafeRawPointer, scales: UnsafePointer<Float16>, minimums: UnsafePointer<Float16>?, zeroPoints: UnsafePointer<Int8>?) {
        self.codes = codes
        self.scales = scales
        self.minimums = minimums
        self.zeroPoints = zeroPoints
    }
}

/// One activation row of a tile.
public struct ActRow {
    public var codes: UnsafePointer<Int8>
    public var scales: UnsafePointer<Float>
    public var sums: UnsafePointer<Float>

    @inlinable public init(codes: UnsafePointer<Int8>, scales: UnsafePointer<Float>, sums: UnsafePointer<Float>) {
        self.codes = codes
        self.scales = scales
        self.sums = sums
    }
}
