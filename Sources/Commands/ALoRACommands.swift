import Compression
import Display
import Foundation
import Transformer
import Workbench

extension CommandTable {
    static let aloraCommands: [Command] = [
        Command("alora", summary: "ALoRA: score every LoRA rank (AB-LoRA), prune the weakest and give their budget to the modules that matter, live",
                details: "Attaches adapters with `budget` ranks per module behind 0/1 gates (the same total as LoRA rank `budget`), "
                    + "trains `warmup_steps`, then each round scores every open rank r on one fixed validation batch, "
                    + "CS(r) = CE(M without r) − CE(base + only r), closes the `prune` lowest and opens as many fresh ranks "
                    + "(initialised as LoRA's) in the modules that lost none, the highest mean importance first, then trains "
                    + "`round_steps`. Scoring reuses the residual stream entering each layer, so a rank's two evaluations run only "
                    + "the layers from its module's on, and runs the ranks of one module together: one copy of the batch per rank "
                    + "in one batched pass (`score_batch` ranks per pass at most). One display shows the rank heat map (layers × modules), the importance "
                    + "distribution and progress, updated in place. Training reads `data examples` (or the text), as `train` "
                    + "does. Interrupt keeps the allocation reached and what was trained.",
                arguments: [
                    .option("budget", .integer(1...256), default: "8", help: "mean rank per module (LoRA rank of the same total)"),
                    .option("rounds", .integer(0...64), default: "4", help: "scoring and reallocation rounds"),
                    .option("prune", .integer(1...100_000), help: "ranks moved per round (default: one per target module of a layer)"),
                    .option("warmup_steps", .integer(0...1_000_000), default: "100", help: "training steps before the first round"),
                    .option("round_steps", .integer(0...1_000_000), default: "25", help: "training steps after each round"),
                    .option("val_batch", .integer(1...256), default: "4", help: "sequences in the fixed scoring batch"),
                    .option("val_seq", .integer(2...8192), default: "64", help: "tokens per scoring sequence"),
                    .option("score_batch", .integer(1...1024), help: "ranks scored per batched pass (default: as many as fit 4096 rows)"),
                    .option("targets", .choiceList(Projection.allCases.map(\.rawValue)), default: "all", help: "projections to adapt"),
                    .option("alpha", .number(0...100_000), help: "LoRA alpha (default 2 × budget; the scale alpha / budget stays fixed)"),
                    .option("capacity", .integer(1...1024), help: "largest rank one module may reach (default 2 × budget)"),
                    .option("lr", .number(0...10), default: "3e-4", help: "peak learning rate"),
                    .option("batch", .integer(1...1024), default: "4", help: "training sequences per micro-batch"),
                    .option("seq", .integer(2...8192), default: "128", help: "training tokens per sequence"),
                    .option("split", .text, help: "training split (default: the examples, else the Austen train split)"),
                    .option("val_split", .text, help: "validation split"),
                ],
                examples: ["alora budget=8 rounds=4 warmup_steps=100 round_steps=25",
                           "alora budget=4 rounds=2 prune=3 targets=q,v,down val_batch=2 val_seq=32"]) { arguments, context in
            try runALoRA(arguments, context)
        },

        Command("ranks", summary: "The current rank allocation as a heat map (layers × modules) and a table",
                details: "For LoRA every module has its rank; for elastic adapters, the active subnet's ranks; for ALoRA, the open "
                    + "gates of each module.") { _, context in
            guard let allocation = context.session.rankAllocation(), let model = context.session.model else {
                throw CommandError(.failed, "there are no adapters: use `lora`, `elastic` or `alora` first")
            }
            let map = rankMap(allocation, layers: model.config.layers, title: "Ranks per module: \(allocation.values.reduce(0, +)) in all")
            context.output.display(map.bundle(), id: nil)
            return map.tableBundle
        },
    ]

    static func rankMap(_ allocation: [ALoRA.Module: Int], layers: Int, title: String) -> HeatMap {
        let projections = Projection.allCases.filter { p in allocation.keys.contains { $0.projection == p } }
        let values = (0..<layers).map { l in projections.map { p in allocation[ALoRA.Module(layer: l, projection: p)].map(Double.init) } }
        return HeatMap(title: title, rowTitle: "layer", columnTitle: "module", valueTitle: "rank",
                       rows: (0..<layers).map(String.init), columns: projections.map(\.rawValue), values: values)
    }

    static func runALoRA(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        let session = context.session
        let model = try session.requireModel()
        var p = ALoRA.Parameters()
        p.budget = arguments.integer("budget")!
        p.capacity = arguments.integer("capacity") ?? 2 * p.budget
        p.alpha = arguments.number("alpha").map(Float.init) ?? Float(2 * p.budget)
        p.targets = (arguments.list("targets") ?? []).compactMap(Projection.init(rawValue:))
        guard p.capacity >= p.budget else { throw CommandError(.badValue, "`capacity` (\(p.capacity)) must be at least `budget` (\(p.budget))", word: "capacity") }
        func training(_ steps: Int) -> Training.Parameters {
            var t = Training.Parameters(steps: max(1, steps))
            t.learningRate = Float(arguments.number("lr")!)
            t.batch = arguments.integer("batch")!
            t.seq = arguments.integer("seq")!
            return t
        }
        let rounds = arguments.integer("rounds")!
        let display = LiveDisplay(context.output, name: "alora")
        var latest: ALoRARound?
        var status = "attaching adapters"
        let total = p.budget * p.targets.count * model.config.layers

        func show(force: Bool = false) {
            display.show(force: force) {
                let allocation = session.rankAllocation() ?? [:]
                var map = rankMap(allocation, layers: model.config.layers,
                                  title: "ALoRA ranks, round \(latest?.round ?? 0)/\(rounds): \(allocation.values.reduce(0, +)) of \(total) in use")
                map.subtitle = status
                if let importance = latest?.importance {
                    map.distribution = ("rank importance CS(r) of round \(latest!.round)", "ranks", importance.scores.values.flatMap { $0.map(\.score) })
                }
                return map.bundle(plain: map.plainText + (latest.map { "\n" + moveSummary($0) } ?? ""))
            }
        }

        var run: ALoRARun?
        do {
            var round = 0
            run = try session.alora(p, rounds: rounds, prune: arguments.integer("prune"),
                                    warmup: training(arguments.integer("warmup_steps")!), roundTraining: training(arguments.integer("round_steps")!),
                                    validationBatch: arguments.integer("val_batch")!, validationSeq: arguments.integer("val_seq")!,
                                    ranksPerPass: arguments.integer("score_batch"),
                                    split: arguments.text("split"), validationSplit: arguments.text("val_split"),
                                    onTraining: { event in
                                        status = (round == 0 ? "warm-up" : "round \(round)") + ": training step \(event.step)"
                                            + (event.trainLoss.isFinite ? String(format: " · loss %.3f", event.trainLoss) : "")
                                        show()
                                    },
                                    onScoring: { done, all in
                                        status = "round \(round + 1): scoring ranks \(done)/\(all)"
                                        show()
                                    },
                                    onRound: { entry in
                                        latest = entry
                                        round = entry.round
                                        status = entry.round == 0 ? "warm-up done" : "round \(entry.round) done: \(moveSummary(entry))"
                                        show(force: true)
                                    })
        } catch let error as CancellationError {
            status = "interrupted: the allocation reached is kept"
            show(force: true)
            throw error
        }
        guard let run else { return nil }
        status = run.interrupted ? "interrupted after round \(run.rounds.last?.round ?? 0): the allocation reached is kept" : "done in \(String(format: "%.0f", run.seconds)) s"
        show(force: true)
        let table = roundsTable(run, layers: model.config.layers)
        if run.interrupted {
            context.output.display(table, id: nil)
            throw CancellationError()
        }
        context.output.display(table, id: nil)
        let final = rankMap(session.rankAllocation() ?? [:], layers: model.config.layers, title: "Final ALoRA allocation (ranks per module)")
        return final.tableBundle
    }

    static func moveSummary(_ entry: ALoRARound) -> String {
        guard let moved = entry.reallocation else { return "uniform allocation" }
        let from = Dictionary(grouping: moved.pruned, by: \.module).map { "\($0.key.name) −\($0.value.count)" }.sorted()
        let to = moved.grown.sorted { $0.key < $1.key }.map { "\($0.key.name) +\($0.value)" }
        return "moved \(moved.pruned.count): " + from.joined(separator: ", ") + " → " + to.joined(separator: ", ")
    }

    static func roundsTable(_ run: ALoRARun, layers: Int) -> MimeBundle {
        let rows = run.rounds.map { entry -> [String] in
            let cost = entry.importance.map {
                String(format: "%d ranks in %d batched passes, %.1f s; as two whole passes per rank ≈ %.1f s (%d × %.3f s): %.2f× saved; %d of %d layers run",
                       $0.ranksScored, $0.passes, $0.seconds, $0.secondsWithoutCache, 2 * $0.ranksScored, $0.wholePassSeconds,
                       $0.secondsWithoutCache / max(1e-9, $0.seconds), $0.layersRun, $0.layersWithoutCache)
            } ?? "—"
            return [entry.round == 0 ? "warm-up" : String(entry.round), entry.validationLoss.map { String(format: "%.4f", $0) } ?? "—",
                    moveSummary(entry), cost]
        }
        return Table(title: "ALoRA rounds" + (run.interrupted ? " (interrupted)" : ""),
                     columns: ["round", "validation loss", "ranks moved", "scoring cost (measured)"], rows: rows).bundle
    }
}
