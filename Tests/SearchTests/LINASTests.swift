import Foundation
@testable import Search
import XCTest

/// A subnet-like problem: per gene a choice 0…3 with an additive cost (size) and a quality loss
/// that falls with size and has pairwise interactions between neighbouring genes, so the two
/// objectives conflict and a predictor must learn which genes matter.
struct SubnetLikeProblem: Problem {
    let genes = 8
    var lower: [Int] { Array(repeating: 0, count: genes) }
    var upper: [Int] { Array(repeating: 3, count: genes) }
    var objectiveCount: Int { 2 }

    func evaluate(_ genome: [Int]) -> [Double] {
        var size = 0.0, loss = 0.0
        for (i, g) in genome.enumerated() {
            let weight = 1 + Double(i % 3)           // some genes cost more
            let importance = 1 + Double((i * 5) % 7) // and matter more
            size += weight * Double(g)
            loss += importance / (1 + Double(g))
            if i > 0 { loss += 0.1 * Double(genome[i - 1] == 0 && g == 0 ? 1 : 0) }
        }
        return [size, loss]
    }
}

final class LINASTests: XCTestCase {
    func genomes(_ count: Int, seed: UInt64, genes: Int, choices: Int) -> [[Int]] {
        var rng = SearchRandom(seed: seed)
        return (0..<count).map { _ in (0..<genes).map { _ in rng.int(0...(choices - 1)) } }
    }

    /// The one-hot ridge recovers an additive objective: on genomes it never saw, its order
    /// matches the truth closely, and the cross-validated error is small against the spread.
    func testThePredictorLearnsAnAdditiveObjective() {
        let values = (0..<6).map { i in (0..<4).map { v in Double((i * 7 + v * 3) % 5) } }
        func truth(_ g: [Int]) -> Double { g.enumerated().reduce(0) { $0 + values[$1.offset][$1.element] } }
        let train = genomes(80, seed: 1, genes: 6, choices: 4), test = genomes(40, seed: 2, genes: 6, choices: 4)
        let predictor = ObjectivePredictor.fit(genomes: train, values: train.map(truth), lower: Array(repeating: 0, count: 6),
                                               upper: Array(repeating: 3, count: 6))
        XCTAssertGreaterThan(rankCorrelation(test.map(predictor.predict), test.map(truth)), 0.97, predictor.description)
        let spread = test.map(truth).max()! - test.map(truth).min()!
        XCTAssertLessThan(predictor.crossValidatedError, 0.1 * spread)
    }

    /// An objective of interactions only (the product of two genes' values) is beyond one-hot
    /// ridge: the RBF kernel is chosen and predicts it better than ridge would.
    func testCrossValidationChoosesTheKernelThatFits() {
        func truth(_ g: [Int]) -> Double { Double((g[0] - 2) * (g[1] - 2)) }
        let train = genomes(120, seed: 3, genes: 3, choices: 5)
        let predictor = ObjectivePredictor.fit(genomes: train, values: train.map(truth), lower: [0, 0, 0], upper: [4, 4, 4])
        XCTAssertEqual(predictor.kernel, .rbf, predictor.description)
        let ridge = ObjectivePredictor(kernel: .linear, lambda: 0.1, error: 0, lower: [0, 0, 0], upper: [4, 4, 4],
                                       x: train.map { ObjectivePredictor.oneHot($0, lower: [0, 0, 0], upper: [4, 4, 4]) }, y: train.map(truth))
        let test = genomes(60, seed: 4, genes: 3, choices: 5)
        func error(_ p: ObjectivePredictor) -> Double { test.map { abs(p.predict($0) - truth($0)) }.reduce(0, +) }
        XCTAssertLessThan(error(predictor), 0.5 * error(ridge))
    }

    func testRankCorrelation() {
        XCTAssertEqual(rankCorrelation([1, 2, 3, 4], [10, 20, 30, 40]), 1, accuracy: 1e-12)
        XCTAssertEqual(rankCorrelation([1, 2, 3, 4], [4, 3, 2, 1]), -1, accuracy: 1e-12)
        XCTAssertEqual(rankCorrelation([1, 1, 2], [5, 5, 9]), 1, accuracy: 1e-12, "ties share their rank")
        XCTAssertTrue(rankCorrelation([1, 1], [2, 3]).isNaN)
    }

    /// At the same number of real evaluations, LINAS's front covers more than plain NSGA-II's, on
    /// each of three seeds, and its rounds report how well the predictors ordered each batch.
    func testLINASBeatsNSGA2AtTheSameRealEvaluations() throws {
        let problem = SubnetLikeProblem()
        let reference = [problem.evaluate(Array(repeating: 3, count: 8))[0] + 1, problem.evaluate(Array(repeating: 0, count: 8))[1] + 1]
        // The true front: every one of the 4⁸ genomes, the least loss at each size.
        var leastLoss = [Double: Double]()
        for n in 0..<65536 {
            let o = problem.evaluate((0..<8).map { (n >> (2 * $0)) & 3 })
            leastLoss[o[0]] = min(leastLoss[o[0]] ?? .infinity, o[1])
        }
        let hvTrue = Pareto.hypervolume2D(leastLoss.map { [$0.key, $0.value] }, reference: reference)
        for seed: UInt64 in [0, 1, 2] {
            let linas = try LINAS.run(problem, parameters: LINAS.Parameters(population: 20, evaluations: 100, innerGenerations: 40, seed: seed))
            let plain = try NSGA2.run(problem, parameters: NSGA2.Parameters(population: 20, generations: 4, seed: seed))
            XCTAssertEqual(linas.evaluated.count, 100)
            XCTAssertEqual(Set(linas.evaluated.map(\.genome)).count, 100, "no genome evaluated twice")
            XCTAssertLessThanOrEqual(plain.evaluated.count, 100)
            let hvLINAS = Pareto.hypervolume2D(linas.front.map(\.objectives), reference: reference)
            let hvPlain = Pareto.hypervolume2D(plain.front.map(\.objectives), reference: reference)
            XCTAssertGreaterThan(hvLINAS, hvPlain, "seed \(seed)")
            XCTAssertGreaterThan(hvLINAS, 0.97 * hvTrue, "seed \(seed): near the true front after 100 of 65,536 genomes")
            XCTAssertEqual(linas.rounds.count, 4)
            XCTAssertEqual(linas.rounds.last?.evaluations, 100)
            XCTAssertGreaterThan(linas.rounds[0].rankCorrelations[0], 0.9, "size is additive: its predictor orders the batch")
        }
    }

    /// A cancelled search keeps the real evaluations it made.
    func testACancelledSearchKeepsWhatItEvaluated() throws {
        var calls = 0
        let result = try LINAS.run(SubnetLikeProblem(), parameters: LINAS.Parameters(population: 10, evaluations: 50, innerGenerations: 5),
                                   isCancelled: { calls += 1; return calls > 25 })
        XCTAssertTrue(result.interrupted)
        XCTAssertGreaterThan(result.evaluated.count, 10)
        XCTAssertLessThan(result.evaluated.count, 50)
        XCTAssertFalse(result.front.isEmpty)
    }
}
