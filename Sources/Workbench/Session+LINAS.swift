import Compression
import Foundation
import Search

extension Session {
    /// LINAS over the elastic space: `evaluations` real evaluations in batches of `population`,
    /// each batch chosen by an inner NSGA-II (`innerGenerations`) on predictors fitted to every
    /// evaluation so far. Progress after each batch; an interrupt keeps what was evaluated under
    /// the name. The largest and the heuristic subnet seed the first batch; the active subnet is
    /// restored at the end.
    public func searchLINAS(population: Int, evaluations: Int, innerGenerations: Int, objectives wanted: [SearchObjective],
                            evalTokens: Int, tasks: AccuracyProbe? = nil, name: String,
                            progress: @escaping (SearchRecord) -> Void) throws -> SearchRecord {
        try withActiveSubnetRestored { space in
            let batches = max(0, (evaluations - population + population - 1) / population)
            var record = try newSearchRecord(name: name, space: space, objectives: wanted, evalTokens: evalTokens, tasks: tasks, generations: batches)
            record.method = "LINAS"
            let problem = SubnetSearchProblem(session: self, space: space, wanted: wanted, evalTokens: evalTokens, tasks: tasks)
            let result = try LINAS.run(problem, parameters: LINAS.Parameters(population: population, evaluations: evaluations,
                                                                             innerGenerations: innerGenerations, seed: seed),
                                       seeds: [space.maximal, space.heuristic], isCancelled: { self.cancellation.isCancelled }) { step in
                record.evaluated = step.evaluated
                record.front = space.distinct(step.front)
                record.rounds = step.rounds
                record.generationsDone = step.rounds.count
                self.fronts[name] = record
                progress(record)
            }
            record.evaluated = result.evaluated
            record.front = space.distinct(result.front)
            record.rounds = result.rounds
            record.generationsDone = result.rounds.count
            record.interrupted = result.interrupted
            fronts[name] = record
            lastFront = name
            return record
        }
    }
}
