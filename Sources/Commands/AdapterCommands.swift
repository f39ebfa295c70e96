import Compression
import Display
import Foundation
import Transformer
import Workbench

extension CommandTable {
    static let adapterCommands: [Command] = [
        Command("lora", summary: "Attach LoRA adapters to the model's projections (replacing any)",
                details: "y = W x + (alpha/rank) · B A x on each target projection of every layer; A starts Kaiming-uniform and "
                    + "B at zero, so the model is unchanged until `train`. Seeded by `seed`. Targets: q, k, v, o (attention), "
                    + "gate, up, down (MLP). `sparse=yes` (SQFT's SparsePEFT) masks the update by the base's non-zeros, "
                    + "W + M ⊙ (s·B·A), so `lora merge` keeps a pruned base exactly as sparse (the update is a dense out × in "
                    + "matrix each step, as SQFT computes it). `quantization_aware=yes` (QA-SparsePEFT, after `quantize`) computes "
                    + "with Q(W + M ⊙ s·B·A) on the base's frozen grid, with a straight-through gradient; `lora merge` then gives "
                    + "one quantized model with the same zeros.",
                arguments: [
                    .option("rank", .integer(1...1024), default: "8", help: "the adapters' rank r"),
                    .option("alpha", .number(0...100_000), default: "16", help: "scale numerator: s = alpha / rank"),
                    .option("targets", .choiceList(Projection.allCases.map(\.rawValue)), default: "q,k,v,up,down", help: "projections to adapt"),
                    .option("dropout", .number(0...0.9), default: "0", help: "dropout on the adapters' input while training"),
                    .option("sparse", .flag, default: "no", help: "SparsePEFT: mask the update by the base's non-zeros"),
                    .option("quantization_aware", .flag, default: "no", help: "QA-SparsePEFT: train through the base's quantization grid"),
                ],
                examples: ["lora rank=8 alpha=16 targets=q,k,v,up,down", "lora rank=32 alpha=64 targets=all dropout=0.1",
                           "lora rank=8 sparse=yes", "lora rank=8 sparse=yes quantization_aware=yes"]) { arguments, context in
            let targets = (arguments.list("targets") ?? []).compactMap(Projection.init(rawValue:))
            let set = try context.session.attachLoRA(LoRAConfiguration(rank: arguments.integer("rank")!, alpha: Float(arguments.number("alpha")!),
                                                                       targets: targets, dropout: Float(arguments.number("dropout")!),
                                                                       sparse: arguments.flag("sparse") ?? false,
                                                                       quantizationAware: arguments.flag("quantization_aware") ?? false))
            return loraTable(set, model: try context.session.requireModel())
        },

        Command("lora merge", summary: "Fold the adapters into the frozen weights (W += s·B·A); undo with `lora unmerge`",
                details: "Until another method changes the weights, `lora unmerge` takes the update back out. `quantize`, `sparsify`, "
                    + "`lora` (new adapters) or `lora load` after a merge make the merged weights the base: the adapters are then "
                    + "folded in for good, the recipe says so, and the method works on the merged weights (fine-tune → merge → "
                    + "quantize → export; SparsePEFT → merge → quantize). `sparsify restore` then goes back to the merged weights "
                    + "as they were before the first edit of that base.") { _, context in
            let merged = try context.session.mergeAdapters()
            var text = "merged \(merged.merged) adapters into the weights; the model now runs without them "
                + "(`lora unmerge` takes them out; `quantize`, `sparsify` or new adapters make the merged weights the base)"
            if merged.zerosAfter < merged.zerosBefore {
                // A dense B·A fills a sparse base's zeros: Shears keeps adapters unmerged for this reason.
                text += String(format: "\nwarning: the merge densified the sparse base: zeros %.2f %% → %.2f %% of the projections' weights (",
                               100 * Double(merged.zerosBefore) / Double(merged.entries), 100 * Double(merged.zerosAfter) / Double(merged.entries))
                    + formatCount(Double(merged.zerosBefore - merged.zerosAfter)) + " zeros filled). `lora unmerge` restores the sparsity; "
                    + "`lora ... sparse=yes` (SparsePEFT) merges without losing it."
            }
            if merged.unpacked > 0 {
                text += "\nnote: \(merged.unpacked) quantized projections left their INT grid and are Float32 again; "
                    + "QA-SparsePEFT (`lora ... sparse=yes quantization_aware=yes`) merges onto the grid instead."
            }
            return MimeBundle(plain: text)
        },

        Command("lora remove", summary: "Take the adapters off the model (unmerging them first if merged); the base weights stay as they are") { _, context in
            let count = try context.session.removeAdapters()
            return MimeBundle(plain: "removed \(count) adapters; the model computes with its base weights")
        },

        Command("lora unmerge", summary: "Take merged adapters back out of the weights (W −= s·B·A)") { _, context in
            let count = try context.session.unmergeAdapters()
            return MimeBundle(plain: "unmerged \(count) adapters; they are trainable again")
        },

        Command("train", summary: "Fine-tune the adapters, with a live loss curve (interrupt keeps what was trained)",
                details: "Next-token cross-entropy on random windows of the training split, AdamW with linear warm-up then cosine "
                    + "decay, gradient clipping and accumulation; validation loss on fixed windows of the validation split at the "
                    + "start, every `eval_every` steps and at the end. Austen defaults: train on Emma + Mansfield Park, validate on "
                    + "Northanger Abbey. One display shows progress and the curve, updated in place. With elastic adapters each "
                    + "step trains one random subnet (`sampler=uniform`, LoNAS) or the largest, the smallest and a random one "
                    + "with their gradients averaged (`sampler=sandwich`, three passes per micro-batch), or, step by step in turn, "
                    + "the largest and a random one (`sampler=instatune`, LLaMA-NAS's InstaTune). With `distill=yes` the "
                    + "sandwich's largest subnet learns from the labels and the smallest and random ones learn its next-token "
                    + "distribution on the same batch (BigNAS's in-place distillation); the training loss shown stays the labels'.",
                arguments: [
                    .option("steps", .integer(1...1_000_000), default: "100", help: "optimizer steps"),
                    .option("lr", .number(0...10), default: "3e-4", help: "peak learning rate"),
                    .option("batch", .integer(1...1024), default: "4", help: "sequences per micro-batch"),
                    .option("seq", .integer(2...8192), default: "128", help: "tokens per sequence"),
                    .option("warmup", .integer(0...1_000_000), default: "0", help: "steps of linear warm-up"),
                    .option("accumulate", .integer(1...1024), default: "1", help: "micro-batches per optimizer step"),
                    .option("eval_every", .integer(0...1_000_000), default: "0", help: "validate every N steps (0: start and end only)"),
                    .option("val_batches", .integer(1...1000), default: "4", help: "validation batches per validation"),
                    .option("weight_decay", .number(0...10), default: "0", help: "AdamW's decoupled weight decay"),
                    .option("clip", .number(0...1000), default: "1", help: "largest gradient norm (0: no clipping)"),
                    .option("split", .text, help: "training split (Austen default: train)"),
                    .option("val_split", .text, help: "validation split (Austen default: validation)"),
                    .option("sampler", .choice(SubnetSampler.allCases.map(\.rawValue)), default: "uniform",
                            help: "elastic adapters: one random subnet per step (uniform, LoNAS), largest + smallest + random (sandwich), or largest and random in turn (instatune)"),
                    .option("distill", .flag, default: "no",
                            help: "with sampler=sandwich: the smaller subnets learn the largest one's predictions instead of the labels"),
                ],
                examples: ["train steps=50 lr=3e-4 batch=4 seq=128", "train steps=200 warmup=20 accumulate=4 eval_every=25",
                           "train steps=200 sampler=sandwich distill=yes"]) { arguments, context in
            try runTraining(arguments, context)
        },

        Command("adapters save", summary: "Save the adapters in PEFT's layout (adapter_model.safetensors + adapter_config.json)",
                arguments: [.positional("path", .text, help: "a directory (created if needed)")],
                examples: ["adapters save ~/adapters/emma-r8"]) { arguments, context in
            let path = ((arguments.text("path") ?? "") as NSString).expandingTildeInPath
            try context.session.saveAdapters(to: path)
            let size = (try? FileManager.default.attributesOfItem(atPath: path + "/" + PEFTAdapters.weightsFile)[.size] as? NSNumber)?.intValue ?? 0
            return MimeBundle(plain: "saved \(path)/\(PEFTAdapters.weightsFile) (\(formatBytes(size))) and \(PEFTAdapters.configFile)")
        },

        Command("adapters load", summary: "Load PEFT-layout LoRA adapters onto the model (replacing any)",
                arguments: [.positional("path", .text, help: "a directory with adapter_model.safetensors and adapter_config.json")],
                examples: ["adapters load ~/adapters/emma-r8"]) { arguments, context in
            let path = ((arguments.text("path") ?? "") as NSString).expandingTildeInPath
            let set = try context.session.loadAdapters(from: path)
            return loraTable(set, model: try context.session.requireModel())
        },
    ]

    static func loraTable(_ set: LoRASet, model: LlamaModel) -> MimeBundle {
        let c = set.configuration
        let rows: [[String]] = c.targets.map { p in
            let (i, o) = p.shape(model.config)
            return [p.rawValue, "A \(c.rank)×\(i), B \(o)×\(c.rank)", String(c.rank * (i + o)), String(model.layers.count)]
        }
        let kind = c.quantizationAware ? "QA-SparsePEFT" : c.sparse ? "SparsePEFT" : "LoRA"
        var table = Table(title: "\(kind): rank \(c.rank), alpha \(formatCount(Double(c.alpha))) (scale \(String(format: "%.3g", c.alpha / Float(c.rank)))), "
                            + "dropout \(c.dropout): \(formatCount(Double(set.parameterCount))) trainable parameters "
                            + String(format: "(%.2f%% of the model)", 100 * Double(set.parameterCount) / Double(model.parameterCount)),
                          columns: ["projection", "shapes", "parameters per layer", "layers"],
                          alignments: [.left, .left, .right, .right], rows: rows)
        table.rows.append(["total", "", String(set.parameterCount), ""])
        return table.bundle
    }
}
