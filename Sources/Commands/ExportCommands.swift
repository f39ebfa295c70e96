import Compression
import Display
import Foundation
import Transformer
import Workbench

extension CommandTable {
    static let exportCommands: [Command] = [
        Command("export gguf", summary: "Write the model as it computes now as a GGUF file llama.cpp runs (adapters merged, the subnet cut out)",
                details: "Unmerged adapters are folded in at their active ranks (SparsePEFT masked, QA-SparsePEFT on the grid), unless "
                    + "`merge=no` (then `export adapters gguf` writes them for llama.cpp's --lora). The active subnet is cut out for real: "
                    + "an MLP narrowed to w channels is written w wide. Equal widths give a `llama` file; per-layer widths give llama.cpp's "
                    + "`deci` architecture (per-layer feed_forward_length), which `model load` also reads. Norms stay F32. `type=keep` "
                    + "writes each quantized projection in the GGUF type that holds it exactly (symmetric INT4 groups of 32 → Q4_0, "
                    + "symmetric INT8 groups of 32 → Q8_0) and everything else as F32, or fails naming the projection and why. The "
                    + "recipe (`status`) goes into the metadata as `sculpt.recipe`.",
                arguments: [
                    .positional("path", .text, help: "the .gguf file to write"),
                    .option("type", .choice(GGUFExport.TensorType.allCases.map(\.rawValue)), default: "f32", help: "tensor type of the 2-D weights"),
                    .option("merge", .flag, default: "yes", help: "fold unmerged adapters into the weights"),
                ],
                examples: ["export gguf build/smollm2-q8.gguf type=q8_0", "export gguf build/sqft-int4.gguf type=keep",
                           "export gguf build/base.gguf merge=no"]) { arguments, context in
            let path = ((arguments.text("path") ?? "") as NSString).expandingTildeInPath
            guard !path.isEmpty else { throw CommandError(.missingArgument, "`export gguf` needs a file path, e.g. `export gguf build/model.gguf`") }
            let type = GGUFExport.TensorType(rawValue: arguments.text("type")!)!
            let report = try context.session.exportGGUF(to: path, type: type, merge: arguments.flag("merge") ?? true)
            let widths = Set(report.ffnWidths).count == 1 ? "\(report.ffnWidths[0]) in every layer"
                : report.ffnWidths.map(String.init).joined(separator: ",")
            let rows: [[String]] = [
                ["file", "\(report.path) (\(formatBytes(report.bytes)))"],
                ["architecture", report.architecture],
                ["MLP widths", widths],
                ["tensors", report.types.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")],
                ["parameters", formatCount(Double(report.parameters))],
                ["adapters folded in", String(report.adaptersFolded)],
            ]
            return Table(title: "Exported GGUF", columns: ["", "value"], rows: rows).bundle
        },

        Command("export adapters", summary: "Write the unmerged adapters as a llama.cpp LoRA GGUF (for --lora)",
                details: "Tensors `blk.N.<weight>.lora_a` (rank × in) and `.lora_b` (out × rank), the open or active ranks only, at the "
                    + "active MLP widths (pair it with `export gguf ... merge=no`). llama.cpp scales each by alpha / rank: with one rank "
                    + "everywhere alpha = s · rank; with ranks that differ per module (ALoRA) s is folded into lora_b and alpha is 0 "
                    + "(llama.cpp then scales by 1). SparsePEFT adapters are not low-rank: merge them instead.",
                arguments: [.positional("format", .choice(["gguf"]), help: "gguf (PEFT's layout: `adapters save`)"),
                            .positional("path", .text, help: "the .gguf file to write")],
                examples: ["export adapters gguf build/adapters.gguf"]) { arguments, context in
            let path = ((arguments.text("path") ?? "") as NSString).expandingTildeInPath
            guard !path.isEmpty else { throw CommandError(.missingArgument, "`export adapters gguf` needs a file path") }
            let report = try context.session.exportAdaptersGGUF(to: path)
            let ranks = Set(report.ranks).count == 1 ? "\(report.ranks[0]) in every module" : "\(report.ranks.min()!)–\(report.ranks.max()!) per module"
            let rows: [[String]] = [
                ["file", "\(report.path) (\(formatBytes(report.bytes)))"],
                ["tensors", String(report.tensors)],
                ["ranks", ranks],
                ["adapter.lora.alpha", report.scaleInB ? "0 (the scale is folded into lora_b)" : String(format: "%g", report.alpha)],
            ]
            return Table(title: "Exported LoRA adapters (GGUF)", columns: ["", "value"], rows: rows).bundle
        },
    ]
}
