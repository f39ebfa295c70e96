import Foundation

/// Pareto utilities: fast non-dominated sorting, crowding distance, hypervolume.
public enum Pareto {
    /// Deb's fast non-dominated sort: indices of each front, best first.
    public static func fronts(_ objectives: [[Double]]) -> [[Int]] {
        let n = objectives.count
        var dominatedBy = [[Int]](repeating: [], count: n)   // i dominates these
        var dominationCount = [Int](repeating: 0, count: n)   // how many dominate i
        var fronts = [[Int]]()
        var current = [Int]()
        for i in 0..<n {
            for j in (i + 1)..<max(i + 1, n) {
                if dominates(objectives[i], objectives[j]) {
                    dominatedBy[i].append(j); dominationCount[j] += 1
                } else if dominates(objectives[j], objectives[i]) {
                    dominatedBy[j].append(i); dominationCount[i] += 1
                }
            }
        }
        for i in 0..<n where dominationCount[i] == 0 { current.append(i) }
        while !current.isEmpty {
            fronts.append(current)
            var next = [Int]()
            for i in current {
                for j in dominatedBy[i] {
                    dominationCount[j] -= 1
                    if dominationCount[j] == 0 { next.append(j) }
                }
            }
            current = next
        }
        return fronts
    }

    /// Crowding distance of each member of one front: the perimeter of the cuboid its
    /// neighbours span, per objective normalized by the front's range; extremes are infinite.
    public static func crowding(_ objectives: [[Double]]) -> [Double] {
        let n = objectives.count
        guard n > 2 else { return [Double](repeating: .infinity, count: n) }
        var distance = [Double](repeating: 0, count: n)
        for m in 0..<(objectives.first?.count ?? 0) {
            let order = (0..<n).sorted { objectives[$0][m] < objectives[$1][m] }
            let lo = objectives[order.first!][m], hi = objectives[order.last!][m]
            distance[order.first!] = .infinity
            distance[order.last!] = .infinity
            guard hi > lo else { continue }
            for k in 1..<(n - 1) {
                distance[order[k]] += (objectives[order[k + 1]][m] - objectives[order[k - 1]][m]) / (hi - lo)
            }
        }
        return distance
    }

    /// The non-dominated points among `objectives` (indices), sorted by the first objective.
    public static func nonDominated(_ objectives: [[Double]]) -> [Int] {
        (fronts(objectives).first ?? []).sorted { objectives[$0][0] < objectives[$1][0] }
    }

    /// Hypervolume of two-objective points (minimized) against a reference point: the area they
    /// dominate inside the box below `reference`. Points not better than the reference add nothing.
    public static func hypervolume2D(_ points: [[Double]], reference: [Double]) -> Double {
        precondition(reference.count == 2, "hypervolume2D takes two objectives")
        let inside = points.filter { $0[0] < reference[0] && $0[1] < reference[1] }
        let front = nonDominated(inside).map { inside[$0] }
        var volume = 0.0
        var previousY = reference[1]
        for p in front {      // ascending x, so descending y along the front
            volume += (reference[0] - p[0]) * (previousY - p[1])
            previousY = p[1]
        }
        return volume
    }
}
