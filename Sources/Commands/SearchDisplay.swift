import Compression
import Display
import Foundation
import Search
import Tensors
import Workbench

extension CommandTable {
    /// `search nsga2` and `search linas`: one display (scatter of every evaluated subnet coloured
    /// by generation or batch, the front as a line, heuristic and largest marked) updated after
    /// each generation or batch, then the front as a table. LINAS adds, live, hypervolume against
    /// real evaluations and each batch's predictor rank correlations, and their table at the end.
    static func runSearch(_ arguments: Arguments, _ context: CommandContext, linas: Bool = false) throws -> MimeBundle? {
        let session = context.session
        _ = try session.requireElastic()
        let name = try resultName(arguments, session: session, prefix: "search")
        let objectives = arguments.text("objectives")!.split(separator: ",").compactMap { SearchObjective(rawValue: String($0)) }
        let population = arguments.integer("population")!
        let total = linas ? arguments.integer("evaluations")! : arguments.integer("generations")!
        if linas && total < population {
            throw CommandError(.badValue, "evaluations=\(total) is less than one batch (population=\(population))", word: "evaluations")
        }
        let display = LiveDisplay(context.output, name: "search")
        let growthDisplay = LiveDisplay(context.output, name: "search-hypervolume")

        // Every generation or batch is shown: each takes far longer than the throttle.
        func show(_ record: SearchRecord, state: ProgressBar.State) {
            display.show(force: true) {
                let done = linas ? record.evaluated.count : record.generationsDone
                var bar = ProgressBar(title: "\(record.method) \(name)", done: Double(done), total: Double(total),
                                      unit: linas ? "real evaluations" : "generations", state: state)
                bar.secondsLeft = display.secondsLeft(done: Double(done), of: Double(total))
                bar.note = "\(record.evaluated.count) subnets evaluated, \(record.front.count) on the front"
                    + (record.rounds.last.map { "; predictors' rank correlation on the last batch: " + correlations($0, record) } ?? "")
                var chart = plot(record, title: linas ? "\(name): \(record.evaluated.count)/\(total) real evaluations"
                                                      : "\(name): generation \(record.generationsDone)/\(total)")
                chart.subtitle = bar.figures
                return chart.bundle(plain: bar.plainText)
            }
            if linas, record.objectives.count == 2, !record.rounds.isEmpty {
                growthDisplay.show(force: true) {
                    let growth = hypervolumeGrowth(record)
                    return hypervolumeChart(record).bundle(plain: "hypervolume " + growth.map { "\($0.evaluations): " + String(format: "%.4g", $0.hypervolume) }
                        .joined(separator: ", ") + "; last batch's rank correlation: " + correlations(record.rounds.last!, record))
                }
            }
        }

        do {
            let probe = objectives.contains(.accuracy) ? accuracyProbe(arguments, always: true) : nil
            let record: SearchRecord
            if linas {
                record = try session.searchLINAS(population: population, evaluations: total, innerGenerations: arguments.integer("inner_generations")!,
                                                 objectives: objectives, evalTokens: arguments.integer("eval_tokens")!, tasks: probe, name: name) {
                    show($0, state: .running)
                }
            } else {
                record = try session.search(population: population, generations: total, objectives: objectives,
                                            evalTokens: arguments.integer("eval_tokens")!, tasks: probe, name: name) { _, record in
                    show(record, state: .running)
                }
            }
            show(record, state: record.interrupted ? .interrupted : .finished)
            if record.interrupted { throw CancellationError() }
            if linas { context.output.display(roundsTable(record), id: nil) }
            return frontTable(record, session: session)
        } catch let error as CancellationError {
            if let record = session.fronts[name] { show(record, state: .interrupted) }
            throw error
        } catch {
            if display.isShown, let record = session.fronts[name] { show(record, state: .failed) }
            throw error
        }
    }

    /// The name after `as`, or PREFIX followed by the number of results kept so far plus one.
    static func resultName(_ arguments: Arguments, session: Session, prefix: String) throws -> String {
        let words = (arguments.text("as") ?? "").split(separator: " ").map(String.init)
        guard !words.isEmpty else { return "\(prefix)\(session.fronts.count + 1)" }
        guard words.count == 2, words[0] == "as" else {
            throw CommandError(.unexpectedArgument, "name a result with `as NAME`", word: words.joined(separator: " "))
        }
        return words[1]
    }

    /// "loss 0.93, macs 1.00": a LINAS batch's rank correlation of predicted and real objectives.
    static func correlations(_ round: LINAS.Round, _ record: SearchRecord) -> String {
        zip(record.objectives, round.rankCorrelations).map { "\($0.rawValue) " + ($1.isNaN ? "—" : String(format: "%.2f", $1)) }
            .joined(separator: ", ")
    }

    /// The front's hypervolume after each batch of real evaluations (the first batch, then one
    /// point a round), against the worst value of each objective seen: what `compare` measures, as it grows.
    static func hypervolumeGrowth(_ record: SearchRecord) -> [(evaluations: Int, hypervolume: Double)] {
        let all = record.evaluated.map(\.objectives)
        guard record.objectives.count == 2, !all.isEmpty else { return [] }
        let reference = (0..<2).map { k in all.map { $0[k] }.max()! + 1e-9 }
        let firstBatch = record.evaluated.filter { $0.generation == 0 }.count
        let counts = [firstBatch] + record.rounds.map(\.evaluations)
        return counts.map { n in (n, Pareto.hypervolume2D(Array(all.prefix(n)), reference: reference)) }
    }

    static func hypervolumeChart(_ record: SearchRecord) -> LineChart {
        let growth = hypervolumeGrowth(record)
        var series = [LineChart.Series(name: "hypervolume", points: growth.map { (Double($0.evaluations), $0.hypervolume) }, colour: "#1f77b4")]
        let scale = growth.map(\.hypervolume).max() ?? 1
        for (k, objective) in record.objectives.enumerated() {
            // Rank correlations drawn on the hypervolume's scale (1 = the top of the axis).
            series.append(LineChart.Series(name: "rank correlation, \(objective.rawValue) (× \(String(format: "%.3g", scale)))",
                                           points: record.rounds.map { (Double($0.evaluations), $0.rankCorrelations[k] * scale) },
                                           colour: k == 0 ? "#2ca02c" : "#ff7f0e"))
        }
        return LineChart(title: "\(record.name): hypervolume against real evaluations", xTitle: "real evaluations",
                         yTitle: "hypervolume (worst seen as reference)", series: series)
    }

    static func roundsTable(_ record: SearchRecord) -> MimeBundle {
        let growth = hypervolumeGrowth(record)
        let rows = record.rounds.enumerated().map { i, round -> [String] in
            [String(i + 1), String(round.evaluations),
             growth.count > i + 1 ? String(format: "%.4g", growth[i + 1].hypervolume) : "—"]
                + round.rankCorrelations.map { $0.isNaN ? "—" : String(format: "%.2f", $0) }
                + [round.predictors.joined(separator: "; ")]
        }
        return Table(title: "LINAS \(record.name): each batch, the hypervolume after it and how well the predictors ordered it "
                     + "(Spearman, predicted against real)",
                     columns: ["batch", "real evaluations", "hypervolume"] + record.objectives.map { "ρ \($0.rawValue)" } + ["predictors"],
                     rows: rows).bundle
    }

    static func plot(_ record: SearchRecord, title: String) -> ScatterPlot {
        // x: the cost objective; y: validation loss or task error.
        let yIndex = record.objectives.firstIndex(where: \.isQuality) ?? 0
        let xIndex = record.objectives.indices.first { $0 != yIndex } ?? 0
        let points = record.evaluated.map {
            ScatterPlot.Point(x: $0.objectives[xIndex], y: $0.objectives[yIndex], group: $0.generation, label: $0.genome.map(String.init).joined(separator: ","))
        }
        let front = record.front.map { ($0.objectives[xIndex], $0.objectives[yIndex]) }.sorted { $0.0 < $1.0 }
        var markers = [ScatterPlot.Marker]()
        if let m = record.maximal { markers.append(.init(name: "largest", x: m.objectives[xIndex], y: m.objectives[yIndex], colour: "#d62728")) }
        if let h = record.heuristic { markers.append(.init(name: "heuristic", x: h.objectives[xIndex], y: h.objectives[yIndex], colour: "#2ca02c")) }
        return ScatterPlot(title: title, xTitle: record.objectives[xIndex].label, yTitle: record.objectives[yIndex].label,
                           groupTitle: "generation", points: points, front: front, markers: markers)
    }

    static func frontTable(_ record: SearchRecord, session: Session) -> MimeBundle {
        guard let space = session.elastic else { return MimeBundle(plain: "no elastic space") }
        let lossIndex = record.objectives.firstIndex(of: .loss)
        let accuracyIndex = record.objectives.firstIndex(of: .accuracy)
        let latencyIndex = record.objectives.firstIndex(of: .latency)
        // Parameters as the search counted them (Wanda's without its zeros), else computed.
        let paramsIndex = record.objectives.firstIndex(of: .params)
        let depth = space.mode == .nas
        func row(_ label: String, _ individual: Individual) -> [String] {
            let cost = space.cost(individual.genome)
            let (ranks, widths) = space.resolve(individual.genome)
            let allRanks = ranks.flatMap(\.values)
            let meanRank = Double(allRanks.reduce(0, +)) / Double(max(1, allRanks.count))
            // Over the layers that run: a skipped layer's width gene does nothing.
            let kept = space.kept(individual.genome)
            let keptWidths = zip(widths, kept).filter { $0.1 }.map(\.0)
            let meanWidth = 100 * Double(keptWidths.reduce(0, +)) / Double(max(1, keptWidths.count) * space.config.ffnDim)
            let quality: String
            if let lossIndex { quality = String(format: "%.4f", individual.objectives[lossIndex]) }
            else if let accuracyIndex { quality = String(format: "%.1f%%", 100 * (1 - individual.objectives[accuracyIndex])) }
            else { quality = "—" }
            return [label, quality, formatCount(paramsIndex.map { individual.objectives[$0] } ?? Double(cost.parameters)),
                    formatCount(Double(cost.macsPerToken))]
                + (latencyIndex.map { [String(format: "%.2f", individual.objectives[$0])] } ?? [])
                + [String(format: "%.1f", meanRank), String(format: "%.1f%%", meanWidth)]
                + (depth ? [String(kept.filter { $0 }.count)] : [])
        }
        var rows = record.front.enumerated().map { row(String($0.offset), $0.element) }
        if let h = record.heuristic { rows.append(row("heuristic", h)) }
        if let m = record.maximal { rows.append(row("largest", m)) }
        let title = "Pareto front of \(record.name): \(record.front.count) subnets of \(record.evaluated.count) evaluated"
            + (record.interrupted ? " (interrupted at generation \(record.generationsDone))" : "")
            + (accuracyIndex == nil ? " · validation loss on \(record.evalTokens) tokens" : " · task accuracy")
            + (latencyIndex == nil ? "" : " and latency")
            + " measured; parameters and MACs computed"
        let columns = ["#", accuracyIndex == nil ? "validation loss" : "task accuracy", "parameters", "MACs/token"] + (latencyIndex == nil ? [] : ["latency (ms)"]) + ["mean rank", "mean MLP width"]
            + (depth ? ["layers"] : [])
        return Table(title: title, columns: columns, alignments: [.left] + columns.dropFirst().map { _ in .right }, rows: rows).bundle
    }

    static func record(named name: String?, _ session: Session) throws -> SearchRecord {
        guard let name = name ?? session.lastFront else { throw CommandError(.failed, "no search has run yet: use `search nsga2 … as NAME`") }
        guard let record = session.fronts[name] else {
            throw CommandError(.badValue, "no search named `\(name)`", word: name, suggestion: nearest(name, in: Array(session.fronts.keys)))
        }
        return record
    }

    static func showPareto(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        var words = (arguments.text("what") ?? "").split(separator: " ").map(String.init)
        var name: String?
        let views = ["table", "plot", "layers", "csv"]
        if let first = words.first, !views.contains(first) { name = first; words.removeFirst() }
        let record = try record(named: name, context.session)
        switch words.first ?? "table" {
        case "table": return frontTable(record, session: context.session)
        case "layers":
            let map = try frontShapes(record, session: context.session)
            context.output.display(map.bundle(), id: nil)
            return map.tableBundle
        case "plot": return plot(record, title: "\(record.name): \(record.evaluated.count) subnets, front of \(record.front.count)").bundle(plain: "front of \(record.name): \(record.front.count) subnets")
        case "csv":
            guard words.count == 2 else { throw CommandError(.missingArgument, "`pareto csv` needs a path: pareto [NAME] csv PATH") }
            let path = (words[1] as NSString).expandingTildeInPath
            let header = (record.objectives.map(\.rawValue) + ["front", "generation", "genome"]).joined(separator: ",")
            let frontGenomes = Set(record.front.map(\.genome))
            let lines = record.evaluated.map { i in
                (i.objectives.map { String($0) } + [frontGenomes.contains(i.genome) ? "1" : "0", String(i.generation),
                                                      "\"" + i.genome.map(String.init).joined(separator: " ") + "\""]).joined(separator: ",")
            }
            do {
                try ([header] + lines).joined(separator: "\n").appending("\n").write(toFile: path, atomically: true, encoding: .utf8)
            } catch {
                throw CommandError(.failed, "cannot write \(path): \(fileSystemReason(error))", word: words[1])
            }
            return MimeBundle(plain: "wrote \(record.evaluated.count) subnets (\(record.front.count) on the front) to \(path)")
        default:
            throw CommandError(.badValue, "`pareto` shows a table, a plot, the layers or a csv, not `\(words[0])`", word: words[0],
                               suggestion: nearest(words[0], in: views))
        }
    }

    /// LLaMA-NAS's view of a front: how often each layer is skipped or has each MLP width among
    /// the front's subnets (layers × choices, in percent), and how many layers they keep.
    static func frontShapes(_ record: SearchRecord, session: Session) throws -> HeatMap {
        guard let space = session.elastic else { throw CommandError(.failed, "no elastic space: `elastic mode=NAS …` first") }
        guard record.pointsAreSubnets else {
            throw CommandError(.badValue, "`\(record.name)` (\(record.method)) holds pruned models, not subnets: it has no layers to count", word: record.name)
        }
        guard space.mode == .nas || space.mode.hasWidth else {
            throw CommandError(.badValue, "the space has neither depth nor MLP widths (mode \(space.mode.rawValue)): `pareto \(record.name) table` shows its ranks")
        }
        guard !record.front.isEmpty else { throw CommandError(.failed, "`\(record.name)` has no front yet") }
        let depth = space.mode == .nas
        let widths = space.mode.hasWidth ? space.widthChoices : [space.config.ffnDim]
        let columns = (depth ? ["skipped"] : []) + (space.mode.hasWidth ? widths.map(String.init) : ["kept"])
        var counts = [[Int]](repeating: [Int](repeating: 0, count: columns.count), count: space.config.layers)
        var layerCounts = [Double]()
        for individual in record.front {
            let kept = space.kept(individual.genome)
            let resolved = space.resolve(individual.genome).widths
            layerCounts.append(Double(kept.filter { $0 }.count))
            for l in 0..<space.config.layers {
                if !kept[l] { counts[l][0] += 1; continue }
                counts[l][(depth ? 1 : 0) + (widths.firstIndex(of: resolved[l]) ?? 0)] += 1
            }
        }
        let share = counts.map { row in row.map { Optional((1000 * Double($0) / Double(record.front.count)).rounded() / 10) } }
        var map = HeatMap(title: "Layers of the \(record.front.count) subnets on the front of \(record.name) (\(record.method)): % of them",
                          rowTitle: "layer", columnTitle: depth ? "skipped or MLP width" : "MLP width", valueTitle: "% of the front",
                          rows: (0..<space.config.layers).map(String.init), columns: columns, values: share)
        map.subtitle = "measured on " + record.objectives.map(\.label).joined(separator: " and ")
        if depth { map.distribution = ("layers kept", "subnets", layerCounts) }
        return map
    }

    static func compareFronts(_ arguments: Arguments, _ context: CommandContext) throws -> MimeBundle? {
        let names = (arguments.text("names") ?? "").split(separator: " ").map(String.init)
        let records = try names.map { try record(named: $0, context.session) }
        guard let first = records.first, records.allSatisfy({ $0.objectives == first.objectives }) else {
            throw CommandError(.badValue, "fronts compare only when their objectives are the same")
        }
        // A shared reference point: 10% beyond the worst value of each objective over all fronts.
        let all = records.flatMap { $0.front.map(\.objectives) }
        let reference = (0..<first.objectives.count).map { m -> Double in
            let values = all.map { $0[m] }
            return (values.max() ?? 1) + 0.1 * ((values.max() ?? 1) - (values.min() ?? 0) + 1e-9)
        }
        let rows: [[String]] = records.map { r in
            let hv = first.objectives.count == 2 ? String(format: "%.4g", Pareto.hypervolume2D(r.front.map(\.objectives), reference: reference)) : "—"
            let best = r.front.map { $0.objectives[first.objectives.firstIndex(where: \.isQuality) ?? 0] }.min() ?? .nan
            return [r.name, String(r.evaluated.count), String(r.front.count), String(format: "%.4f", best), hv]
        }
        var plot = plot(first, title: "Fronts: " + names.joined(separator: ", "))
        let yIndex = first.objectives.firstIndex(where: \.isQuality) ?? 0
        let xIndex = first.objectives.indices.first { $0 != yIndex } ?? 0
        plot.groupTitle = "front"
        plot.groupNames = records.map(\.name)
        plot.points = records.enumerated().flatMap { k, r in r.front.map { ScatterPlot.Point(x: $0.objectives[xIndex], y: $0.objectives[yIndex], group: k, label: r.name) } }
        // The chart and the table as two outputs: in one bundle, a front end shows only one of them.
        context.output.display(plot.bundle(plain: "fronts of " + names.joined(separator: ", ")), id: nil)
        return Table(title: "Fronts compared (hypervolume against a shared reference; higher is better)",
                     columns: ["search", "evaluated", "front", "best loss or error", "hypervolume"], rows: rows).bundle
    }
}
