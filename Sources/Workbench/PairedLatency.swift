import Foundation

/// Forward latencies of a subnet and a reference subnet, timed in alternating rounds.
/// Per-round speedups show how much a single figure can be trusted on a shared machine.
public struct PairedLatency: Sendable, Equatable {
    /// Seconds per forward pass, one value per round.
    public var subnet: [Double]
    public var reference: [Double]

    public init(subnet: [Double], reference: [Double]) {
        precondition(subnet.count == reference.count && !subnet.isEmpty, "one latency of each per round")
        self.subnet = subnet
        self.reference = reference
    }

    /// Mean without the fastest and slowest round (with three rounds or more).
    static func trimmedMean(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        let kept = sorted.count > 2 ? Array(sorted.dropFirst().dropLast()) : sorted
        return kept.reduce(0, +) / Double(kept.count)
    }

    public var subnetSeconds: Double { Self.trimmedMean(subnet) }
    public var referenceSeconds: Double { Self.trimmedMean(reference) }
    /// Reference time over subnet time, from the trimmed means.
    public var speedup: Double { referenceSeconds / subnetSeconds }
    /// Each round's own speedup, sorted.
    public var roundSpeedups: [Double] { zip(reference, subnet).map { $0 / $1 }.sorted() }
}
