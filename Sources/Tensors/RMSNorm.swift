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
            var dot: Float = 0
            for c in 0..<channels { dot += dy[c] * weight[c] * x[c] }
            let meanDot = dot * r / Float(channels)
            for c in 0..<channels {
                let n = x[c] * r
                dx[c] += r * (dy[c] * weight[c] - n * meanDot)
                dWeight?[c] += dy[c] * n
            }
        }
    }
    if dWeight == nil {
        parallelChunks(rows, minimumChunk: 16, backwardRows)
    } else {
        backwardRows(0..<rows)
    }
}
