import Foundation

/// What of one block a forward runs.
public struct LayerShape: Hashable, Sendable {
    /// Whether the block runs at all; a skipped block passes its residual stream through
    /// unchanged (elastic depth: LLaMA-NAS, layer dropping).
    public var kept: Bool
    /// MLP channels in use: the first `mlpWidth` outputs of gate and up and inputs of down
    /// (elastic width, LoNAS mode B and LLaMA-NAS).
    public var mlpWidth: Int
    /// Attention heads in use. Every head, for now: the field is where head pruning will go,
    /// and a shape that names fewer is refused until the attention kernels take it.
    public var heads: Int

    public init(kept: Bool = true, mlpWidth: Int, heads: Int) {
        self.kept = kept
        self.mlpWidth = mlpWidth
        self.heads = heads
    }
}

/// The model's active shape: per layer, kept or skipped and how wide. One value, so that a
/// method that narrows or drops layers for a while says so in one call (`withShape`), and
/// every forward, the cost, the export and the card read the same thing.
public struct ActiveShape: Hashable, Sendable {
    public var layers: [LayerShape]

    public init(layers: [LayerShape]) { self.layers = layers }

    /// Every layer kept, at full width with every head.
    public static func full(_ c: LlamaConfiguration) -> ActiveShape {
        ActiveShape(layers: Array(repeating: LayerShape(mlpWidth: c.ffnDim, heads: c.heads), count: c.layers))
    }

    /// Every layer kept at the given MLP widths.
    public static func widths(_ widths: [Int], _ c: LlamaConfiguration) -> ActiveShape {
        ActiveShape(layers: widths.map { LayerShape(mlpWidth: $0, heads: c.heads) })
    }

    public var mlpWidths: [Int] { layers.map(\.mlpWidth) }
    public var keptLayers: [Int] { layers.indices.filter { layers[$0].kept } }

    /// Whether a model of `c` can run this shape: one entry per layer, widths within what the
    /// layers store, every head.
    func problem(for c: LlamaConfiguration, stored: [Int]) -> String? {
        guard layers.count == c.layers else { return "a shape of \(layers.count) layers for a model of \(c.layers)" }
        for (l, s) in layers.enumerated() {
            if !(1...stored[l]).contains(s.mlpWidth) { return "layer \(l): an MLP width of \(s.mlpWidth), outside 1…\(stored[l])" }
            if s.heads != c.heads { return "layer \(l): \(s.heads) heads; a block runs all \(c.heads) for now" }
        }
        return nil
    }
}

extension LlamaModel {
    /// Every layer kept at the width it stores (the configuration's, or a `deci` file's own).
    public var fullShape: ActiveShape { .widths(layers.map(\.storedFFN), config) }

    /// Runs `body` with `shape` active and puts the shape before back afterwards, also when
    /// `body` throws: how a method measures a narrower or shallower model for a while.
    public func withShape<T>(_ shape: ActiveShape, _ body: () throws -> T) rethrows -> T {
        let saved = activeShape
        activeShape = shape
        defer { activeShape = saved }
        return try body()
    }

    /// Runs `body` on the base model at its full shape: adapters off and every layer kept and
    /// wide, as block-by-block methods (Wanda, GPTQ, channel importance) calibrate. Both come
    /// back as they were, also when `body` throws.
    public func withBaseModelAtFullShape<T>(_ body: () throws -> T) rethrows -> T {
        let savedAdapters = layers.map(\.adapters)
        defer { for (layer, adapters) in zip(layers, savedAdapters) { layer.adapters = adapters } }
        for layer in layers { layer.adapters = [:] }
        return try withShape(fullShape, body)
    }
}
