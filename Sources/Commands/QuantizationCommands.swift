import Compression
import Display
import Foundation
import Transformer
import Workbench

extension CommandTable {
    static let quantizationCommands: [Command] = [
        Command("quantize", summary: "Quantize the base weights group-wise to INT4 or INT8 (RTN or GPTQ), with a live error heat map",
                details: "Every `group` consecutive inputs of an output row share a scale s (half precision, as GGUF stores it) and an "
                    + "integer zero point z: q = clamp(round(w/s) + z, 0, 2^bits − 1), ŵ = s·(q − z), so a pruned weight stays exactly "
                    + "zero. `symmetric=yes` fixes z at the middle with GGUF's rules (INT4: s = the largest-magnitude weight / −8, as "
                    + "Q4_0; INT8: s = max|w| / 127, as Q8_0), so groups of 32 are exactly Q4_0 or Q8_0 blocks; asymmetric grids "
                    + "span min(w, 0)…max(w, 0). A `group` that does not divide a row leaves a shorter last group (SmolLM2's 576 "
                    + "inputs in groups of 128: four of 128 and one of 64). `method=gptq` spreads each column's rounding error over "
                    + "the columns not yet quantized (damping 10 % of the mean diagonal, blocks of 128, true-sequential within a "
                    + "block, calibration as `sparsify wanda` reads it); zeros stay zero. Groups that are whole blocks of 32 "
                    + "are packed, and every product computes from their codes on the integer kernels (the card shows the memory "
                    + "and the path); a Float32 copy stays for the compression methods. `sparsify restore` brings back "
                    + "the weights from before the first pruning or quantization. Interrupt leaves whole blocks quantized.",
                arguments: [
                    .positional("type", .choice(["int4", "int8"]), help: "int4 or int8"),
                    .option("group", .integer(1...65536), default: "32", help: "inputs per scale and zero point"),
                    .option("method", .choice(ModelQuantization.Method.allCases.map(\.rawValue)), default: "rtn", help: "rtn (round to nearest) or gptq"),
                    .option("symmetric", .flag, default: "no", help: "zero point fixed at the middle (GGUF's Q4_0/Q8_0 rules)"),
                    .option("targets", .choiceList(Projection.allCases.map(\.rawValue)), default: "all", help: "projections to quantize"),
                    .option("layers", .text, help: "layers to quantize, such as 0-9 or 3,5,7 (default: all)"),
                ] + calibrationOptions("GPTQ's"),
                examples: ["quantize int4 group=32", "quantize int4 group=64 method=gptq", "quantize int4 group=32 symmetric=yes",
                           "quantize int8 group=32 symmetric=yes targets=gate,up,down"]) { arguments, context in
            try runQuantize(arguments, context)
        },
    ]

    static func runQuantize(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        let session = context.session
        let model = try session.requireModel()
        guard let type = arguments.text("type") else {
            throw CommandError(.missingArgument, "`quantize` needs a type: `quantize int4` or `quantize int8`")
        }
        var p = ModelQuantization.Parameters()
        p.grid = .init(bits: type == "int8" ? 8 : 4, group: arguments.integer("group")!, symmetric: arguments.flag("symmetric") ?? false)
        p.method = ModelQuantization.Method(rawValue: arguments.text("method")!)!
        p.targets = (arguments.list("targets") ?? []).compactMap(Projection.init(rawValue:))
        if let text = arguments.text("layers") { p.layers = try parseLayers(text, count: model.config.layers) }
        let chosen = (0..<model.config.layers).filter { p.layers?.contains($0) ?? true }

        let display = LiveDisplay(context.output, name: "quantize")
        var errors = [Int: ModelQuantization.LayerErrors]()
        func map() -> HeatMap {
            HeatMap(title: "\(p.method.rawValue.uppercased()) \(p.grid.description): relative error ‖W − Ŵ‖/‖W‖ (%)",
                    rowTitle: "layer", columnTitle: "module", valueTitle: "error %",
                    rows: (0..<model.config.layers).map(String.init), columns: p.targets.map(\.rawValue),
                    values: (0..<model.config.layers).map { l in p.targets.map { t in errors[l]?[t].map { ($0 * 10000).rounded() / 100 } } })
        }
        func show(_ status: String, force: Bool = false) {
            display.show(force: force) {
                var m = map()
                m.subtitle = status + " · " + display.countdown(done: errors.count, of: chosen.count, unit: "blocks")
                return m.bundle()
            }
        }
        show(p.method == .gptq ? "calibrating" : "quantizing", force: true)
        let result: QuantizeResult
        do {
            let c = arguments.calibration
            result = try session.quantize(p, calibrationSplit: c.split, windows: c.windows, length: c.length) { l, e in
                errors[l] = e
                show("quantized block \(l)")
            }
        } catch {
            show("failed: \(error)", force: true)
            throw error
        }
        let last = result.layersDone.last.map { "through block \($0)" } ?? "no block"
        show(result.interrupted ? "interrupted: quantized \(last), the rest is as it was" : String(format: "done in %.1f s", result.seconds), force: true)
        let all = result.errors.values.flatMap(\.values)
        // Rows whose inputs do not split into whole groups: say how they are grouped.
        let widths = Set(p.targets.map { $0.shape(model.config).inFeatures }).sorted()
        let raggedRows = widths.filter { $0 % p.grid.group != 0 }.map { w in
            w < p.grid.group ? "\(w) inputs: one group of \(w)"
                : "\(w) inputs: \(w / p.grid.group) × \(p.grid.group) and one group of \(w % p.grid.group)"
        }
        var rows: [[String]] = [
            ["method", p.method.rawValue + (p.method == .gptq ? " (calibration: \(result.calibrationTokens) tokens)" : "")],
            ["grid", p.grid.description + (raggedRows.isEmpty ? "" : " (ragged last group: " + raggedRows.joined(separator: "; ") + ")")],
            ["blocks", "\(result.layersDone.count) of \(chosen.count)" + (result.interrupted ? " (interrupted \(last))" : "")],
            ["relative error", all.isEmpty ? "—" : String(format: "mean %.2f %%, largest %.2f %%", 100 * all.reduce(0, +) / Double(all.count), 100 * (all.max() ?? 0))],
            ["packed", "\(formatBytes(result.packedBytes)) for \(formatBytes(result.float32Bytes)) of Float32 weights"],
            ["time", String(format: "%.1f s", result.seconds)],
        ]
        let totals = Sparsity.totals(model)
        if totals.zeros > 0 { rows.append(["zeros", String(format: "%.2f %% of the projections' weights", 100 * Double(totals.zeros) / Double(totals.entries))]) }
        let table = Table(title: "Quantized" + (result.interrupted ? " (interrupted)" : ""), columns: ["", "value"], rows: rows).bundle
        context.output.display(map().tableBundle, id: nil)
        if result.interrupted {
            context.output.display(table, id: nil)
            throw CancellationError()
        }
        return table
    }
}
