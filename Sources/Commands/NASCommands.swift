import Display
import Foundation
import Search
import Workbench

extension CommandTable {
    /// LLaMA-NAS's baselines: structured compression at the sizes a search's front spans.
    static let nasCommands: [Command] = [
        Command("baseline", summary: "A structured baseline as a front: layer dropping by Block Influence, or uniform MLP width",
                details: "Scores a line of subnets of the elastic super-network the way a search scores its own, and keeps them "
                    + "as a front for `compare` and `pareto`: `drop_layers` drops 0, 1, 2, … layers in the order of their Block "
                    + "Influence (ShortGPT: 1 − cos of the stream entering and leaving a block, on `calibration_tokens` tokens of "
                    + "the calibration text; the first and last layers stay), at full width (needs `elastic mode=NAS`); "
                    + "`uniform_width` sets every MLP to each width choice with every layer kept (Minitron's width pruning, without "
                    + "its distillation; the channels kept follow the space's order, `order=importance` to sort them). They share "
                    + "the super-network's adapters, so a tuned super-network gives every baseline the same recovery budget.",
                arguments: [
                    .positional("kind", .choice(NASBaseline.allCases.map(\.rawValue)), help: "drop_layers or uniform_width"),
                    searchName,
                    .option("calibration_tokens", .integer(16...10_000_000), default: "1024", help: "drop_layers: tokens for Block Influence"),
                    .option("split", .text, help: "drop_layers: the calibration split (Austen default: Emma)"),
                ] + searchObjectiveOptions,
                examples: ["baseline drop_layers objectives=loss,params as drop", "baseline uniform_width objectives=loss,params as width"]) { arguments, context in
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
            let title = "\(record.method) as \(name): \(record.evaluated.count)/\(record.generations) subnets"
                + (state == .interrupted ? " (interrupted)" : "") + " · `compare \(name) …` draws it beside a search's front"
            return Table(title: title, columns: ["subnet"] + record.objectives.map(\.label) + ["front"], rows: rows).bundle
        }
        let subnets = try session.baselineSubnets(baseline, calibrationSplit: arguments.text("split"),
                                                  calibrationTokens: arguments.integer("calibration_tokens")!)
        labels = subnets.map(\.label)
        do {
            let record = try session.runBaseline(baseline, subnets: subnets, objectives: objectives, evalTokens: arguments.integer("eval_tokens")!,
                                                 tasks: probe, name: name) { record in
                display.show(force: true) { table(record, state: .running) }
            }
            if record.interrupted { throw CancellationError() }
            display.show(force: true) { table(record, state: .finished) }
            return nil
        } catch let error as CancellationError {
            if let record = session.fronts[name] { display.show(force: true) { table(record, state: .interrupted) } }
            throw error
        }
    }
}
