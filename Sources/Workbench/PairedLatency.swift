import Foundation

/// Forward latencies of a subnet and a reference subnet, timed in alternating rounds.
///
/// On a shared machine a forward pass is slowed by whatever else runs, never sped up, so the fastest
/// of many runs is the steadiest estimate of what the subnet itself costs: the speedup compares the
/// best runs. Each round's own ratio is kept too; their range shows how noisy the machine was.
public struct PairedLatency: Sendable, Equatable {
    /// Seconds per forward pass, one value per round.
    public var subnet: [Double]
    public var reference: [Double]

    public init(subnet: [Double], reference: [Double]) {
        precondition(subnet.count == reference.count && !subnet.isEmpty, "one latency of each per round")
        self.subnet = subnet
        self.reference = reference
    }

    public var subnetSeconds: Double { subnet.min()! }
    public var referenceSeconds: Double { reference.min()! }
    /// Reference time over subnet time, best run against best run.
    public var speedup: Double { referenceSeconds / subnetSeconds }
    /// Each round's own speedup, sorted.
    public var roundSpeedups: [Double] { zip(reference, subnet).map { $0 / $1 }.sorted() }
    /// The middle of the rounds' speedups.
    public var medianRoundSpeedup: Double {
        let sorted = roundSpeedups
        let middle = sorted.count / 2
        return sorted.count % 2 == 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2
    }
}
