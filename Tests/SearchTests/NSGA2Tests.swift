import Foundation
@testable import Search
import XCTest

/// ZDT1 and ZDT2 (Zitzler, Deb, Thiele 2000) on a grid: genes 0…K stand for x = gene / K.
struct DiscretizedZDT: Problem {
    let genes: Int
    let steps: Int
    let concave: Bool   // ZDT2 (concave front) instead of ZDT1 (convex)
    var lower: [Int] { Array(repeating: 0, count: genes) }
    var upper: [Int] { Array(repeating: steps, count: genes) }
    var objectiveCount: Int { 2 }

    func evaluate(_ genome: [Int]) -> [Double] {
        let x = genome.map { Double($0) / Double(steps) }
        let g = 1 + 9 * x.dropFirst().reduce(0, +) / Double(genes - 1)
        let f1 = x[0]
        let f2 = g * (1 - (concave ? pow(f1 / g, 2) : (f1 / g).squareRoot()))
        return [f1, f2]
    }

    /// The true front (g = 1) at the grid's f1 values.
    var trueFront: [[Double]] {
        (0...steps).map { i in
            let f1 = Double(i) / Double(steps)
            return [f1, 1 - (concave ? f1 * f1 : f1.squareRoot())]
        }
    }
}

final class NSGA2Tests: XCTestCase {
    func testFrontsAndCrowding() {
        let points: [[Double]] = [[1, 5], [2, 3], [3, 1], [2, 4], [4, 4], [5, 5]]
        XCTAssertEqual(Pareto.fronts(points).map { $0.sorted() }, [[0, 1, 2], [3], [4], [5]])
        let crowding = Pareto.crowding([[1, 5], [2, 3], [3, 1]])
        XCTAssertEqual(crowding[0], .infinity)
        XCTAssertEqual(crowding[1], 2, accuracy: 1e-12, "(3−1)/2 + (5−1)/4")
        XCTAssertEqual(Pareto.hypervolume2D([[1, 2], [2, 1]], reference: [3, 3]), 3)
        XCTAssertEqual(Pareto.hypervolume2D([[1, 2], [2, 1], [2.5, 2.5]], reference: [3, 3]), 3, "dominated points add nothing")
    }

    func check(_ problem: DiscretizedZDT, target: Double) throws {
        let result = try NSGA2.run(problem, parameters: .init(population: 40, generations: 120, seed: 1))
        let reference = [1.1, 1.1]
        let found = Pareto.hypervolume2D(result.front.map(\.objectives), reference: reference)
        let best = Pareto.hypervolume2D(problem.trueFront, reference: reference)
        XCTAssertGreaterThan(found / best, target, "hypervolume \(found) of the true front's \(best)")
        XCTAssertFalse(result.interrupted)
        XCTAssertEqual(Set(result.evaluated.map(\.genome)).count, result.evaluated.count, "each genome evaluated once")
    }

    func testReachesTheZDT1Front() throws {
        try check(DiscretizedZDT(genes: 8, steps: 50, concave: false), target: 0.95)
    }

    func testReachesTheZDT2Front() throws {
        try check(DiscretizedZDT(genes: 8, steps: 50, concave: true), target: 0.90)
    }

    func testSameSeedSameSearchAndProgressEveryGeneration() throws {
        let problem = DiscretizedZDT(genes: 5, steps: 20, concave: false)
        var generations = [Int]()
        let a = try NSGA2.run(problem, parameters: .init(population: 12, generations: 6, seed: 5)) { generations.append($0.generation) }
        let b = try NSGA2.run(problem, parameters: .init(population: 12, generations: 6, seed: 5))
        XCTAssertEqual(a.front.map(\.genome), b.front.map(\.genome))
        XCTAssertEqual(generations, Array(0...6))
        let c = try NSGA2.run(problem, parameters: .init(population: 12, generations: 6, seed: 6))
        XCTAssertNotEqual(a.evaluated.map(\.genome), c.evaluated.map(\.genome))
    }

    func testCancellationKeepsTheFrontSoFar() throws {
        let problem = DiscretizedZDT(genes: 5, steps: 20, concave: false)
        var count = 0
        let result = try NSGA2.run(problem, parameters: .init(population: 10, generations: 50, seed: 1), isCancelled: {
            count += 1
            return count > 35
        })
        XCTAssertTrue(result.interrupted)
        XCTAssertEqual(result.evaluated.count, 35)
        XCTAssertFalse(result.front.isEmpty)
    }

    func testSeedsEnterTheInitialPopulation() throws {
        let problem = DiscretizedZDT(genes: 3, steps: 10, concave: false)
        let result = try NSGA2.run(problem, parameters: .init(population: 6, generations: 0, seed: 1), seeds: [[10, 10, 10], [0, 0, 0]])
        XCTAssertEqual(Array(result.evaluated.prefix(2).map(\.genome)), [[10, 10, 10], [0, 0, 0]])
    }
}
