import Compression
import Display
import Foundation
import Transformer
import Workbench

extension CommandTable {
    static let sensitivityCommands: [Command] = [
        Command("sensitivity", summary: "The loss change of compressing one module of one layer alone, for every layer × module, as a heat map",
                details: "Give one of `sparsity=` (Wanda by the unchanged model's activations, or `method=magnitude`; or `pattern=N:M`), "
                    + "`bits=` (round to nearest on `group`-wise grids, as `quantize`) or `width=` (one layer's MLP narrowed to its "
                    + "first channels: one column). Each cell compresses that module alone, measures the mean next-token loss on "
                    + "`tokens` tokens of the evaluation text (windows of `window`), and puts the module back; the residual stream "
                    + "entering each layer is computed once, so a cell runs only the layers from its own. The heat map fills in "
                    + "live. The model is never changed; interrupt keeps the cells measured.",
                arguments: [
                    .option("sparsity", .number(0...0.99), help: "fraction pruned, such as 50%"),
                    .option("pattern", .text, help: "N:M pruning instead, such as 2:4"),
                    .option("method", .choice(PruningMethod.allCases.map(\.rawValue)), default: "wanda", help: "pruning method"),
                    .option("bits", .integer(4...8), help: "quantize to 4 or 8 bits instead"),
                    .option("group", .integer(1...65536), default: "32", help: "quantization group size"),
                    .option("symmetric", .flag, default: "no", help: "symmetric quantization grid"),
                    .option("width", .number(0.01...1), help: "keep this fraction of one layer's MLP instead, such as 75%"),
                    .option("targets", .choiceList(Projection.allCases.map(\.rawValue)), default: "all", help: "modules (columns)"),
                    .option("tokens", .integer(2...1_000_000), default: "2048", help: "evaluation tokens"),
                    .option("window", .integer(2...8192), default: "512", help: "tokens per evaluation window"),
                    .option("split", .text, help: "evaluation text (default: the one `eval ppl` reads)"),
                ] + calibrationOptions("Wanda's"),
                examples: ["sensitivity sparsity=50%", "sensitivity bits=4 group=32", "sensitivity width=75%",
                           "sensitivity sparsity=50% method=magnitude tokens=1024"]) { arguments, context in
            try runSensitivity(arguments, context)
        },
    ]

    static func runSensitivity(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        let session = context.session
        let model = try session.requireModel()
        let given = ["sparsity", "pattern", "bits", "width"].filter { arguments.text($0) != nil || arguments.number($0) != nil }
        let pruning = given.contains("sparsity") || given.contains("pattern")
        guard [pruning, given.contains("bits"), given.contains("width")].filter({ $0 }).count == 1 else {
            throw CommandError(.missingArgument, "`sensitivity` needs exactly one of sparsity= (or pattern=), bits= or width=, e.g. `sensitivity sparsity=50%`")
        }
        let treatment: Sensitivity.Treatment
        if pruning {
            var pattern = Sparsity.Pattern.unstructured(arguments.number("sparsity") ?? 0.5)
            if let text = arguments.text("pattern") {
                guard let parsed = Sparsity.Pattern.nOfM(parsing: text) else {
                    throw CommandError(.badValue, "`pattern` is N:M with N < M ≤ 64, such as 2:4, not `\(text)`", word: "pattern")
                }
                pattern = parsed
            }
            treatment = .prune(pattern, wanda: arguments.text("method") == "wanda")
        } else if let bits = arguments.integer("bits") {
            guard bits == 4 || bits == 8 else { throw CommandError(.badValue, "`bits` is 4 or 8, not \(bits)", word: "bits") }
            treatment = .quantize(.init(bits: bits, group: arguments.integer("group")!, symmetric: arguments.flag("symmetric") ?? false))
        } else {
            treatment = .width(arguments.number("width")!)
        }
        let targets = (arguments.list("targets") ?? []).compactMap(Projection.init(rawValue:))
        let columns: [String]
        if case .width = treatment { columns = ["mlp"] } else { columns = targets.map(\.rawValue) }
        let display = LiveDisplay(context.output, name: "sensitivity")
        var deltas = [[Double?]](repeating: [Double?](repeating: nil, count: columns.count), count: model.config.layers)
        var measured = 0
        let total = model.config.layers * columns.count
        func map(_ status: String?) -> HeatMap {
            var m = HeatMap(title: "Sensitivity to \(treatment): loss change when only that module is compressed",
                            rowTitle: "layer", columnTitle: "module", valueTitle: "Δ loss",
                            rows: (0..<model.config.layers).map(String.init), columns: columns, values: deltas)
            m.subtitle = status
            return m
        }
        func show(_ status: String, force: Bool = false) {
            display.show(force: force) { map(status + " · " + display.countdown(done: measured, of: total, unit: "cells")).bundle() }
        }
        show(pruning && arguments.text("method") == "wanda" ? "calibrating" : "measuring", force: true)
        let result: Sensitivity.Result
        do {
            result = try session.sensitivity(treatment, targets: targets, tokens: arguments.integer("tokens")!, window: arguments.integer("window")!,
                                             split: arguments.text("split"), calibrationSplit: arguments.calibration.split,
                                             calibrationWindows: arguments.calibration.windows,
                                             calibrationLength: arguments.calibration.length) { l, k, delta in
                deltas[l][k] = delta
                measured += 1
                show("layer \(l)")
            }
        } catch let stopped as SensitivityInterrupted {
            deltas = stopped.partial.deltas
            show("interrupted: \(measured) of \(total) cells measured; the model is unchanged", force: true)
            context.output.display(map(nil).tableBundle, id: nil)
            throw CancellationError()
        } catch let error as CancellationError {
            show("interrupted while calibrating: no cell measured; the model is unchanged", force: true)
            throw error
        } catch {
            show("failed: \(error)", force: true)
            throw error
        }
        show(String(format: "base loss %.4f on %d tokens · done in %.1f s", result.baseLoss, result.tokens, result.seconds), force: true)
        var ranked = [(String, Double)]()
        for (l, row) in result.deltas.enumerated() { for (k, d) in row.enumerated() { if let d { ranked.append(("\(l).\(result.columns[k])", d)) } } }
        ranked.sort { $0.1 > $1.1 }
        let table = Table(title: String(format: "Most sensitive modules (base loss %.4f; Δ loss when compressed alone)", result.baseLoss),
                          columns: ["module", "Δ loss", "Δ perplexity"],
                          rows: ranked.prefix(10).map { [$0.0, String(format: "%+.4f", $0.1), String(format: "%+.2f %%", 100 * (exp($0.1) - 1))] }
                              + [["least: " + (ranked.last?.0 ?? "—"), ranked.last.map { String(format: "%+.4f", $0.1) } ?? "—", ""]])
        context.output.display(map(nil).tableBundle, id: nil)
        return table.bundle
    }
}
