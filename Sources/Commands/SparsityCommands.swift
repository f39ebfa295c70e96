import Compression
import Display
import Foundation
import Transformer
import Workbench

extension CommandTable {
    static let sparsityCommands: [Command] = [
        Command("sparsify", summary: "Prune the base weights: Wanda or magnitude, unstructured or N:M, with a live sparsity heat map",
                details: "Wanda (Sun et al.), as its code runs: block by block, the block's dense forward on the calibration "
                    + "activations gives each linear's input-column norms ‖X_j‖; every weight is scored |W_ij|·‖X_j‖ and the lowest "
                    + "⌊in·s⌋ of every output row are zeroed (with `pattern=N:M`, the N lowest of every M consecutive inputs of a "
                    + "row); the block is then run again with its pruned weights to give the next block its inputs. Calibration "
                    + "tokens: `calibration_split` tokenized as a whole, without BOS, its first `calibration_windows × "
                    + "calibration_len` tokens as consecutive windows. `magnitude` scores |W_ij| with one threshold per whole matrix "
                    + "(N:M within rows). Embeddings and the output head are never pruned. Adapters stay as they are and are left "
                    + "out of the calibration forward. The dense weights are kept before the first pruning: `sparsify restore` "
                    + "brings them back. Interrupt leaves the model pruned through a whole block, which the output names.",
                arguments: [
                    .positional("method", .choice(PruningMethod.allCases.map(\.rawValue)), help: "wanda or magnitude"),
                    .option("sparsity", .number(0...0.99), default: "50%", help: "fraction of weights zeroed (50% or 0.5)"),
                    .option("pattern", .text, help: "N:M structure instead, such as 2:4 or 4:8"),
                    .option("targets", .choiceList(Projection.allCases.map(\.rawValue)), default: "all", help: "projections to prune"),
                    .option("layers", .text, help: "layers to prune, such as 0-9 or 3,5,7 (default: all)"),
                ] + calibrationOptions("Wanda's"),
                examples: ["sparsify wanda sparsity=50%", "sparsify wanda pattern=2:4", "sparsify magnitude sparsity=50% targets=gate,up,down",
                           "sparsify wanda sparsity=40% layers=0-14 calibration_windows=8 calibration_len=256"]) { arguments, context in
            try runSparsify(arguments, context)
        },

        Command("sparsify restore", summary: "Put back the weights kept before the first `sparsify` or `quantize`, without reloading") { _, context in
            try context.session.restoreDense()
            let model = try context.session.requireModel()
            let totals = Sparsity.totals(model)
            return MimeBundle(plain: String(format: "restored the dense weights: %.2f %% zeros in the projections", 100 * Double(totals.zeros) / Double(totals.entries)))
        },

        Command("sparsity", summary: "Measured zeros of every projection of every layer, as a heat map and a table",
                details: "Counts the zeros in the weights as they are now (pruning, merges and all): layers × modules, "
                    + "in percent.") { _, context in
            let model = try context.session.requireModel()
            let map = sparsityMap(model, title: "Zeros per module")
            context.output.display(map.bundle(), id: nil)
            return map.tableBundle
        },
    ]

    /// Layers × modules, coloured by the percentage of zero weights.
    static func sparsityMap(_ model: LlamaModel, title: String, pruned: Set<Int>? = nil) -> HeatMap {
        let measured = Sparsity.measured(model)
        let totals = Sparsity.totals(model)
        var map = HeatMap(title: title + String(format: ": %.2f %% of ", 100 * Double(totals.zeros) / Double(totals.entries))
                            + formatCount(Double(totals.entries)) + " weights are zero",
                          rowTitle: "layer", columnTitle: "module", valueTitle: "zeros %",
                          rows: (0..<model.config.layers).map(String.init), columns: Projection.allCases.map(\.rawValue),
                          values: measured.enumerated().map { l, row in row.map { pruned == nil || pruned!.contains(l) ? ($0 * 1000).rounded() / 10 : nil } })
        map.subtitle = nil
        return map
    }

    static func runSparsify(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        let session = context.session
        let model = try session.requireModel()
        guard let method = arguments.text("method").flatMap(PruningMethod.init(rawValue:)) else {
            throw CommandError(.missingArgument, "`sparsify` needs a method: `sparsify wanda` or `sparsify magnitude`")
        }
        var p = PruningParameters()
        if let text = arguments.text("pattern") {
            guard let pattern = Sparsity.Pattern.nOfM(parsing: text) else {
                throw CommandError(.badValue, "`pattern` is N:M with N < M ≤ 64, such as 2:4 or 4:8, not `\(text)`", word: "pattern")
            }
            p.pattern = pattern
        } else {
            p.pattern = .unstructured(arguments.number("sparsity")!)
        }
        p.targets = (arguments.list("targets") ?? []).compactMap(Projection.init(rawValue:))
        if let text = arguments.text("layers") { p.layers = try parseLayers(text, count: model.config.layers) }
        let chosen = (0..<model.config.layers).filter { p.layers?.contains($0) ?? true }

        let display = LiveDisplay(context.output, name: "sparsify")
        var pruned = Set<Int>()
        func show(_ status: String, force: Bool = false) {
            display.show(force: force) {
                var map = sparsityMap(model, title: "\(method.rawValue) \(p.pattern)", pruned: pruned)
                map.subtitle = status + " · " + display.countdown(done: pruned.count, of: chosen.count, unit: "blocks")
                return map.bundle()
            }
        }
        show(method == .wanda ? "calibrating" : "pruning", force: true)
        let result: SparsifyResult
        do {
            let c = arguments.calibration
            result = try session.sparsify(method, parameters: p, calibrationSplit: c.split, windows: c.windows, length: c.length) { l in
                pruned.insert(l)
                show("pruned block \(l)")
            }
        } catch {
            show("failed: \(error)", force: true)
            throw error
        }
        let last = result.layersPruned.last.map { "through block \($0)" } ?? "no block"
        show(result.interrupted ? "interrupted: the model is pruned \(last), the rest is as it was" : String(format: "done in %.1f s", result.seconds), force: true)
        let rows: [[String]] = [
            ["method", method.rawValue + (method == .wanda ? " (calibration: \(result.calibrationTokens) tokens)" : "")],
            ["pattern", "\(p.pattern) of " + p.targets.map(\.rawValue).joined(separator: ",")],
            ["blocks pruned", "\(result.layersPruned.count) of \(chosen.count)" + (result.interrupted ? " (interrupted \(last))" : "")],
            ["zeros", String(format: "%.2f %%", 100 * Double(result.zeros) / Double(result.entries)) + " (\(formatCount(Double(result.zeros))) of \(formatCount(Double(result.entries))))"],
            ["non-zeros", formatCount(Double(result.entries - result.zeros))],
            ["time", String(format: "%.1f s", result.seconds)],
        ]
        let table = Table(title: "Sparsified" + (result.interrupted ? " (interrupted)" : ""), columns: ["", "value"], rows: rows).bundle
        if result.interrupted {
            // What was pruned is kept and shown; the rest of the cell does not run.
            context.output.display(table, id: nil)
            throw CancellationError()
        }
        return table
    }
}
