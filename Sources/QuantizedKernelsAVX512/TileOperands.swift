// What one call of a quantized tile kernel reads and writes, for every instruction-set path.
// This module is a leaf (Tensors calls it), so the type lives here and Tensors' own paths use it
// too. Its methods are @inlinable: Tensors compiles them for its own CPU, never for AVX-512.

/// Up to 4 weight rows against up to `actRows` activation rows, over `blocks` blocks of 32:
///
///     out[w · actRows + t] = Σ_b d_w,b · d_t,b · Σ_j code_w,b,j · a_t,b,j
///
/// Weight row w (w < weightRows) starts at `codes + w·codeStride` bytes, its half scales at
/// `scales + w·scaleStride`; activation row t (t < actRows) at `acts + t·actStride` with scales
/// `actScales + t·actScaleStride`. Rows past the counts repeat the last one; their results are
/// computed and not used, so kernels never branch on a partial tile. The additive part of each
/// block (zero point or minimum) is not here: the caller adds Σ_b m_w,b · S_t,b.
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
    public var blocks: Int
    public var out: UnsafeMutablePointer<Float>

    @inlinable public init(codes: UnsafeRawPointer, codeStride: Int, scales: UnsafePointer<Float16>, scaleStride: Int, weightRows: Int,
                acts: UnsafePointer<Int8>, actStride: Int, actScales: UnsafePointer<Float>, actScaleStride: Int, actRows: Int,
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
        self.blocks = blocks
        self.out = out
    }

    /// Weight row w's codes and scales (clamped to the last real row).
    @inlinable @inline(__always) public func weightRow(_ w: Int) -> (UnsafeRawPointer, UnsafePointer<Float16>) {
        let r = min(w, weightRows - 1)
        return (codes + r * codeStride, scales + r * scaleStride)
    }

    /// Activation row t's codes and scales (clamped to the last real row).
    @inlinable @inline(__always) public func actRow(_ t: Int) -> (UnsafePointer<Int8>, UnsafePointer<Float>) {
        let r = min(t, actRows - 1)
        return (acts + r * actStride, actScales + r * actScaleStride)
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
