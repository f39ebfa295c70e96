import Foundation
import Tensors

/// AdamW (Loshchilov & Hutter): Adam moments with weight decay applied to the weights directly,
/// not through the gradient.
///   m ← β₁ m + (1 − β₁) g,   v ← β₂ v + (1 − β₂) g²
///   p ← p − lr · ( m̂ / (√v̂ + ε) + λ p ),   m̂ = m / (1 − β₁ᵗ),  v̂ = v / (1 − β₂ᵗ)
public final class AdamW {
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8
    public var weightDecay: Float
    public private(set) var step = 0
    private let parameters: [(Tensor, Tensor)]
    private let first: [Tensor]
    private let second: [Tensor]

    public init(parameters: [(Tensor, Tensor)], weightDecay: Float = 0) {
        self.parameters = parameters
        self.weightDecay = weightDecay
        first = parameters.map { Tensor(zeros: $0.0.shape) }
        second = parameters.map { Tensor(zeros: $0.0.shape) }
    }

    /// √(Σ g²) over every gradient.
    public func gradientNorm() -> Float {
        var sum = 0.0
        for (_, g) in parameters { for i in 0..<g.count { sum += Double(g[i]) * Double(g[i]) } }
        return Float(sum.squareRoot())
    }

    /// Scales every gradient so their global norm is at most `maxNorm`; returns the norm before.
    @discardableResult
    public func clipGradients(maxNorm: Float) -> Float {
        let norm = gradientNorm()
        if maxNorm > 0, norm > maxNorm {
            let factor = maxNorm / (norm + 1e-6)
            for (_, g) in parameters { for i in 0..<g.count { g[i] *= factor } }
        }
        return norm
    }

    public func update(learningRate lr: Float) {
        step += 1
        let c1 = 1 - powf(beta1, Float(step)), c2 = 1 - powf(beta2, Float(step))
        for (index, (p, g)) in parameters.enumerated() {
            let m = first[index], v = second[index]
            for i in 0..<p.count {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i]
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i]
                let update = (m[i] / c1) / ((v[i] / c2).squareRoot() + epsilon)
                p[i] -= lr * (update + weightDecay * p[i])
            }
        }
    }
}

/// Linear warm-up from 0 to the peak rate, then cosine decay to `floor × peak` at the last step.
public struct LearningRateSchedule: Sendable {
    public var peak: Float
    public var warmup: Int
    public var total: Int
    public var floor: Float = 0

    public init(peak: Float, warmup: Int, total: Int, floor: Float = 0) {
        self.peak = peak
        self.warmup = warmup
        self.total = total
        self.floor = floor
    }

    /// The rate for step `t` (0-based).
    public func rate(at t: Int) -> Float {
        if t < warmup { return peak * Float(t + 1) / Float(warmup) }
        let span = max(1, total - warmup)
        let progress = min(1, Float(t - warmup) / Float(span))
        return peak * (floor + (1 - floor) * 0.5 * (1 + cosf(.pi * progress)))
    }
}
