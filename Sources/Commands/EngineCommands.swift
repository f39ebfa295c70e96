import Display
import Evaluation
import Foundation
import Workbench

extension CommandTable {
    static let modelCommands: [Command] = [
        Command("model load", summary: "Load a LLaMA-architecture model from GGUF (smollm2, or a path)",
                details: "`smollm2` is SmolLM2-135M-Instruct from the set-up's cache (~/.cache/sculpt/models). Reads F32, F16, "
                    + "BF16, Q8_0, Q4_0 and Q4_1 files. With `keep=yes` (the default) Q8_0, Q4_0 and Q4_1 matrices stay in their "
                    + "blocks and every product computes from them with integer kernels (the card names the instruction set); "
                    + "`keep=no` dequantizes everything to Float32. Methods that change weights (pruning, quantize, merges) or "
                    + "need them in Float32 convert what they touch. Shows the model card, with the memory the weights take.",
                arguments: [.positional("source", .text, help: "`smollm2` or the path of a .gguf file"),
                            .option("keep", .flag, default: "yes", help: "keep Q8_0/Q4_0/Q4_1 blocks as they are (no: dequantize to Float32)")],
                examples: ["model load smollm2", "model load smollm2 keep=no", "model load \"/data/my model.gguf\""]) { arguments, context in
            let source = arguments.text("source") ?? ""
            let path = source.lowercased() == "smollm2" ? Session.smolLM2Path : (source as NSString).expandingTildeInPath
            if source.lowercased() == "smollm2", !FileManager.default.fileExists(atPath: path) {
                throw CommandError(.failed, "SmolLM2 is not in the cache (\(path)): run scripts/setup.sh, which fetches and verifies it")
            }
            let progress = LiveProgress(context.output, title: "loading \(URL(fileURLWithPath: path).lastPathComponent)", total: 1, unit: "tensors")
            let card = try progress.run {
                try context.session.loadModel(path: path, name: source.lowercased() == "smollm2" ? "SmolLM2-135M-Instruct" : nil,
                                              keep: arguments.flag("keep") ?? true) {
                    progress.update(done: Double($0), total: Double($1))
                }
            }
            progress.finish()
            return modelCardBundle(card)
        },

        Command("model tiny", summary: "Build a small random LLaMA (seeded) for instant demos and tests",
                details: "Weights are N(0, 0.02²) from the session's seed, so the same seed gives the same model. The tokenizer "
                    + "is the 256 bytes. The sizes are checked against the memory the machine has before anything is allocated.",
                arguments: [
                    .option("layers", .integer(1...64), default: "2", help: "transformer blocks"),
                    .option("dim", .integer(8...4096), default: "64", help: "model width"),
                    .option("heads", .integer(1...64), default: "4", help: "query heads (dividing dim)"),
                    .option("kv_heads", .integer(1...64), default: "2", help: "key/value heads (dividing heads)"),
                    .option("ffn", .integer(8...16384), default: "128", help: "MLP width"),
                    .option("vocab", .integer(256...65536), default: "256", help: "vocabulary size (the bytes and unused ids)"),
                    .option("context", .integer(16...8192), default: "512", help: "longest sequence"),
                ],
                examples: ["model tiny", "model tiny layers=4 dim=128 heads=8 kv_heads=2 ffn=256"]) { arguments, context in
            let card = try context.session.tinyModel(
                layers: arguments.integer("layers")!, dim: arguments.integer("dim")!, heads: arguments.integer("heads")!,
                kvHeads: arguments.integer("kv_heads")!, ffnDim: arguments.integer("ffn")!, vocab: arguments.integer("vocab")!,
                context: arguments.integer("context")!)
            return modelCardBundle(card)
        },

        Command("model info", summary: "Show the loaded model's card: layers, widths, parameters, MACs per token, memory") { _, context in
            guard let card = context.session.modelCard else { throw WorkbenchError.noModel }
            return modelCardBundle(card)
        },
    ]

    static let dataCommands: [Command] = [
        Command("data text", summary: "Choose the text to evaluate (and later train) on: austen, or a UTF-8 file",
                details: "`austen` is Jane Austen's six novels from the set-up's cache. Splits are the novels (emma, mansfieldpark, "
                    + "northangerabbey, persuasion, prideprejudice, sensesensibility) and the roles train (Emma + Mansfield Park), "
                    + "validation (Northanger Abbey) and test (Persuasion). `eval ppl` reads `split` unless told otherwise.",
                arguments: [
                    .positional("source", .text, help: "`austen` or the path of a text file"),
                    .option("split", .text, help: "the split `eval ppl` reads (Austen default: persuasion)"),
                ],
                examples: ["data text austen", "data text austen split=northangerabbey", "data text notes.txt"]) { arguments, context in
            let source = arguments.text("source") ?? ""
            let corpus = source.lowercased() == "austen" ? try TextCorpus.austen() : try TextCorpus.file((source as NSString).expandingTildeInPath)
            do {
                try context.session.useText(corpus, evaluationSplit: arguments.text("split"))
            } catch let error as TextCorpusError {
                let known = corpus.splits.map(\.name) + (corpus.isAusten ? ["train", "validation", "test"] : [])
                throw CommandError(.badValue, "\(error)", word: arguments.text("split"), suggestion: nearest(arguments.text("split") ?? "", in: known).map { "split=\($0)" })
            }
            let rows = corpus.splits.map { split -> [String] in
                let chosen = split.name == context.session.evaluationSplit ? " (eval ppl)" : ""
                return [split.name + chosen, formatCount(Double(TextCorpus.wordCount(split.text))), formatBytes(split.text.utf8.count)]
            }
            return Table(title: "Text: \(corpus.name)", columns: ["split", "words", "size"], alignments: [.left, .right, .right], rows: rows).bundle
        },
    ]

    static let evaluationCommands: [Command] = [
        Command("eval ppl", summary: "Perplexity of the model on the chosen text (a live progress bar; interrupt stops it)",
                details: "Scores the first `tokens` tokens of the split in windows of `window` tokens that move by `stride`; "
                    + "each token is scored once, with the context its window gives it. Reports loss, perplexity per token "
                    + "and per word, and bits per byte, with the split and token count they come from.",
                arguments: [
                    .option("tokens", .integer(16...10_000_000), default: "4096", help: "how many tokens to score"),
                    .option("split", .text, help: "which split (default: the one `data text` chose)"),
                    .option("window", .integer(16...8192), default: "512", help: "tokens of context per forward pass"),
                    .option("stride", .integer(1...8192), help: "how far windows move (default: window, no overlap)"),
                ],
                examples: ["eval ppl", "eval ppl tokens=20000 window=1024 stride=512", "eval ppl split=northangerabbey"]) { arguments, context in
            let session = context.session
            _ = try session.requireModel()
            let window = arguments.integer("window")!
            let stride = arguments.integer("stride") ?? window
            guard stride <= window else { throw CommandError(.badValue, "`stride` (\(stride)) cannot exceed `window` (\(window))", word: "stride=\(stride)") }
            let requested = arguments.integer("tokens")!
            let progress = LiveProgress(context.output, title: "perplexity", total: Double(requested), unit: "tokens")
            let started = Date()
            let (result, split) = try progress.run {
                try session.perplexity(tokens: requested, split: arguments.text("split"), window: window, stride: stride) { p in
                    progress.update(done: Double(p.scored), total: Double(p.total), note: String(format: "loss %.3f", p.runningLoss))
                }
            }
            let seconds = Date().timeIntervalSince(started)
            progress.finish(note: String(format: "ppl %.2f", result.perplexityPerToken))
            let rows: [[String]] = [
                ["split", split],
                ["tokens scored", "\(result.tokens)" + (result.tokens < requested ? " (the whole split)" : "")],
                ["window / stride", "\(result.window) / \(result.stride)"],
                ["loss (nats per token)", String(format: "%.4f", result.meanLoss)],
                ["perplexity per token", String(format: "%.3f", result.perplexityPerToken)],
                ["perplexity per word", String(format: result.perplexityPerWord < 1e6 ? "%.3f" : "%.3e", result.perplexityPerWord) + " (\(result.words) words)"],
                ["bits per byte", String(format: "%.4f", result.bitsPerByte)],
                ["time", String(format: "%.1f s (%.0f tokens/s, measured)", seconds, Double(result.tokens) / max(seconds, 1e-9))],
            ]
            return Table(title: "Perplexity of \(session.modelCard?.name ?? "the model")", columns: ["", "value"], rows: rows).bundle
        },

        Command("generate", summary: "Continue a prompt, streaming tokens as they come (greedy unless temperature > 0)",
                details: "Sampling draws from softmax(logits / temperature), from the `top_k` most likely tokens when given, "
                    + "seeded by the session's seed. Stops at the end-of-sequence token or after `tokens`. An interrupt stops "
                    + "it and keeps the text so far. Special tokens such as <|im_start|> in the prompt are recognised.",
                arguments: [
                    .positional("prompt", .text, help: "the text to continue (quote it)"),
                    .option("tokens", .integer(1...8192), default: "32", help: "most tokens to generate"),
                    .option("temperature", .number(0...10), default: "0", help: "0 for greedy, above 0 to sample"),
                    .option("top_k", .integer(0...1_000_000), default: "0", help: "sample among the k most likely (0: all)"),
                ],
                examples: ["generate \"The capital of France is\" tokens=8", "generate \"Once upon a time\" temperature=0.8 top_k=40"]) { arguments, context in
            let result = try context.session.generate(
                prompt: arguments.text("prompt") ?? "", tokens: arguments.integer("tokens")!,
                temperature: Float(arguments.number("temperature")!), topK: arguments.integer("top_k")!) { text in
                context.output.print(text, toStderr: false)
            }
            context.output.print("\n", toStderr: false)
            if context.session.cancellation.isCancelled { throw CancellationError() }
            _ = result
            return nil
        },
    ]

    static func modelCardBundle(_ card: ModelCard) -> MimeBundle {
        Table(title: "Model card", columns: ["", "value"], rows: card.rows.map { [$0.0, $0.1] }).bundle
    }
}
