import Foundation
import Tensors
import Transformer

extension LlamaModel {
    /// Runs `body` on the base model at its full MLP width: adapters off and every layer's MLP
    /// wide, as block-by-block methods (Wanda, GPTQ) calibrate. Both come back as they were,
    /// also when `body` throws.
    func withBaseModelAtFullWidth<T>(_ body: () throws -> T) rethrows -> T {
        let savedAdapters = layers.map(\.adapters)
        let savedWidths = layers.map(\.activeFFN)
        defer {
            for (layer, (adapters, width)) in zip(layers, zip(savedAdapters, savedWidths)) {
                layer.adapters = adapters
                layer.activeFFN = width
            }
        }
        for layer in layers {
            layer.adapters = [:]
            layer.activeFFN = config.ffnDim
        }
        return try body()
    }
}
