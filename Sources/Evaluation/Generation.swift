import Foundation
import Tensors
import Transformer

/// Text generation with a KV cache: greedy at temperature 0, else sampling from
/// softmax(logits / temperature), optionally restricted to the top k.
public enum Generation {
    public struct Parameters: Sendable {
        public var maxTokens: Int = 32
        public var temperature: Float = 0
        public var topK: Int = 0
        public var seed: UInt64 = 0
        /// Stop at the end-of-sequence token.
        public var stopAtEOS = true

        public init(maxTokens: Int = 32, temperature: Float = 0, topK: Int = 0, seed: UInt64 = 0, stopAtEOS: Bool = true) {
            self.maxTokens = maxTokens
            self.temperature = temperature
            self.topK = topK
            self.seed = seed
            self.stopAtEOS = stopAtEOS
        }
    }

    public struct Result: Sendable {
        public var promptTokens: Int
        public var tokens: [Int32]
        public var text: String
        /// Seconds for the prompt (prefill) and for the generated tokens.
        public var prefillSeconds: Double
        public var decodeSeconds: Double
        public var stoppedAtEOS: Bool
        public var tokensPerSecond: Double { Double(tokens.count) / max(decodeSeconds, 1e-9) }
    }

    /// Generates after `prompt`; `onText` receives text as soon as it forms whole characters.
    /// Cancellation stops between tokens and returns what was generated so far.
    public static func generate(model: LlamaModel, prompt: [Int32], parameters p: Parameters,
                                cancellation: CancellationToken? = nil, onText: ((String) -> Void)? = nil) -> Result {
        precondition(!prompt.isEmpty, "generation needs a prompt of at least one token")
        let capacity = min(model.config.contextLength, prompt.count + p.maxTokens)
        let cache = KVCache(config: model.config, capacity: capacity)
        var rng = SeededGenerator(seed: p.seed)
        var decoder = UTF8StreamDecoder()
        var generated = [Int32]()
        var stoppedAtEOS = false

        let prefillStart = Date()
        var logits = model.forward(tokens: prompt, batch: 1, seq: prompt.count, logits: .last, cache: cache).array
        let prefillSeconds = Date().timeIntervalSince(prefillStart)
        let decodeStart = Date()
        while generated.count < p.maxTokens && cache.length < capacity + 1 {
            if cancellation?.isCancelled == true { break }
            let next = choose(logits, p, &rng)
            if p.stopAtEOS, next == model.tokenizer.eosID { stoppedAtEOS = true; break }
            generated.append(next)
            let text = decoder.push(model.tokenizer.bytes(of: next))
            if !text.isEmpty { onText?(text) }
            if cache.length >= capacity { break }
            logits = model.decode(token: next, cache: cache).array
        }
        let rest = decoder.flush()
        if !rest.isEmpty { onText?(rest) }
        return Result(promptTokens: prompt.count, tokens: generated, text: model.tokenizer.decode(generated),
                      prefillSeconds: prefillSeconds, decodeSeconds: Date().timeIntervalSince(decodeStart), stoppedAtEOS: stoppedAtEOS)
    }

    static func choose(_ logits: [Float], _ p: Parameters, _ rng: inout SeededGenerator) -> Int32 {
        if p.temperature <= 0 {
            var best = 0
            for i in 1..<logits.count where logits[i] > logits[best] { best = i }
            return Int32(best)
        }
        var candidates = Array(logits.indices)
        if p.topK > 0 && p.topK < logits.count {
            candidates = Array(candidates.sorted { logits[$0] > logits[$1] }.prefix(p.topK))
        }
        let maximum = candidates.map { logits[$0] }.max()!
        let weights = candidates.map { Double(expf((logits[$0] - maximum) / p.temperature)) }
        var u = Double(rng.nextUniform()) * weights.reduce(0, +)
        for (candidate, weight) in zip(candidates, weights) {
            u -= weight
            if u <= 0 { return Int32(candidate) }
        }
        return Int32(candidates.last!)
    }
}
