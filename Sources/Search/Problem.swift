import Foundation

/// A search problem over integer genomes: each gene is an index in `lower[i]...upper[i]`, and
/// every objective is minimized. The search knows nothing of what a genome means.
public protocol Problem {
    var lower: [Int] { get }
    var upper: [Int] { get }
    var objectiveCount: Int { get }
    /// The objectives of one genome (all minimized).
    func evaluate(_ genome: [Int]) throws -> [Double]
}

/// One evaluated genome.
public struct Individual: Sendable, Equatable {
    public var genome: [Int]
    public var objectives: [Double]
    /// The generation that first evaluated it (0: the initial population).
    public var generation: Int
    /// Non-domination rank (0: the first front) and crowding distance, within its population.
    public var rank = 0
    public var crowding = 0.0

    public init(genome: [Int], objectives: [Double], generation: Int) {
        self.genome = genome
        self.objectives = objectives
        self.generation = generation
    }
}

/// a dominates b: no worse in every objective, better in one.
public func dominates(_ a: [Double], _ b: [Double]) -> Bool {
    var better = false
    for (x, y) in zip(a, b) {
        if x > y { return false }
        if x < y { better = true }
    }
    return better
}

/// SplitMix64: the search's own seeded generator (Search depends on Foundation only).
struct SearchRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func uniform() -> Double { Double(next() >> 11) * (1.0 / Double(1 << 53)) }

    mutating func int(_ range: ClosedRange<Int>) -> Int {
        range.lowerBound + Int(next() % UInt64(range.count))
    }
}
