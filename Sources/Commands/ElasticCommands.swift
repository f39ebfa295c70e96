import Compression
import Display
import Foundation
import Tensors
import Search
import Transformer
import Workbench

extension CommandTable {
    static let elasticCommands: [Command] = [
        Command("elastic", summary: "Make the adapters elastic: a weight-sharing super-network over ranks (A) and MLP widths (B)",
                details: "Mode A: each group of adapters uses a prefix of the rank (A[:r], B[:, :r]), with the scale fixed at "
                    + "alpha / r_max. Mode B also cuts the frozen MLP: the first channels of gate and up (with their lora_B rows) "
                    + "and of down's inputs (with its lora_A columns). Fresh adapters are attached at the largest rank; `train` "
                    + "then trains one random subnet per step. Groups: `layer` (one rank per layer), `family` (attention and MLP "
                    + "adapters apart), `module` (each adapter). `order=importance` first sorts each layer's MLP channels by "
                    + "importance (‖column of down‖ × RMS of the channel's activation on `calibration_tokens` tokens of the "
                    + "training split, as EFTNAS does), so a narrower MLP drops the channels that matter least; LoNAS keeps the "
                    + "channels in the order they were loaded (`order=loaded`). Reordering leaves the model's outputs unchanged.",
                arguments: [
                    .option("mode", .choice(["A", "B", "NAS"]), default: "A",
                            help: "A: elastic rank; B: elastic rank and MLP width; NAS: also depth, each layer but the first and last kept or skipped (LLaMA-NAS)"),
                    .option("ranks", .text, default: "32,24,16", help: "rank choices, largest first"),
                    .option("widths", .text, default: "100%,87.5%,75%,62.5%,50%", help: "MLP width choices (mode B)"),
                    .option("groups", .choice(ElasticGrouping.allCases.map(\.rawValue)), default: "family", help: "which adapters share a rank choice"),
                    .option("targets", .choiceList(Projection.allCases.map(\.rawValue)), help: "projections (A: q,k,v,up,down; B: q,k,v,gate,up,down)"),
                    .option("alpha", .number(0...100_000), help: "LoRA alpha (default 2 × largest rank)"),
                    .option("dropout", .number(0...0.9), default: "0", help: "adapter dropout while training"),
                    .option("sparse", .flag, default: "no", help: "SparsePEFT: mask the updates by the base's non-zeros (see `help lora`)"),
                    .option("order", .choice(MLPChannelOrder.allCases.map(\.rawValue)), default: "loaded",
                            help: "which MLP channels a narrower width keeps (mode B): loaded first (LoNAS) or most important (EFTNAS)"),
                    .option("split", .text, help: "calibration text for order=importance (default: the training split)"),
                    .option("calibration_tokens", .integer(16...1_000_000), default: "1024", help: "tokens measured for order=importance"),
                ],
                examples: ["elastic mode=A ranks=32,24,16", "elastic mode=B ranks=32,28 widths=100%,87.5%,75%,62.5%,50% groups=family",
                           "elastic mode=B ranks=16,12,8 widths=100%,87.5%,75% order=importance"]) { arguments, context in
            let mode = ElasticMode(rawValue: arguments.text("mode")!)!
            let ranks = try parseList(arguments.text("ranks")!, name: "ranks") { Int($0).flatMap { (1...100_000).contains($0) ? $0 : nil } }
            let widths = try parseList(arguments.text("widths")!, name: "widths", fraction)
            let defaultTargets: [Projection] = mode == .a ? [.q, .k, .v, .up, .down] : [.q, .k, .v, .gate, .up, .down]
            let targets = arguments.list("targets").map { $0.compactMap(Projection.init(rawValue:)) } ?? defaultTargets
            let space = try context.session.makeElastic(mode: mode, ranks: ranks, widths: widths,
                                                        grouping: ElasticGrouping(rawValue: arguments.text("groups")!)!, targets: targets,
                                                        alpha: arguments.number("alpha").map(Float.init), dropout: Float(arguments.number("dropout")!),
                                                        sparse: arguments.flag("sparse") ?? false,
                                                        order: MLPChannelOrder(rawValue: arguments.text("order")!)!, calibrationSplit: arguments.text("split"),
                                                        calibrationTokens: arguments.integer("calibration_tokens")!)
            return spaceCard(space)
        },

        Command("subnet", summary: "Activate a subnet: max, min, heuristic, random, pareto NAME INDEX, or rank=/width=/genome=",
                details: "`heuristic` is the midpoint of LoNAS/Shears/SQFT: choice (n − 1) / 2 of each descending list. "
                    + "`rank=24 width=75%` picks the nearest choice in every group; `genome=0,1,2,…` gives each group's choice index. "
                    + "Shows the active ranks and widths per layer and what the subnet costs.",
                arguments: [
                    .positional("which", .words, required: false, help: "max | min | heuristic | random | pareto NAME INDEX"),
                    .option("rank", .integer(1...100_000), help: "every rank group at the nearest choice"),
                    .option("width", .text, help: "every width group at the nearest choice (e.g. 75%)"),
                    .option("genome", .text, help: "choice indices, one per group, comma-separated"),
                ],
                examples: ["subnet heuristic", "subnet rank=24 width=75%", "subnet pareto front1 2"]) { arguments, context in
            let session = context.session
            let space = try session.requireElastic()
            let genome = try chooseSubnet(arguments, session: session, space: space)
            try session.activate(genome)
            return subnetTable(space, genome: genome, model: try session.requireModel())
        },

        Command("cost", summary: "What a subnet costs: parameters, MACs per token, bytes (computed) and latency (measured)",
                details: "Without arguments, the active subnet (or the plain model). Figures are computed from shapes; latency is "
                    + "measured on one sequence of `tokens` tokens, in `rounds` rounds that time one forward of this subnet and one of "
                    + "the largest in turn. Other work on the machine only ever slows a run, so the speedup compares the best "
                    + "runs; the range and median of the rounds' own speedups say how noisy the machine was. Ratios compare "
                    + "with the largest subnet. On a model with packed weights (`model load` keeps Q8_0/Q4_0/Q4_1 blocks, "
                    + "`quantize` packs its grids) latency is measured on the quantized kernels, and the row names them.",
                arguments: [
                    .positional("which", .words, required: false, help: "as for `subnet` (default: the active subnet)"),
                    .option("rank", .integer(1...100_000), help: "every rank group at the nearest choice"),
                    .option("width", .text, help: "every width group at the nearest choice"),
                    .option("genome", .text, help: "choice indices, one per group"),
                    .option("latency", .flag, default: "yes", help: "also measure forward latency"),
                    .option("tokens", .integer(1...8192), default: "128", help: "tokens for the latency measurement"),
                    .option("rounds", .integer(1...1000), default: "15",
                            help: "latency rounds, each timing one forward of this subnet and one of the largest"),
                    .option("eval_tokens", .integer(16...10_000_000), help: "also measure validation loss and next-token accuracy on this many tokens"),
                    .option("tasks", .text, help: "also measure multiple-choice accuracy on these loaded tasks (comma-separated, or `all`)"),
                    .option("task_limit", .integer(1...1_000_000), default: "100", help: "examples per (sub)task for `tasks`"),
                ],
                examples: ["cost", "cost heuristic", "cost rank=16 width=50% eval_tokens=2048", "cost heuristic tasks=all task_limit=200"]) { arguments, context in
            let session = context.session
            let space = try session.requireElastic()
            let restore = session.activeGenome ?? space.maximal
            defer { try? session.activate(restore) }
            let genome = (arguments.has("which") || arguments.has("rank") || arguments.has("width") || arguments.has("genome"))
                ? try chooseSubnet(arguments, session: session, space: space) : restore
            let cost = space.cost(genome), full = space.cost(space.maximal)
            var rows: [[String]] = [
                ["parameters", "\(formatCount(Double(cost.parameters))) (\(cost.parameters))", ratio(cost.parameters, full.parameters), "computed"],
                ["adapter parameters", formatCount(Double(cost.adapterParameters)), ratio(cost.adapterParameters, full.adapterParameters), "computed"],
                ["MACs per token", formatCount(Double(cost.macsPerToken)), ratio(cost.macsPerToken, full.macsPerToken), "computed"],
                ["weights (Float32)", formatBytes(cost.bytes), ratio(cost.bytes, full.bytes), "computed"],
            ]
            if let tokens = arguments.integer("eval_tokens") {
                let mine = try session.subnetScore(genome, tokens: tokens)
                let largest = try session.subnetScore(space.maximal, tokens: tokens)
                rows.insert(contentsOf: [
                    ["validation loss (\(tokens) tokens)", String(format: "%.4f (perplexity %.2f)", mine.loss, exp(mine.loss)),
                     String(format: "%+.2f%%", 100 * (mine.loss - largest.loss) / largest.loss), "measured"],
                    ["next-token accuracy", String(format: "%.2f%%", 100 * mine.accuracy),
                     String(format: "%.1f%% of largest", 100 * mine.accuracy / max(largest.accuracy, 1e-12)), "measured"],
                ], at: 0)
            }
            if let probe = accuracyProbe(arguments) {
                let mine = try session.subnetAccuracy(genome, probe: probe)
                let largest = try session.subnetAccuracy(space.maximal, probe: probe)
                rows.insert(["task accuracy (\(probe.tasks?.joined(separator: ",") ?? "all tasks"), \(probe.limit) each)",
                             String(format: "%.2f%%", 100 * mine), String(format: "%+.2f points", 100 * (mine - largest)), "measured"], at: 0)
            }
            if arguments.flag("latency") == true {
                let tokens = arguments.integer("tokens")!
                let rounds = arguments.integer("rounds")!
                let paired = try session.pairedLatency(genome, against: space.maximal, tokens: tokens, rounds: rounds)
                let spread = paired.roundSpeedups
                let model = try session.requireModel()
                let path = model.isPacked ? ", packed weights on \(KernelPath.current.rawValue)" : ", Float32 weights"
                rows.append(["forward latency (\(tokens) tokens, best of \(rounds)\(path))", String(format: "%.2f ms", paired.subnetSeconds * 1000),
                             String(format: "%.2f× (speedup %.2f×; rounds %.2f–%.2f×, median %.2f×)", 1 / paired.speedup, paired.speedup,
                                    spread.first!, spread.last!, paired.medianRoundSpeedup), "measured"])
            }
            return Table(title: "Cost of the subnet", columns: ["", "value", "vs largest", "how"], rows: rows).bundle
        },

        Command("search nsga2", summary: "Multi-objective search over subnets (NSGA-II), the Pareto front growing live",
                details: "Each subnet is scored on the validation split (`eval_tokens` tokens; Austen: Northanger Abbey) and on "
                    + "its cost; both are minimized. NNCF's settings: SBX (p 0.9, η 10), polynomial mutation (η 3), duplicates "
                    + "eliminated, each subnet evaluated once. The largest and the heuristic subnet seed the first generation and "
                    + "are marked on the plot. Interrupting keeps the front found so far under its name.",
                arguments: [
                    searchName,
                    .option("population", .integer(2...1000), default: "8", help: "subnets per generation"),
                    .option("generations", .integer(0...1000), default: "5", help: "generations after the first"),
                ] + searchObjectiveOptions,
                examples: ["search nsga2 population=8 generations=5 objectives=loss,macs as front1"]) { arguments, context in
            try runSearch(arguments, context)
        },

        Command("search linas", summary: "Multi-objective search over subnets with predictors (LINAS): real evaluations only for the predicted front",
                details: "LINAS (DyNAS-T, used by LLaMA-NAS): a first batch of `population` subnets (the largest, the heuristic, "
                    + "random ones) is evaluated for real; then, batch after batch, one predictor per objective (one-hot ridge or "
                    + "RBF kernel ridge, chosen with its λ by cross-validation) is fitted to every real evaluation, an inner NSGA-II "
                    + "runs `inner_generations` generations on the predicted objectives, and its best new subnets are evaluated "
                    + "for real, until `evaluations`. Live: the front as `search nsga2` draws it, and the hypervolume against real "
                    + "evaluations with each batch's rank correlation of predicted and real objectives. Compare with `search nsga2` "
                    + "at the same number of real evaluations (population × (generations + 1)) through `compare`.",
                arguments: [
                    searchName,
                    .option("population", .integer(2...1000), default: "8", help: "subnets per batch, and the inner search's population"),
                    .option("evaluations", .integer(2...100_000), default: "40", help: "real evaluations in all"),
                    .option("inner_generations", .integer(1...10_000), default: "50", help: "generations of the inner search per batch"),
                ] + searchObjectiveOptions,
                examples: ["search linas population=8 evaluations=48 objectives=loss,macs as linas1"]) { arguments, context in
            try runSearch(arguments, context, linas: true)
        },

        Command("pareto", summary: "Show or export a search's front: table, plot, layers (how often each layer is skipped or has each width), or csv PATH",
                arguments: [.positional("what", .words, required: false, help: "[NAME] [table|plot|layers|csv PATH] (default: the last search, table)")],
                examples: ["pareto", "pareto front1 plot", "pareto front1 layers", "pareto front1 csv front1.csv"]) { arguments, context in
            try showPareto(arguments, context)
        },

        Command("compare", summary: "Fronts of several searches side by side: a plot and a table with hypervolumes",
                arguments: [.positional("names", .words, help: "search names")],
                examples: ["compare front1 front2"]) { arguments, context in
            try compareFronts(arguments, context)
        },
    ]

    /// `as NAME`, which both searches take.
    static let searchName = ArgumentSpec.positional("as", .words, required: false, help: "`as NAME` to name the result (default: search1, search2, …)")

    /// What both searches minimize and how they score a subnet.
    static let searchObjectiveOptions: [ArgumentSpec] = [
        .option("objectives", .choice(["loss,macs", "loss,latency", "loss,params", "accuracy,macs", "accuracy,latency", "accuracy,params"]),
                default: "loss,macs", help: "what to minimize (accuracy: the task error 1 − accuracy on the loaded tasks)"),
        .option("eval_tokens", .integer(16...10_000_000), default: "1024", help: "validation tokens per subnet"),
        .option("tasks", .text, help: "with accuracy: which loaded tasks (comma-separated; default all)"),
        .option("task_limit", .integer(1...1_000_000), default: "100", help: "with accuracy: examples per (sub)task"),
    ]

    /// `tasks=` and `task_limit=` as an accuracy probe, or nil without `tasks=`.
    static func accuracyProbe(_ arguments: Arguments, always: Bool = false) -> AccuracyProbe? {
        guard let text = arguments.text("tasks") ?? (always ? "all" : nil) else { return nil }
        let names = text.lowercased() == "all" ? nil : text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
        return AccuracyProbe(tasks: names, limit: arguments.integer("task_limit") ?? 100)
    }

    static func parseList<T>(_ text: String, name: String, _ convert: (String) -> T?) throws -> [T] {
        let items = text.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) }
        var out = [T]()
        for item in items {
            guard let value = convert(item) else { throw CommandError(.badValue, "`\(name)` takes a comma-separated list; `\(item)` is not a valid item", word: item) }
            out.append(value)
        }
        guard !out.isEmpty else { throw CommandError(.badValue, "`\(name)` is empty", word: name) }
        return out
    }

    static func ratio(_ a: Int, _ b: Int) -> String { b == 0 ? "—" : String(format: "%.3f×", Double(a) / Double(b)) }

    static func chooseSubnet(_ arguments: Arguments, session: Session, space: ElasticSpace) throws -> [Int] {
        if let genome = arguments.text("genome") {
            let values = try parseList(genome, name: "genome") { Int($0) }
            guard space.isValid(values) else {
                throw CommandError(.badValue, "a genome has \(space.groups.count) indices (one per group), each below its group's number of choices", word: genome)
            }
            return values
        }
        if arguments.has("rank") || arguments.has("width") {
            let width = try arguments.text("width").map { text -> Double in
                guard let v = fraction(text) else {
                    throw CommandError(.badValue, "`width` is a fraction of the MLP in (0, 100%], like 75% or 0.75, not `\(text)`", word: text)
                }
                return v
            }
            return space.uniform(rank: arguments.integer("rank"), widthFraction: width)
        }
        let words = (arguments.text("which") ?? "max").split(separator: " ").map(String.init)
        switch words.first ?? "max" {
        case "max": return space.maximal
        case "min": return space.minimal
        case "heuristic": return space.heuristic
        case "random": return try session.randomSubnet()
        case "pareto":
            guard words.count == 3, let index = Int(words[2]) else {
                throw CommandError(.missingArgument, "`subnet pareto` needs a search name and an index: subnet pareto NAME INDEX")
            }
            guard let record = session.fronts[words[1]] else {
                throw CommandError(.badValue, "no search named `\(words[1])`", word: words[1], suggestion: nearest(words[1], in: Array(session.fronts.keys)))
            }
            guard record.pointsAreSubnets else {
                throw CommandError(.badValue, "`\(words[1])` (\(record.method)) holds pruned models, not subnets: `sparsify` makes one", word: words[1])
            }
            guard record.front.indices.contains(index) else {
                throw CommandError(.badValue, "`\(words[1])` has \(record.front.count) front points (0…\(record.front.count - 1))", word: words[2])
            }
            return record.front[index].genome
        default:
            throw CommandError(.badValue, "unknown subnet `\(words[0])`", word: words[0],
                               suggestion: nearest(words[0], in: ["max", "min", "heuristic", "random", "pareto"]))
        }
    }

    static func spaceCard(_ space: ElasticSpace) -> MimeBundle {
        var rows = [[String]]()
        let layers = space.config.layers
        // One row per kind of group and its choices, with how many layers have it (NAS pins the
        // first and last layer: they have no depth gene).
        var kinds = [(name: String, choices: String, count: Int)]()
        for group in space.groups {
            var name = group.name.replacingOccurrences(of: #"^layer \d+ "#, with: "", options: .regularExpression)
            var choices = group.choices.map(String.init).joined(separator: ", ")
            switch group.kind {
            case .width: name += " (channels)"
            case .depth: choices = "kept, skipped"
            case .rank: break
            }
            if let i = kinds.firstIndex(where: { $0.name == name && $0.choices == choices }) { kinds[i].count += 1 } else { kinds.append((name, choices, 1)) }
        }
        for kind in kinds { rows.append([kind.name, kind.choices, "×\(kind.count) layers"]) }
        if space.mode.hasWidth {
            if let kept = space.importanceKept {
                // What each width keeps of the MLP's importance: the case for sorting the channels first.
                let shares = zip(kept.channels, zip(kept.loadedOrder, kept.importanceOrder)).map { w, pair in
                    String(format: "%d: %.0f%% → %.0f%%", w, 100 * pair.0, 100 * pair.1)
                }
                rows.append(["MLP importance kept (loaded order → sorted)", shares.joined(separator: ", "),
                             "mean of \(layers) layers, \(kept.calibrationTokens) tokens of \(kept.calibrationSplit)"])
            } else {
                rows.append(["MLP channels kept", "the first, in the order loaded (LoNAS)", "order=importance sorts them first"])
            }
        }
        let title = "Elastic mode \(space.mode.rawValue), groups by \(space.grouping.rawValue): \(space.groups.count) groups, "
            + String(format: "%.3g", space.subnetCount) + " subnets; heuristic = choice (n−1)/2 of each"
            + (space.mode == .nas ? ", every layer kept" : "")
        return Table(title: title, columns: ["group (per layer)", "choices (largest first)", "repeats"], rows: rows).bundle
    }

    static func subnetTable(_ space: ElasticSpace, genome: [Int], model: LlamaModel) -> MimeBundle {
        let (ranks, widths) = space.resolve(genome)
        let kept = space.kept(genome)
        let targets = space.targets
        let rows: [[String]] = (0..<space.config.layers).map { l in
            guard kept[l] else { return [String(l)] + targets.map { _ in "—" } + ["skipped"] }
            return [String(l)] + targets.map { ranks[l][$0].map(String.init) ?? "—" }
                + [space.mode.hasWidth ? "\(widths[l]) (\(Int((100 * Double(widths[l]) / Double(space.config.ffnDim)).rounded()))%)" : "\(widths[l])"]
        }
        let cost = space.cost(genome), full = space.cost(space.maximal)
        let title = "Active subnet: " + String(format: "%.1f%% of the largest's MACs, %.1f%% of its parameters",
                                              100 * Double(cost.macsPerToken) / Double(full.macsPerToken),
                                              100 * Double(cost.parameters) / Double(full.parameters))
        return Table(title: title, columns: ["layer"] + targets.map { "rank \($0.rawValue)" } + ["MLP width"],
                     alignments: [.right] + targets.map { _ in .right } + [.right], rows: rows).bundle
    }
}
