import Foundation

/// A cheap stand-in for one objective of a genome, trained on the genomes evaluated so far: what
/// LINAS's inner search runs on. Features are the genome's choices one-hot (gene i at value v is
/// one feature), as DyNAS-T encodes them. The model is kernel ridge regression,
///
///   f(x) = ȳ + Σⱼ aⱼ k(x, xⱼ),   (K + λI) a = y − ȳ,
///
/// with the linear kernel k(x, x') = (x − x̄)·(x' − x̄), which is ridge regression on the
/// one-hot features written in its dual (n × n, and n, the evaluations, stays in the hundreds),
/// or the RBF kernel k(x, x') = exp(−γ‖x − x'‖²), γ = 1/features ("gamma auto"), which also
/// sees interactions between genes. The kernel and λ are chosen by k-fold cross-validation
/// (the smallest mean absolute error), as DyNAS-T picks the better of Ridge and SVR.
public struct ObjectivePredictor: Sendable {
    public enum Kernel: String, Sendable { case linear, rbf }

    public let kernel: Kernel
    public let lambda: Double
    /// The chosen model's cross-validated mean absolute error, in the objective's own units.
    public let crossValidatedError: Double
    let lower: [Int]
    let upper: [Int]
    let points: [[Double]]
    let mean: [Double]
    let yMean: Double
    let coefficients: [Double]
    let gamma: Double

    /// "ridge, λ 1" or "RBF kernel ridge, λ 0.1": what was chosen.
    public var description: String { (kernel == .linear ? "ridge" : "RBF kernel ridge") + ", λ \(lambda)" }

    static let lambdas: [Double] = [0.01, 0.1, 1, 10]

    /// Fits on `genomes` (within `lower…upper`) and their `values` of the objective.
    public static func fit(genomes: [[Int]], values: [Double], lower: [Int], upper: [Int], folds: Int = 5) -> ObjectivePredictor {
        precondition(genomes.count == values.count && !genomes.isEmpty, "\(values.count) values for \(genomes.count) genomes")
        let x = genomes.map { oneHot($0, lower: lower, upper: upper) }
        var best: (kernel: Kernel, lambda: Double, error: Double)?
        if genomes.count >= 4 {
            let k = min(folds, genomes.count)
            for kernel in [Kernel.linear, .rbf] {
                for lambda in lambdas {
                    var absolute = 0.0
                    for fold in 0..<k {
                        let test = x.indices.filter { $0 % k == fold }, train = x.indices.filter { $0 % k != fold }
                        let model = ObjectivePredictor(kernel: kernel, lambda: lambda, error: 0, lower: lower, upper: upper,
                                                       x: train.map { x[$0] }, y: train.map { values[$0] })
                        for i in test { absolute += abs(model.predict(features: x[i]) - values[i]) }
                    }
                    let error = absolute / Double(x.count)
                    if best == nil || error < best!.error { best = (kernel, lambda, error) }
                }
            }
        }
        let chosen = best ?? (.linear, 1, .nan)
        return ObjectivePredictor(kernel: chosen.kernel, lambda: chosen.lambda, error: chosen.error, lower: lower, upper: upper, x: x, y: values)
    }

    init(kernel: Kernel, lambda: Double, error: Double, lower: [Int], upper: [Int], x: [[Double]], y: [Double]) {
        self.kernel = kernel
        self.lambda = lambda
        crossValidatedError = error
        self.lower = lower
        self.upper = upper
        let d = x.first?.count ?? 0
        let gamma = 1 / Double(max(1, d))
        let mean = kernel == .linear ? (0..<d).map { j in x.reduce(0) { $0 + $1[j] } / Double(x.count) } : [Double](repeating: 0, count: d)
        let yMean = y.reduce(0, +) / Double(y.count)
        // Labels scaled to unit spread so that λ means the same for losses, parameter counts and latencies.
        let spread = max(1e-12, (y.map { ($0 - yMean) * ($0 - yMean) }.reduce(0, +) / Double(y.count)).squareRoot())
        let n = x.count
        var gram = [Double](repeating: 0, count: n * n)
        for i in 0..<n {
            for j in 0...i {
                let v = Self.kernelValue(kernel, x[i], x[j], mean: mean, gamma: gamma)
                gram[i * n + j] = v
                gram[j * n + i] = v
            }
            gram[i * n + i] += lambda
        }
        coefficients = choleskySolve(gram, n: n, y.map { ($0 - yMean) / spread }).map { $0 * spread }
        self.gamma = gamma
        self.mean = mean
        self.yMean = yMean
        points = x
    }

    /// The predicted objective of a genome.
    public func predict(_ genome: [Int]) -> Double { predict(features: Self.oneHot(genome, lower: lower, upper: upper)) }

    func predict(features: [Double]) -> Double {
        var sum = yMean
        for (a, point) in zip(coefficients, points) { sum += a * Self.kernelValue(kernel, features, point, mean: mean, gamma: gamma) }
        return sum
    }

    static func kernelValue(_ kernel: Kernel, _ a: [Double], _ b: [Double], mean: [Double], gamma: Double) -> Double {
        var s = 0.0
        switch kernel {
        case .linear:
            for j in a.indices { s += (a[j] - mean[j]) * (b[j] - mean[j]) }
            return s
        case .rbf:
            for j in a.indices { s += (a[j] - b[j]) * (a[j] - b[j]) }
            return exp(-gamma * s)
        }
    }

    static func oneHot(_ genome: [Int], lower: [Int], upper: [Int]) -> [Double] {
        var out = [Double]()
        out.reserveCapacity(zip(lower, upper).reduce(0) { $0 + $1.1 - $1.0 + 1 })
        for (i, g) in genome.enumerated() {
            for v in lower[i]...upper[i] { out.append(v == g ? 1 : 0) }
        }
        return out
    }
}

/// Solves A x = b for a symmetric positive definite A (n × n, row-major) by Cholesky, A = L Lᵀ:
/// forward substitution L z = b, then back substitution Lᵀ x = z.
func choleskySolve(_ a: [Double], n: Int, _ b: [Double]) -> [Double] {
    var l = [Double](repeating: 0, count: n * n)
    for i in 0..<n {
        for j in 0...i {
            var s = a[i * n + j]
            for k in 0..<j { s -= l[i * n + k] * l[j * n + k] }
            // λ > 0 keeps the pivots positive; the floor guards against rounding on a huge spread.
            l[i * n + j] = i == j ? max(s, 1e-12).squareRoot() : s / l[j * n + j]
        }
    }
    var z = b
    for i in 0..<n {
        for k in 0..<i { z[i] -= l[i * n + k] * z[k] }
        z[i] /= l[i * n + i]
    }
    var x = z
    for i in stride(from: n - 1, through: 0, by: -1) {
        for k in (i + 1)..<max(i + 1, n) { x[i] -= l[k * n + i] * x[k] }
        x[i] /= l[i * n + i]
    }
    return x
}

/// Spearman's rank correlation of two equally long lists (ties share their mean rank): how well
/// a predictor orders what was then evaluated for real. NaN for fewer than two values or a constant list.
public func rankCorrelation(_ a: [Double], _ b: [Double]) -> Double {
    precondition(a.count == b.count, "\(a.count) against \(b.count) values")
    guard a.count >= 2 else { return .nan }
    func ranks(_ v: [Double]) -> [Double] {
        let order = v.indices.sorted { v[$0] < v[$1] }
        var r = [Double](repeating: 0, count: v.count)
        var i = 0
        while i < order.count {
            var j = i
            while j + 1 < order.count && v[order[j + 1]] == v[order[i]] { j += 1 }
            for k in i...j { r[order[k]] = Double(i + j) / 2 }
            i = j + 1
        }
        return r
    }
    let ra = ranks(a), rb = ranks(b)
    let ma = ra.reduce(0, +) / Double(ra.count), mb = rb.reduce(0, +) / Double(rb.count)
    var sab = 0.0, saa = 0.0, sbb = 0.0
    for (x, y) in zip(ra, rb) {
        sab += (x - ma) * (y - mb)
        saa += (x - ma) * (x - ma)
        sbb += (y - mb) * (y - mb)
    }
    return saa > 0 && sbb > 0 ? sab / (saa * sbb).squareRoot() : .nan
}
