import Foundation

// RMSNorm, as LLaMA uses it (no mean subtraction, no bias).
//
// Shapes:
//   input, out, dInput, dOut  (rows, channels)
//   weight, dWeight           (channels)
//   rstd                      (rows)     saved by forward for backward
//
// Forward, per row x:   r = 1 / sqrt(mean(x²) + eps),   n = x · r,   y = n ⊙ w
// Backward, per row:    dn = dy ⊙ w
//                       dx = r · (dn − n · mean(dn ⊙ n))
//                       dw += dy ⊙ n

public func rmsNormForward(out: UnsafeMutablePointer<Float>, rstd: UnsafeMutablePointer<Float>?,
                           input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                           rows: Int, channels: Int, eps: Float) {
    parallelChunks(rows, minimumChunk: 16) { range in
        for i in range {
            let x = input + i * channels
            let y = out + i * channels
            var sumSquares: Float = 0
            for c in 0..<channels { sumSquares += x[c] * x[c] }
            let r = 1 / (sumSquares / Float(channels) + eps).squareRoot()
            for c in 0..<channels { y[c] = x[c] * r * weight[c] }
            rstd?[i] = r
        }
    }
}

/// Accumulates into dInput and dWeight. Rows run in parallel when there is no weight gradient
/// to sum across them (frozen norms, as in adapter training).
public func rmsNormBackward(dInput: UnsafeMutablePointer<Float>, dWeight: UnsafeMutablePointer<Float>?,
                            dOut: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                            rstd: UnsafePointer<Float>, rows: Int, channels: Int) {
    func backwardRows(_ range: Range<Int>) {
        for i in range {
            let x = input + i * channels
            let dy = dOut + i * channels
            let dx = dInput + i * channels
            let r = rstd[i]
            // mean(dn ⊙ n) with dn = dy ⊙ w, n = x · r
            let meanDot = productSum(dy, weight, x, count: channels) * r / Float(channels)
            for c in 0..<channels { dx[c] += r * (dy[c] * weight[c] - x[c] * r * meanDot) }
            // A loop of its own: with the optional inside the one above, the compiler masked the
            // loads and stores of dWeight, and masked stores cost AMD's cores tens of cycles each
            // (this was 9 % of a LoRA training step).
            if let dWeight { for c in 0..<channels { dWeight[c] += dy[c] * x[c] * r } }
        }
    }
    if dWeight == nil {
        parallelChunks(rows, minimumChunk: 16, backwardRows)
    } else {
        backwardRows(0..<rows)
    }
}

/// Σ_c a_c · b_c · x_c, in 8 partial sums (a single float sum is a chain the compiler may not
/// reorder, so it would not vectorize).
@inline(__always)
func productSum(_ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, _ x: UnsafePointer<Float>, count: Int) -> Float {
    var partial = SIMD8<Float>()
    var c = 0
    while c + 8 <= count {
        let va = UnsafeRawPointer(a + c).loadUnaligned(as: SIMD8<Float>.self)
        let vb = UnsafeRawPointer(b + c).loadUnaligned(as: SIMD8<Float>.self)
        let vx = UnsafeRawPointer(x + c).loadUnaligned(as: SIMD8<Float>.self)
        partial += va * vb * vx
        c += 8
    }
    var sum = partial.sum()
    while c < count { sum += a[c] * b[c] * x[c]; c += 1 }
    return sum
}
