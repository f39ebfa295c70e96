import Foundation
import Tensors
import Transformer

/// Writes the model as it computes now as a GGUF file llama.cpp loads: unmerged adapters folded
/// in at their active rank (masked and on the grid for SparsePEFT / QA-SparsePEFT), the active
/// subnet cut out for real (an MLP narrowed to w channels is written w wide), and the recipe in
/// the metadata (`sculpt.recipe`).
///
/// Equal MLP widths give a plain `llama` file; per-layer widths give `deci` (§6.6), whose
/// `deci.feed_forward_length` is an array with one width per layer. Norms stay F32. With
/// `keep`, a quantized projection is written in the GGUF type that holds its values exactly
/// (symmetric INT4 in groups of 32 → Q4_0, symmetric INT8 in groups of 32 → Q8_0, others
/// → Q4_1 if it happens to hold them), every other tensor as F32; an error says which
/// projection no type holds and why.
public enum GGUFExport {
    public enum TensorType: String, CaseIterable, Sendable {
        /// Every case but `keep` is a writable type's ggml name in lower case.
        case f32, f16, q8_0, q4_0, q4_1, keep

        /// The type's row in the table; nil for `keep`, which chooses per tensor.
        var traits: GGMLTypeTraits? { GGMLTypeTraits.all.first { $0.name.lowercased() == rawValue } }

        var ggml: GGMLType? { traits.map(GGMLType.init) }

        /// llama.cpp's `general.file_type`.
        var fileType: UInt32? { traits?.llamaFileType }
    }

    /// What was written.
    public struct Report: Sendable {
        public var path: String
        public var architecture: String
        public var bytes: Int
        public var ffnWidths: [Int]
        /// Tensors per GGUF type.
        public var types: [String: Int]
        public var adaptersFolded: Int
        public var parameters: Int
    }

    public enum ExportError: Error, CustomStringConvertible {
        case notHeldExactly(tensor: String, reason: String)
        case badWidth(layer: Int, width: Int, block: Int)
        case skippedLayer(Int)

        public var description: String {
            switch self {
            case .notHeldExactly(let tensor, let reason): return "type=keep: no GGUF type holds \(tensor) exactly: \(reason)"
            case .badWidth(let layer, let width, let block):
                return "layer \(layer)'s MLP is \(width) wide, not a multiple of the \(block)-weight blocks of the type asked for: export as f32 or f16"
            case .skippedLayer(let layer):
                return "layer \(layer) is skipped in the active shape: a LoRA adapter file is for every layer of its base (a model with no layer kept has nothing to write)"
            }
        }
    }

    /// W (o, i) as the layer computes it now: the first o rows and i columns of the stored weight,
    /// plus the adapter's update at its active rank, gates, mask and grid.
    static func effectiveWeight(_ weight: Tensor, full: (inFeatures: Int, outFeatures: Int), outFeatures o: Int, inFeatures i: Int,
                                adapter: LoRAAdapter?) -> Tensor {
        let out = Tensor(uninitialized: [o, i])
        for row in 0..<o { (out.data + row * i).update(from: weight.data + row * full.inFeatures, count: i) }
        guard let adapter, !adapter.isMerged else { return out }
        let r = adapter.activeRank
        var b = Tensor(uninitialized: [o, r])
        for row in 0..<o {
            for k in 0..<r { b[row * r + k] = adapter.b[row * adapter.rank + k] * (adapter.gates?[k] ?? 1) }
        }
        let delta = Tensor(uninitialized: [o, i])
        gemm(transposeA: false, transposeB: false, m: o, n: i, k: r, alpha: adapter.scale, a: b.data, lda: r, b: adapter.a.data,
             ldb: adapter.inFeatures, c: delta.data, ldc: i)
        b = Tensor(zeros: [0])
        if let constraint = adapter.constraint {
            for row in 0..<o {
                for col in 0..<i {
                    let k = row * full.inFeatures + col
                    let d = delta[row * i + col] * constraint.mask[k]
                    if let (base, grid) = constraint.quantization {
                        // QA-SparsePEFT: Q(W_fp + ΔW) on the frozen grid.
                        let g = col / grid.group
                        let q = grid.quantize(base[k] + d, row: row, group: g)
                        out[row * i + col] = grid.scale(row, group: g) * Float(q - grid.zero(row, group: g))
                    } else {
                        out[row * i + col] += d
                    }
                }
            }
        } else {
            for k in 0..<(o * i) { out[k] += delta[k] }
        }
        return out
    }

    /// The GGUF blocks of one projection under `keep`: its grid's codes packed as the type that
    /// holds them exactly (checked against the weight the layer computes with).
    static func keptBlocks(_ name: String, _ w: Tensor, grid: GroupQuantizedMatrix?) throws -> (GGMLType, [UInt8])? {
        guard let grid else { return nil }
        let (rows, columns) = (w.shape[0], w.shape[1])
        // The grid must be what the layer computes with: its dequantized codes, cut to the subnet.
        let values = grid.dequantized()
        for r in 0..<rows {
            for c in 0..<columns where values[r * grid.columns + c] != w[r * columns + c] {
                throw ExportError.notHeldExactly(tensor: name, reason: "the weight left its INT\(grid.bits) grid (an adapter merged onto it?)")
            }
        }
        let candidates: [GGMLType] = grid.bits == 8 ? [.q8_0] : grid.symmetric ? [.q4_0] : [.q4_1]
        for type in candidates {
            if let bytes = GGUFWriter.blocks(of: grid, rows: rows, columns: columns, as: type) { return (type, bytes) }
        }
        let why: String
        let block = candidates[0].traits!.blockSize
        if grid.group != block {
            why = "its INT\(grid.bits) groups of \(grid.group) do not line up with GGUF's blocks of \(block) (quantize with group=\(block))"
        } else if !grid.symmetric {
            why = grid.bits == 8 ? "GGUF has no asymmetric 8-bit block (quantize with symmetric=yes for Q8_0)"
                : "an asymmetric grid's minimum −z·s is not a half float, as Q4_1 stores it (quantize with symmetric=yes for Q4_0)"
        } else {
            why = "its columns do not split into blocks of \(block)"
        }
        throw ExportError.notHeldExactly(tensor: name, reason: why)
    }

    /// Writes `model` (with the adapters attached to its layers folded in) to `path`.
    @discardableResult
    public static func write(model: LlamaModel, to path: String, type: TensorType, name: String,
                             recipe: [String], foldAdapters: Bool = true) throws -> Report {
        let c = model.config
        // A skipped layer is not written: the file has the kept blocks, numbered from 0 (depth).
        let kept = model.activeShape.keptLayers
        guard !kept.isEmpty else { throw ExportError.skippedLayer(0) }
        let widths = kept.map { model.activeShape.layers[$0].mlpWidth }
        let uniform = Set(widths).count == 1
        let architecture = uniform ? "llama" : "deci"
        if let block = type.traits?.blockSize, block > 1, let bad = widths.enumerated().first(where: { $0.element % block != 0 }) {
            throw ExportError.badWidth(layer: bad.offset, width: bad.element, block: block)
        }
        var writer = GGUFWriter()
        writer.set("general.architecture", .string(architecture))
        writer.set("general.name", .string(name))
        if let fileType = type.fileType { writer.set("general.file_type", .uint32(fileType)) }
        if uniform {
            var shaped = c
            shaped.ffnDim = widths[0]
            shaped.layers = kept.count
            for (key, value) in shaped.metadata { writer.set(key, value) }
        } else {
            let a = "deci"
            writer.set("\(a).block_count", .uint32(UInt32(kept.count)))
            writer.set("\(a).context_length", .uint32(UInt32(c.contextLength)))
            writer.set("\(a).embedding_length", .uint32(UInt32(c.dim)))
            writer.set("\(a).feed_forward_length", .array(.int32, widths.map { .int32(Int32($0)) }))
            writer.set("\(a).attention.head_count", .array(.int32, Array(repeating: .int32(Int32(c.heads)), count: kept.count)))
            writer.set("\(a).attention.head_count_kv", .array(.int32, Array(repeating: .int32(Int32(c.kvHeads)), count: kept.count)))
            writer.set("\(a).attention.key_length", .uint32(UInt32(c.headDim)))
            writer.set("\(a).attention.value_length", .uint32(UInt32(c.headDim)))
            writer.set("\(a).rope.dimension_count", .uint32(UInt32(c.headDim)))
            writer.set("\(a).rope.freq_base", .float32(c.ropeBase))
            writer.set("\(a).attention.layer_norm_rms_epsilon", .float32(c.normEps))
            writer.set("\(a).vocab_size", .uint32(UInt32(c.vocabSize)))
        }
        for (key, value) in model.tokenizerMetadata { writer.set(key, value) }
        writer.set("sculpt.recipe", .array(.string, recipe.map(GGUFValue.string)))

        var types = [String: Int]()
        var folded = 0, parameters = 0
        func add(_ tensorName: String, _ t: Tensor, _ chosen: GGMLType) throws {
            try writer.add(tensorName, t, as: chosen)
            types[chosen.description, default: 0] += 1
            parameters += t.count
        }
        let twoD = type.ggml ?? .f32
        /// `keep` writes a matrix loaded from Q4_0, Q4_1 or Q8_0 (and kept packed) as its blocks were.
        func addKept(_ tensorName: String, _ packed: BlockQuantizedMatrix?, rows: Int) -> Bool {
            guard type == .keep, let packed, let (traits, bytes) = packed.ggmlBlocks(rows: rows) else { return false }
            let blockType = GGMLType(traits)
            writer.add(tensorName, shape: [rows, packed.columns], type: blockType, bytes: bytes)
            types[blockType.description, default: 0] += 1
            parameters += rows * packed.columns
            return true
        }
        if !addKept("token_embd.weight", model.packedEmbedding, rows: c.vocabSize) {
            try add("token_embd.weight", model.float32Embedding, twoD)
        }
        for (n, l) in kept.enumerated() {
            let layer = model.layers[l]
            try add("blk.\(n).attn_norm.weight", layer.attentionNorm, .f32)
            try add("blk.\(n).ffn_norm.weight", layer.ffnNorm, .f32)
            for p in Projection.allCases {
                let (i, o) = p.shape(c, ffn: widths[n])
                let adapter = foldAdapters ? layer.adapters[p] as? LoRAAdapter : nil
                if adapter.map({ !$0.isMerged }) ?? false { folded += 1 }
                let w = effectiveWeight(layer.float32Weight(p), full: p.shape(c), outFeatures: o, inFeatures: i, adapter: adapter)
                let tensorName = "blk.\(n).\(p.ggufName).weight"
                // Blocks as loaded: no adapter folded in, and the inputs whole (a narrower MLP cuts rows only).
                if adapter == nil, let packed = layer.packed[p], i == packed.columns, addKept(tensorName, packed, rows: o) { continue }
                guard type == .keep else {
                    try add(tensorName, w, twoD)
                    continue
                }
                // The codes the layer computes with: an unmerged QA-SparsePEFT adapter's merge, else the layer's own.
                let grid = adapter.flatMap { $0.isMerged ? nil : $0.mergedCodes() } ?? (adapter.map { $0.isMerged || $0.constraint == nil } ?? true ? layer.quantized[p] : nil)
                if let (blockType, bytes) = try keptBlocks(tensorName, w, grid: grid) {
                    writer.add(tensorName, shape: w.shape, type: blockType, bytes: bytes)
                    types[blockType.description, default: 0] += 1
                    parameters += w.count
                } else {
                    try add(tensorName, w, .f32)
                }
            }
        }
        try add("output_norm.weight", model.finalNorm, .f32)
        if model.hasOutput, !addKept("output.weight", model.packedOutput, rows: c.vocabSize), let output = model.float32Output {
            try add("output.weight", output, twoD)
        }
        try writer.write(to: path)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        return Report(path: path, architecture: architecture, bytes: bytes, ffnWidths: widths, types: types, adaptersFolded: folded,
                      parameters: parameters)
    }

    /// What an adapter file holds.
    public struct AdapterReport: Sendable {
        public var path: String
        public var alpha: Float
        public var ranks: [Int]
        public var tensors: Int
        public var bytes: Int
        /// True when the ranks differ per module: the scale is folded into B and alpha is 0.
        public var scaleInB: Bool
    }

    /// Writes the unmerged adapters as a llama.cpp LoRA GGUF (§6.5), for `--lora` on the base
    /// written by `write(... foldAdapters: false)`: the open (gated) or active ranks only, the
    /// rows and columns of the active MLP width. llama.cpp scales by alpha / rank with rank =
    /// lora_b's ne[0]: with one rank everywhere alpha = s · rank; with ranks that differ per
    /// module (ALoRA) no single alpha fits, so s goes into B and alpha = 0 (scale 1).
    @discardableResult
    public static func writeAdapters(model: LlamaModel, set: LoRASet, to path: String, name: String, recipe: [String]) throws -> AdapterReport {
        guard !set.isMerged else { throw LoRAError.mismatch("the adapters are merged into the weights: `lora unmerge` first, or export the merged model") }
        if set.ordered.contains(where: { $0.adapter.constraint != nil }) {
            throw LoRAError.mismatch("SparsePEFT's masked update M ⊙ (s·B·A) is not a low-rank LoRA that llama.cpp could apply: "
                                     + "merge it (`lora merge`) and `export gguf` the model")
        }
        if let skipped = model.activeShape.layers.firstIndex(where: { !$0.kept }) { throw ExportError.skippedLayer(skipped) }
        let c = model.config
        var entries = [(name: String, a: Tensor, b: Tensor, rank: Int, scale: Float)]()
        for (l, p, adapter) in set.ordered {
            let (i, o) = p.shape(c, ffn: model.activeShape.layers[l].mlpWidth)
            let open = (0..<adapter.activeRank).filter { (adapter.gates?[$0] ?? 1) != 0 }
            guard !open.isEmpty else { continue }
            let a = Tensor(uninitialized: [open.count, i])
            let b = Tensor(uninitialized: [o, open.count])
            for (k, j) in open.enumerated() {
                (a.data + k * i).update(from: adapter.a.data + j * adapter.inFeatures, count: i)
                for row in 0..<o { b[row * open.count + k] = adapter.b[row * adapter.rank + j] }
            }
            entries.append(("blk.\(l).\(p.ggufName).weight", a, b, open.count, adapter.scale))
        }
        guard !entries.isEmpty else { throw LoRAError.mismatch("every rank is closed: there is nothing to export") }
        let scales = Set(set.ordered.map(\.adapter.scale))
        let ranks = entries.map(\.rank)
        let uniform = Set(ranks).count == 1 && scales.count == 1
        let alpha = uniform ? scales.first! * Float(ranks[0]) : 0
        var writer = GGUFWriter()
        writer.set("general.architecture", .string(Set(model.activeShape.mlpWidths).count == 1 ? "llama" : "deci"))
        writer.set("general.type", .string("adapter"))
        writer.set("general.name", .string(name))
        writer.set("adapter.type", .string("lora"))
        writer.set("adapter.lora.alpha", .float32(alpha))
        writer.set("sculpt.recipe", .array(.string, recipe.map(GGUFValue.string)))
        for entry in entries {
            if !uniform { for k in 0..<entry.b.count { entry.b[k] *= entry.scale } }
            try writer.add(entry.name + ".lora_a", entry.a, as: .f32)
            try writer.add(entry.name + ".lora_b", entry.b, as: .f32)
        }
        try writer.write(to: path)
        let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? NSNumber)?.intValue ?? 0
        return AdapterReport(path: path, alpha: alpha, ranks: ranks, tensors: 2 * entries.count, bytes: bytes, scaleInB: !uniform)
    }
}
