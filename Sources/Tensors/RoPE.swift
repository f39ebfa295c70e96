import Foundation

// Rotary position embedding in the GGUF / llama.cpp convention: adjacent pairs rotate.
//
// Shapes:
//   x            (rows, heads, headDim)   rotated in place; row i has position positions[i]
//   cos, sin     (maxPositions, headDim/2) from `RoPETable`
//
// For pair p < d/2 at position t, θ = t · base^(−2p/d):
//   (y₂ₚ, y₂ₚ₊₁) = (x₂ₚ cos θ − x₂ₚ₊₁ sin θ,  x₂ₚ sin θ + x₂ₚ₊₁ cos θ)
// Backward is the rotation by −θ (the transpose of an orthogonal map):
//   (dx₂ₚ, dx₂ₚ₊₁) = (dy₂ₚ cos θ + dy₂ₚ₊₁ sin θ,  −dy₂ₚ sin θ + dy₂ₚ₊₁ cos θ)

/// Precomputed cos/sin for every position and pair.
public final class RoPETable: @unchecked Sendable {
    public let headDim: Int
    public let maxPositions: Int
    public let cos: Tensor   // (maxPositions, headDim/2)
    public let sin: Tensor   // (maxPositions, headDim/2)

    public init(headDim: Int, maxPositions: Int, base: Float) {
        precondition(headDim % 2 == 0, "RoPE needs an even head dimension")
        self.headDim = headDim
        self.maxPositions = maxPositions
        let half = headDim / 2
        cos = Tensor(zeros: [maxPositions, half])
        sin = Tensor(zeros: [maxPositions, half])
        for t in 0..<maxPositions {
            for p in 0..<half {
                // In Double: at t = 8192 a Float angle loses the low bits that matter.
                let theta = Double(t) * pow(Double(base), -2 * Double(p) / Double(headDim))
                cos[t * half + p] = Float(Foundation.cos(theta))
                sin[t * half + p] = Float(Foundation.sin(theta))
            }
        }
    }
}

public func ropeForward(x: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RoPETable,
                        rows: Int, heads: Int) {
    rotate(x, positions, table, rows, heads, sign: 1)
}

public func ropeBackward(dx: UnsafeMutablePointer<Float>, positions: UnsafePointer<Int32>, table: RoPETable,
                         rows: Int, heads: Int) {
    rotate(dx, positions, table, rows, heads, sign: -1)
}

private func rotate(_ x: UnsafeMutablePointer<Float>, _ positions: UnsafePointer<Int32>, _ table: RoPETable,
                    _ rows: Int, _ heads: Int, sign: Float) {
    let d = table.headDim
    let half = d / 2
    parallelChunks(rows, minimumChunk: 16) { range in
        for i in range {
            let t = Int(positions[i])
            precondition(t >= 0 && t < table.maxPositions, "position \(t) beyond the RoPE table of \(table.maxPositions)")
            let c = table.cos.data + t * half
            let s = table.sin.data + t * half
            for h in 0..<heads {
                let v = x + (i * heads + h) * d
                for p in 0..<half {
                    let a = v[2 * p], b = v[2 * p + 1]
                    let sn = sign * s[p]
                    v[2 * p] = a * c[p] - b * sn
                    v[2 * p + 1] = a * sn + b * c[p]
                }
            }
        }
    }
}
