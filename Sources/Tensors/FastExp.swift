import Foundation

// Vectorized e^x for the element-wise kernels (softmax, SwiGLU, cross-entropy), where libm's
// scalar expf would otherwise cost as much as the matrix products around it.
//
// e^x = 2^n · e^r,   n = round(x · log₂e),   r = x − n·ln2  (ln2 split in hi + lo for exactness)
// e^r on |r| ≤ ln2/2 by its degree-6 Taylor polynomial (relative error < 2e-7 there);
// 2^n built from the exponent bits. x is clamped to [−87.3, 88.7] so 2^n stays a normal float;
// results below e^−87.3 come out as that tiny value instead of 0, which every caller sums away.

public typealias FloatVector = SIMD16<Float>

@inline(__always)
public func fastExp(_ x: FloatVector) -> FloatVector {
    // `replace(with:where:)` compiles to vector blends; `clamped` here did not vectorize.
    let low = FloatVector(repeating: -87.3), high = FloatVector(repeating: 88.7)
    var clamped = x
    clamped.replace(with: low, where: clamped .< low)
    clamped.replace(with: high, where: clamped .> high)
    // Rounding by the 1.5·2²³ trick: adding it leaves round(x·log₂e) in the low mantissa bits,
    // with plain vector float and integer ops (no per-lane conversions).
    let magic = FloatVector(repeating: 12_582_912)
    let t = clamped * 1.442_695_04 + magic
    let n = t - magic
    var r = clamped - n * 0.693_145_75      // ln2 high part
    r = r - n * 1.428_606_8e-6              // ln2 low part
    // Horner: 1 + r(1 + r(1/2 + r(1/6 + r(1/24 + r(1/120 + r/720)))))
    var p = FloatVector(repeating: 1.0 / 720)
    p = p * r + 1.0 / 120
    p = p * r + 1.0 / 24
    p = p * r + 1.0 / 6
    p = p * r + 0.5
    p = p * r + 1
    p = p * r + 1
    let bits = (unsafeBitCast(t, to: SIMD16<UInt32>.self) &- 0x4B40_0000 &+ 127) &<< 23
    return p * unsafeBitCast(bits, to: FloatVector.self)
}

@inline(__always)
public func fastExp(_ x: Float) -> Float {
    fastExp(FloatVector(repeating: x))[0]
}

/// out[i] = e^(x[i] − shift) for i < count; returns Σ out[i].
@inline(__always)
public func expShifted(_ out: UnsafeMutablePointer<Float>, _ x: UnsafePointer<Float>, _ count: Int, shift: Float) -> Float {
    var sum = FloatVector.zero
    var i = 0
    let s = FloatVector(repeating: shift)
    while i + 16 <= count {
        let e = fastExp(UnsafeRawPointer(x + i).loadUnaligned(as: FloatVector.self) - s)
        UnsafeMutableRawPointer(out + i).storeBytes(of: e, as: FloatVector.self)
        sum += e
        i += 16
    }
    var total = sum.sum()
    while i < count {
        let e = fastExp(x[i] - shift)
        out[i] = e
        total += e
        i += 1
    }
    return total
}

/// The largest of count values.
@inline(__always)
public func maximum(_ x: UnsafePointer<Float>, _ count: Int) -> Float {
    var m = FloatVector(repeating: -.infinity)
    var i = 0
    while i + 16 <= count {
        let v = UnsafeRawPointer(x + i).loadUnaligned(as: FloatVector.self)
        m.replace(with: v, where: v .> m)
        i += 16
    }
    var result = m.max()
    while i < count { result = max(result, x[i]); i += 1 }
    return result
}
