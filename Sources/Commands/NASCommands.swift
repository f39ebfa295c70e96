import Compression
import Display
import Foundation
import Search
import Workbench

extension CommandTable {
    /// LLaMA-NAS's baselines: structured compression at the sizes a search's front spans.
    static let nasCommands: [Command] = [
        Command("baseline", summary: "A baseline as a front: layer dropping by Block Influence, uniform MLP width, or Wanda at equal parameters",
                details: "Scores a line of subnets of the elastic super-network the way a search scores its own, and keeps them "
                    + "as a front for `compare` and `pareto`: `drop_layers` drops 0, 1, 2, … layers in the order of their Block "
                    + "Influence (ShortGPT: 1 − cos of the stream entering and leaving a block, on `calibration_tokens` tokens of "
                    + "the calibration text; the first and last layers stay), at full width (needs `elastic mode=NAS`); "
                    + "`uniform_width` sets every MLP to each width choice with every layer kept (Minitron's width pruning, without "
                    + "its distillation; the channels kept follow the space's order, `order=importance` to sort them); `wanda` "
                    + "prunes the largest subnet's base by Wanda at each of `sparsities` (or one N:M `pattern`), on "
                    + "`calibration_tokens` tokens, scores it, and puts the weights back: its parameters are counted without the "
                    + "zeros (its MACs and latency are the dense path's, which the kernels run), and its points are pruned models, "
                    + "not subnets. They share the super-network's adapters, so a tuned super-network gives every baseline the "
                    + "same recovery budget.",
                arguments: [
                    .positional("kind", .choice(NASBaseline.allCases.map(\.rawValue)), help: "drop_layers, uniform_width or wanda"),
                    searchName,
                    .option("calibration_tokens", .integer(16...10_000_000), default: "1024", help: "drop_layers, wanda: calibration tokens (Block Influence, Wanda's norms)"),
                    .option("split", .text, help: "drop_layers, wanda: the calibration split (Austen default: Emma)"),
                    .option("sparsities", .text, default: "10%,20%,30%,40%,50%", help: "wanda: the unstructured sparsities, one pruned model each"),
                    .option("pattern", .text, help: "wanda: one N:M pattern (2:4, 4:8) instead of the sparsities"),
                ] + searchObjectiveOptions,
                examples: ["baseline drop_layers objectives=loss,params as drop", "baseline uniform_width objectives=loss,params as width",
                           "baseline wanda sparsities=10%,20%,30% objectives=loss,params as wanda", "baseline wanda pattern=2:4 objectives=loss,params as wanda24"]) { arguments, context in
            try runBaseline(arguments, context)
        },
    ]

    static func runBaseline(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        let session = context.session
        let baseline = NASBaseline(rawValue: arguments.text("kind")!)!
        let name = try resultName(arguments, session: session, prefix: baseline.rawValue)
        let objectives = arguments.text("objectives")!.split(separator: ",").compactMap { SearchObjective(rawValue: String($0)) }
        let probe = objectives.contains(.accuracy) ? accuracyProbe(arguments, always: true) : nil
        let display = LiveDisplay(context.output, name: "baseline")
        var labels = [String]()
        func table(_ record: SearchRecord, state: ProgressBar.State) -> MimeBundle {
            let rows = zip(labels, record.evaluated).map { label, individual in
                [label] + individual.objectives.map { String(format: "%.4g", $0) } + [record.front.contains(individual) ? "●" : ""]
            }
            let title = "\(record.method) as \(name): \(record.evaluated.count)/\(record.generations) " + (record.pointsAreSubnets ? "subnets" : "pruned models")
                + (state == .interrupted ? " (interrupted)" : "") + " · `compare \(name) …` draws it beside a search's front"
            return Table(title: title, columns: [record.pointsAreSubnets ? "subnet" : "model"] + record.objectives.map(\.label) + ["front"], rows: rows).bundle
        }
        let evalTokens = arguments.integer("eval_tokens")!
        let calibrationTokens = arguments.integer("calibration_tokens")!
        let show: (SearchRecord) -> Void = { record in display.show(force: true) { table(record, state: .running) } }
        do {
            let record: SearchRecord
            if baseline == .wanda {
                let patterns = try wandaPatterns(arguments)
                labels = ["dense (largest subnet)"] + patterns.map { "Wanda \($0)" }
                let length = min(128, try session.requireModel().config.contextLength)
                let calibration = CalibrationRequest(split: arguments.text("split"), windows: max(1, calibrationTokens / length), length: length)
                record = try session.runWandaBaseline(patterns: patterns, calibration: calibration, objectives: objectives, evalTokens: evalTokens,
                                                      tasks: probe, name: name, progress: show)
            } else {
                let subnets = try session.baselineSubnets(baseline, calibrationSplit: arguments.text("split"), calibrationTokens: calibrationTokens)
                labels = subnets.map(\.label)
                record = try session.runBaseline(baseline, subnets: subnets, objectives: objectives, evalTokens: evalTokens,
                                                 tasks: probe, name: name, progress: show)
            }
            if record.interrupted { throw CancellationError() }
            display.show(force: true) { table(record, state: .finished) }
            return nil
        } catch let error as CancellationError {
            if let record = session.fronts[name] { display.show(force: true) { table(record, state: .interrupted) } }
            throw error
        }
    }

    /// `pattern=N:M`, else `sparsities=` as unstructured patterns.
    static func wandaPatterns(_ arguments: Arguments) throws -> [Sparsity.Pattern] {
        if let text = arguments.text("pattern") {
            guard let pattern = Sparsity.Pattern.nOfM(parsing: text) else {
                throw CommandError(.badValue, "`pattern` is N:M with N < M ≤ 64, such as 2:4 or 4:8, not `\(text)`", word: text)
            }
            return [pattern]
        }
        let sparsities = try parseList(arguments.text("sparsities")!, name: "sparsities") { fraction($0) }
        guard let bad = sparsities.first(where: { !($0 > 0 && $0 < 1) }) else { return sparsities.map { .unstructured($0) } }
        throw CommandError(.badValue, "a sparsity is a fraction in (0, 100%), not \(bad)", word: String(bad))
    }
}
