import Foundation

// Row-wise softmax.
//
// Shapes: input, out, dInput, dOut  (rows, columns)
//
// y = exp(x − max x) / Σ exp(x − max x)
// dx += y ⊙ (dy − Σ dy ⊙ y)

public func softmaxForward(out: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, rows: Int, columns: Int) {
    for i in 0..<rows {
        softmaxRow(out + i * columns, input + i * columns, columns)
    }
}

public func softmaxBackward(dInput: UnsafeMutablePointer<Float>, dOut: UnsafePointer<Float>, out: UnsafePointer<Float>,
                            rows: Int, columns: Int) {
    for i in 0..<rows {
        let y = out + i * columns, dy = dOut + i * columns, dx = dInput + i * columns
        var dot: Float = 0
        for j in 0..<columns { dot += dy[j] * y[j] }
        for j in 0..<columns { dx[j] += y[j] * (dy[j] - dot) }
    }
}

/// One row, in place allowed (out may equal input).
@inline(__always)
func softmaxRow(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>, _ columns: Int) {
    let sum = expShifted(out, input, columns, shift: maximum(input, columns))
    let inverse = 1 / sum
    for j in 0..<columns { out[j] *= inverse }
}
