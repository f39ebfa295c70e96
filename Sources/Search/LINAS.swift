import Foundation

/// LINAS (DyNAS-T's `LINAS.search`, used by LLaMA-NAS): NSGA-II whose many evaluations run on
/// predictors, with real evaluations only for what the predictors think is the front.
///
///   1. evaluate `population` genomes for real (the seeds, then random ones);
///   2. per round: fit one `ObjectivePredictor` per objective on every real evaluation so far;
///      run an inner NSGA-II on the predicted objectives (`innerGenerations` × `population`
///      predicted evaluations, started from the real front); its best-ranked genomes not yet
///      evaluated (non-domination rank, then crowding) are the next batch, evaluated for real;
///   3. stop at `evaluations` real evaluations.
///
/// Each round reports how well the predictors ordered the batch before it was evaluated (Spearman
/// rank correlation, per objective): the predictor's error as the search goes.
public enum LINAS {
    public struct Parameters: Sendable {
        /// Genomes per real batch, and the inner search's population.
        public var population = 50
        /// Real evaluations in all (the budget the comparison with NSGA-II holds equal).
        public var evaluations = 250
        /// Generations of the inner search per round.
        public var innerGenerations = 100
        public var seed: UInt64 = 0

        public init(population: Int = 50, evaluations: Int = 250, innerGenerations: Int = 100, seed: UInt64 = 0) {
            self.population = population
            self.evaluations = evaluations
            self.innerGenerations = innerGenerations
            self.seed = seed
        }
    }

    /// One batch of real evaluations after the first.
    public struct Round: Sendable {
        /// Real evaluations after this batch.
        public var evaluations: Int
        /// Per objective: the rank correlation of the batch's predicted and real values.
        public var rankCorrelations: [Double]
        /// Per objective: the predictor that chose the batch ("ridge, λ 1").
        public var predictors: [String]
    }

    public struct Progress: Sendable {
        public var evaluated: [Individual]
        public var front: [Individual]
        public var rounds: [Round]
        public var evaluations: Int
    }

    public struct Result: Sendable {
        public var front: [Individual]
        /// Every real evaluation, in order.
        public var evaluated: [Individual]
        public var rounds: [Round]
        public var interrupted: Bool
    }

    /// Runs the search; `isCancelled` is checked before every real evaluation and between rounds.
    public static func run(_ problem: Problem, parameters p: Parameters, seeds: [[Int]] = [],
                           isCancelled: () -> Bool = { false }, progress: ((Progress) -> Void)? = nil) throws -> Result {
        precondition(p.population >= 2 && p.evaluations >= 1, "a population of at least two and a budget of at least one")
        var rng = SearchRandom(seed: p.seed)
        let genes = problem.lower.count
        var evaluated = [Individual]()
        var seen = Set<[Int]>()
        var rounds = [Round]()
        var interrupted = false
        let space = zip(problem.lower, problem.upper).reduce(1.0) { $0 * Double($1.1 - $1.0 + 1) }

        func result() -> Result {
            Result(front: Pareto.nonDominated(evaluated.map(\.objectives)).map { evaluated[$0] }, evaluated: evaluated,
                   rounds: rounds, interrupted: interrupted)
        }
        func report() {
            progress?(Progress(evaluated: evaluated, front: Pareto.nonDominated(evaluated.map(\.objectives)).map { evaluated[$0] },
                               rounds: rounds, evaluations: evaluated.count))
        }
        /// Evaluates a batch for real; false when cancelled part-way.
        func evaluate(_ batch: [[Int]], round: Int) throws -> Bool {
            for genome in batch where evaluated.count < p.evaluations {
                if isCancelled() { interrupted = true; return false }
                evaluated.append(Individual(genome: genome, objectives: try problem.evaluate(genome), generation: round))
                seen.insert(genome)
            }
            return true
        }
        func randomUnseen(_ count: Int, excluding: Set<[Int]>) -> [[Int]] {
            var out = [[Int]](), taken = excluding
            var attempts = 0
            while out.count < count && attempts < count * 50 && Double(taken.count) < space {
                attempts += 1
                let genome = (0..<genes).map { rng.int(problem.lower[$0]...problem.upper[$0]) }
                if taken.insert(genome).inserted { out.append(genome) }
            }
            return out
        }

        // 1. The first batch: the seeds, then random genomes.
        var first = [[Int]]()
        for genome in seeds where genome.count == genes && !first.contains(genome) && first.count < p.population { first.append(genome) }
        first += randomUnseen(p.population - first.count, excluding: Set(first))
        guard try evaluate(first, round: 0) else { return result() }
        report()

        // 2. Rounds on predicted objectives.
        var round = 0
        while evaluated.count < p.evaluations && Double(seen.count) < space {
            if isCancelled() { interrupted = true; break }
            round += 1
            let predictors = (0..<problem.objectiveCount).map { k in
                ObjectivePredictor.fit(genomes: evaluated.map(\.genome), values: evaluated.map { $0.objectives[k] },
                                       lower: problem.lower, upper: problem.upper)
            }
            let predicted = PredictedProblem(lower: problem.lower, upper: problem.upper, predictors: predictors)
            let realFront = Pareto.nonDominated(evaluated.map(\.objectives)).map { evaluated[$0].genome }
            let inner = try NSGA2.run(predicted, parameters: NSGA2.Parameters(population: p.population, generations: p.innerGenerations,
                                                                              seed: p.seed &+ UInt64(round) &* 0x9E37_79B9),
                                      seeds: Array(realFront.prefix(p.population)))
            // The inner search's best, by predicted non-domination rank then crowding, minus what is known.
            var candidates = inner.evaluated.filter { !seen.contains($0.genome) }
            NSGA2.rank(&candidates)
            candidates.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.crowding > $1.crowding }
            let room = min(p.population, p.evaluations - evaluated.count)
            var batch = candidates.prefix(room).map(\.genome)
            // A converged inner search proposes little that is new: random genomes fill the batch.
            batch += randomUnseen(room - batch.count, excluding: seen.union(batch))
            guard !batch.isEmpty else { break }
            let before = evaluated.count
            let finished = try evaluate(batch, round: round)
            let done = evaluated[before...]
            rounds.append(Round(evaluations: evaluated.count,
                                rankCorrelations: (0..<problem.objectiveCount).map { k in
                                    rankCorrelation(done.map { predictors[k].predict($0.genome) }, done.map { $0.objectives[k] })
                                },
                                predictors: predictors.map(\.description)))
            report()
            if !finished { break }
        }
        return result()
    }
}

/// The objectives as the predictors see them: what LINAS's inner NSGA-II minimizes.
struct PredictedProblem: Problem {
    let lower: [Int]
    let upper: [Int]
    let predictors: [ObjectivePredictor]
    var objectiveCount: Int { predictors.count }
    func evaluate(_ genome: [Int]) throws -> [Double] { predictors.map { $0.predict(genome) } }
}
