import Foundation
import Tensors
import XCTest

/// Finite-difference checks: for a scalar L = Σ f(x) ⊙ R with a fixed random R, the analytic
/// dL/dx from a backward kernel must match (L(x + h) − L(x − h)) / 2h, element by element.
enum GradientCheck {
    /// Compares `analytic` with central differences of `loss` over every element of `input`.
    static func assertMatches(_ analytic: Tensor, input: Tensor, step: Float = 1e-2, tolerance: Float = 2e-2,
                              _ name: String, file: StaticString = #filePath, line: UInt = #line,
                              loss: () -> Double) {
        var worst: Float = 0
        var worstIndex = 0
        for i in 0..<input.count {
            let saved = input[i]
            input[i] = saved + step
            let plus = loss()
            input[i] = saved - step
            let minus = loss()
            input[i] = saved
            let numeric = Float((plus - minus) / Double(2 * step))
            let error = abs(numeric - analytic[i]) / max(1, abs(numeric), abs(analytic[i]))
            if error > worst { worst = error; worstIndex = i }
        }
        XCTAssertLessThan(worst, tolerance, "\(name): worst relative error \(worst) at element \(worstIndex)", file: file, line: line)
    }

    static func random(_ shape: [Int], seed: UInt64, std: Float = 1) -> Tensor {
        var rng = SeededGenerator(seed: seed)
        let t = Tensor(zeros: shape)
        rng.fillNormal(t, std: std)
        return t
    }

    /// Σ a ⊙ b in Double.
    static func dot(_ a: Tensor, _ b: Tensor) -> Double {
        precondition(a.count == b.count)
        var sum = 0.0
        for i in 0..<a.count { sum += Double(a[i]) * Double(b[i]) }
        return sum
    }
}
