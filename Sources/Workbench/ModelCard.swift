import Foundation
import Tensors
import Transformer

/// What a loaded model is: shape, size and cost, for `model info`.
public struct ModelCard: Sendable {
    public var name: String
    public var source: String
    public var config: LlamaConfiguration
    public var parameters: Int
    public var tiedOutput: Bool
    /// Bytes the weights take in memory, in whichever forms they are.
    public var weightBytes: Int
    /// Matrices the products compute from packed blocks, by format, and matrices in Float32 only.
    public var packedMatrices: [String: Int] = [:]
    public var float32Matrices = 0
    /// The instruction set the quantized products run on.
    public var kernelPath = KernelPath.current
    /// Bytes of the file it came from, and its tensor types (nil for a random model).
    public var fileBytes: Int?
    public var fileTypes: String?
    public var tokenizer: String
    /// MLP width per layer when the layers differ (a `deci` file, a cut-out subnet); nil when uniform.
    public var ffnWidths: [Int]?
    /// Projections stored quantized: packed bytes, the Float32 bytes they stand for, how many.
    public var packed: (packed: Int, float32: Int, projections: Int)?
    /// Multiply-accumulates per token for projections and the output head (computed).
    /// Multiply-accumulates per token of the projections at each layer's own MLP width, and the head.
    public var macsPerToken: Int { config.macsPerToken - (ffnWidths ?? []).reduce(0) { $0 + 3 * (config.ffnDim - $1) * config.dim } }

    init(name: String, source: String, model: LlamaModel, fileBytes: Int?, fileTypes: String?) {
        self.name = name
        self.source = source
        config = model.config
        let widths = model.activeShape.mlpWidths
        ffnWidths = Set(widths).count == 1 && widths.first == model.config.ffnDim ? nil : widths
        // A narrower layer's MLP is stored padded with zeros to the widest: not parameters.
        parameters = model.parameterCount - widths.reduce(0) { $0 + 3 * (model.config.ffnDim - $1) * model.config.dim }
        tiedOutput = !model.hasOutput
        weightBytes = 0
        self.fileBytes = fileBytes
        self.fileTypes = fileTypes
        tokenizer = model.tokenizer.mergeList.isEmpty
            ? "bytes (\(model.tokenizer.vocabularySize) tokens)"
            : "byte-level BPE, \(model.tokenizer.vocabularySize) tokens, pre-tokenizer \(model.tokenizer.preTokenizer)"
        refreshMemory(model)
    }

    /// Reads the weights' forms and bytes again (a method may have converted or packed some).
    mutating func refreshMemory(_ model: LlamaModel) {
        weightBytes = model.weightBytes
        (packedMatrices, float32Matrices) = model.storageSummary
        kernelPath = KernelPath.current
    }

    /// Label/value rows, in reading order.
    public var rows: [(String, String)] {
        var out: [(String, String)] = [
            ("model", name),
            ("source", source),
            ("layers", String(config.layers)),
            ("width (dim)", String(config.dim)),
            ("attention heads", "\(config.heads) query, \(config.kvHeads) key/value (head dim \(config.headDim))"),
            ("MLP width", ffnWidths.map { w in "per layer \(w.min()!)–\(w.max()!) (mean \(w.reduce(0, +) / w.count)): " + w.map(String.init).joined(separator: ",") }
                ?? String(config.ffnDim)),
            ("vocabulary", String(config.vocabSize)),
            ("context", String(config.contextLength)),
            ("RoPE base", formatCount(Double(config.ropeBase))),
            ("parameters", "\(formatCount(Double(parameters))) (\(parameters))" + (tiedOutput ? ", output tied to the embedding" : "")),
            ("MACs per token", "\(formatCount(Double(macsPerToken))) (computed; + attention \(formatCount(Double(config.attentionMACs(position: 0))))·(position+1))"),
            ("memory", "\(formatBytes(weightBytes)) of weights" + (packedMatrices.isEmpty ? " (Float32)" : ": "
                + packedMatrices.sorted { $0.key < $1.key }.map { "\($0.value) \($0.value == 1 ? "matrix" : "matrices") \($0.key)" }.joined(separator: ", ")
                + (float32Matrices > 0 ? ", \(float32Matrices) Float32" : ""))),
        ]
        if !packedMatrices.isEmpty {
            let layout: String
            switch kernelPath {
            case .avx512vnni, .avx2: layout = "; Q8_0, Q4_0, Q4_1 and symmetric grids interleaved in groups of 16 rows"
            case .scalar: layout = ""
            }
            out.append(("kernels", "packed products on \(kernelPath.rawValue), activations quantized to 8 bits per block of 32" + layout
                        + " (this CPU can run: \(KernelPath.supported.map(\.rawValue).joined(separator: ", ")))"))
        }
        if let packed, packed.projections > 0 {
            out.append(("quantized", "\(packed.projections) projections quantized, \(formatBytes(packed.packed)) packed (\(formatBytes(packed.float32)) as Float32, "
                        + String(format: "%.1f×", Double(packed.float32) / Double(max(1, packed.packed))) + " smaller); a Float32 copy "
                        + "is kept for the compression methods"))
        }
        if let fileBytes { out.append(("file", "\(formatBytes(fileBytes))" + (fileTypes.map { ", \($0)" } ?? ""))) }
        out.append(("tokenizer", tokenizer))
        return out
    }
}

/// 134.5M, 28.3k, 512.
public func formatCount(_ x: Double) -> String {
    let a = abs(x)
    if a >= 1e9 { return String(format: "%.2fG", x / 1e9) }
    if a >= 1e6 { return String(format: "%.1fM", x / 1e6) }
    if a >= 1e4 { return String(format: "%.1fk", x / 1e3) }
    return x == x.rounded() ? String(Int(x)) : String(format: "%.3g", x)
}

/// 538.1 MB.
public func formatBytes(_ n: Int) -> String {
    let x = Double(n)
    if x >= 1e9 { return String(format: "%.2f GB", x / 1e9) }
    if x >= 1e6 { return String(format: "%.1f MB", x / 1e6) }
    if x >= 1e3 { return String(format: "%.1f kB", x / 1e3) }
    return "\(n) B"
}
