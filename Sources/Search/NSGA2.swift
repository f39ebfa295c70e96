import Foundation

/// NSGA-II (Deb et al. 2002) over integer genomes, as NNCF's BootstrapNAS runs it through
/// pymoo: random integer initial population, binary tournament on (rank, crowding), simulated
/// binary crossover and polynomial mutation on the genes as reals, rounded back to integers,
/// duplicates eliminated, survivors chosen by rank then crowding. Every genome is evaluated
/// once (a cache). Seeded: the same seed gives the same search.
public enum NSGA2 {
    public struct Parameters: Sendable {
        public var population = 40
        public var generations = 10
        public var crossoverProbability = 0.9
        public var crossoverEta = 10.0
        /// Per gene (NNCF: 0.02; pymoo's default: 1 / genes).
        public var mutationProbability: Double? = nil
        public var mutationEta = 3.0
        public var seed: UInt64 = 0

        public init(population: Int = 40, generations: Int = 10, seed: UInt64 = 0) {
            self.population = population
            self.generations = generations
            self.seed = seed
        }
    }

    /// After each generation: the current population's first front and every genome evaluated so far.
    public struct Progress: Sendable {
        public var generation: Int
        public var generations: Int
        public var front: [Individual]
        public var evaluated: [Individual]
    }

    public struct Result: Sendable {
        /// The non-dominated genomes among everything evaluated, by the first objective.
        public var front: [Individual]
        public var evaluated: [Individual]
        public var generationsDone: Int
        public var interrupted: Bool
    }

    /// Runs the search. `isCancelled` is checked before every evaluation; a cancelled search
    /// returns what it evaluated, with its front.
    public static func run(_ problem: Problem, parameters p: Parameters, seeds: [[Int]] = [],
                           isCancelled: () -> Bool = { false }, progress: ((Progress) -> Void)? = nil) throws -> Result {
        precondition(p.population >= 2, "a population needs at least two genomes")
        var rng = SearchRandom(seed: p.seed)
        let genes = problem.lower.count
        var cache = [[Int]: Individual]()
        var evaluatedOrder = [[Int]]()
        var generation = 0
        var interrupted = false

        func evaluate(_ genome: [Int]) throws -> Individual? {
            if let hit = cache[genome] { return hit }
            if isCancelled() { interrupted = true; return nil }
            let individual = Individual(genome: genome, objectives: try problem.evaluate(genome), generation: generation)
            cache[genome] = individual
            evaluatedOrder.append(genome)
            return individual
        }

        func result(_ done: Int) -> Result {
            let all = evaluatedOrder.map { cache[$0]! }
            let front = Pareto.nonDominated(all.map(\.objectives)).map { all[$0] }
            return Result(front: front, evaluated: all, generationsDone: done, interrupted: interrupted)
        }

        // Initial population: the given seeds (e.g. the largest subnet), then random genomes.
        var population = [Individual]()
        var seen = Set<[Int]>()
        var candidates = seeds.filter { $0.count == genes }
        let space = zip(problem.lower, problem.upper).reduce(1.0) { $0 * Double($1.1 - $1.0 + 1) }
        var attempts = 0
        while candidates.count < p.population && attempts < p.population * 50 && Double(seen.count + candidates.count) < space {
            candidates.append((0..<genes).map { rng.int(problem.lower[$0]...problem.upper[$0]) })
            attempts += 1
        }
        for genome in candidates where seen.insert(genome).inserted && population.count < p.population {
            guard let individual = try evaluate(genome) else { return result(0) }
            population.append(individual)
        }
        rank(&population)
        progress?(Progress(generation: 0, generations: p.generations, front: population.filter { $0.rank == 0 },
                           evaluated: evaluatedOrder.map { cache[$0]! }))

        let mutationProbability = p.mutationProbability ?? 1 / Double(max(1, genes))
        for g in 1...max(1, p.generations) where p.generations > 0 {
            generation = g
            var offspring = [Individual]()
            var offspringGenomes = Set(population.map(\.genome))
            var tries = 0
            while offspring.count < p.population && tries < p.population * 20 {
                tries += 1
                let a = tournament(population, &rng), b = tournament(population, &rng)
                var (c1, c2) = crossover(a.genome, b.genome, problem, p, &rng)
                c1 = mutate(c1, problem, p, mutationProbability, &rng)
                c2 = mutate(c2, problem, p, mutationProbability, &rng)
                for child in [c1, c2] where offspring.count < p.population && offspringGenomes.insert(child).inserted {
                    guard let individual = try evaluate(child) else { return result(g - 1) }
                    offspring.append(individual)
                }
            }
            var merged = population + offspring
            rank(&merged)
            population = survivors(merged, count: p.population)
            progress?(Progress(generation: g, generations: p.generations, front: population.filter { $0.rank == 0 },
                               evaluated: evaluatedOrder.map { cache[$0]! }))
        }
        return result(p.generations)
    }

    /// Sets rank and crowding for every member.
    static func rank(_ population: inout [Individual]) {
        for (r, front) in Pareto.fronts(population.map(\.objectives)).enumerated() {
            let distances = Pareto.crowding(front.map { population[$0].objectives })
            for (k, i) in front.enumerated() {
                population[i].rank = r
                population[i].crowding = distances[k]
            }
        }
    }

    /// Whole fronts while they fit, then the most spread-out members of the next.
    static func survivors(_ ranked: [Individual], count: Int) -> [Individual] {
        let ordered = ranked.sorted { $0.rank != $1.rank ? $0.rank < $1.rank : $0.crowding > $1.crowding }
        return Array(ordered.prefix(count))
    }

    static func tournament(_ population: [Individual], _ rng: inout SearchRandom) -> Individual {
        let a = population[rng.int(0...(population.count - 1))], b = population[rng.int(0...(population.count - 1))]
        if a.rank != b.rank { return a.rank < b.rank ? a : b }
        return a.crowding >= b.crowding ? a : b
    }

    /// Simulated binary crossover per gene (probability ½ each, when the pair crosses), bounded,
    /// then rounded to integers.
    static func crossover(_ a: [Int], _ b: [Int], _ problem: Problem, _ p: Parameters, _ rng: inout SearchRandom) -> ([Int], [Int]) {
        var c1 = a.map(Double.init), c2 = b.map(Double.init)
        if rng.uniform() < p.crossoverProbability {
            for i in 0..<a.count where rng.uniform() < 0.5 {
                let (x1, x2) = (min(c1[i], c2[i]), max(c1[i], c2[i]))
                guard x2 - x1 > 1e-12 else { continue }
                let lo = Double(problem.lower[i]) - 0.499, hi = Double(problem.upper[i]) + 0.499
                let u = rng.uniform()
                func child(_ beta: Double) -> Double {
                    let alpha = 2 - pow(beta, -(p.crossoverEta + 1))
                    let betaQ = u <= 1 / alpha ? pow(u * alpha, 1 / (p.crossoverEta + 1)) : pow(1 / (2 - u * alpha), 1 / (p.crossoverEta + 1))
                    return betaQ
                }
                let bq1 = child(1 + 2 * (x1 - lo) / (x2 - x1))
                let bq2 = child(1 + 2 * (hi - x2) / (x2 - x1))
                var y1 = 0.5 * ((x1 + x2) - bq1 * (x2 - x1))
                var y2 = 0.5 * ((x1 + x2) + bq2 * (x2 - x1))
                y1 = min(max(y1, lo), hi); y2 = min(max(y2, lo), hi)
                if rng.uniform() < 0.5 { swap(&y1, &y2) }
                c1[i] = y1; c2[i] = y2
            }
        }
        return (round(c1, problem), round(c2, problem))
    }

    /// Polynomial mutation per gene with the given probability, then rounding.
    static func mutate(_ genome: [Int], _ problem: Problem, _ p: Parameters, _ probability: Double, _ rng: inout SearchRandom) -> [Int] {
        var x = genome.map(Double.init)
        for i in 0..<x.count where rng.uniform() < probability {
            let lo = Double(problem.lower[i]) - 0.499, hi = Double(problem.upper[i]) + 0.499
            let span = hi - lo
            let d1 = (x[i] - lo) / span, d2 = (hi - x[i]) / span
            let u = rng.uniform()
            let power = 1 / (p.mutationEta + 1)
            let delta: Double
            if u < 0.5 {
                delta = pow(2 * u + (1 - 2 * u) * pow(1 - d1, p.mutationEta + 1), power) - 1
            } else {
                delta = 1 - pow(2 * (1 - u) + 2 * (u - 0.5) * pow(1 - d2, p.mutationEta + 1), power)
            }
            x[i] = min(max(x[i] + delta * span, lo), hi)
        }
        return round(x, problem)
    }

    static func round(_ x: [Double], _ problem: Problem) -> [Int] {
        x.enumerated().map { i, v in min(problem.upper[i], max(problem.lower[i], Int(v.rounded()))) }
    }
}
