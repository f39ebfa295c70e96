import Foundation
import Tensors
import Transformer

/// Perplexity over a token stream, in windows that slide by a stride: every token after the
/// first is scored exactly once, with up to `window − 1` tokens of context (Hugging Face's
/// sliding-window recipe: each window scores only the tokens the previous one did not).
public struct PerplexityResult: Sendable, Equatable {
    /// Tokens scored.
    public var tokens: Int
    /// Σ −log p over the scored tokens (nats).
    public var negativeLogLikelihood: Double
    /// Words and UTF-8 bytes in the scored text, for per-word and per-byte figures.
    public var words: Int
    public var bytes: Int
    public var window: Int
    public var stride: Int

    public var meanLoss: Double { negativeLogLikelihood / Double(max(1, tokens)) }
    public var perplexityPerToken: Double { exp(meanLoss) }
    public var perplexityPerWord: Double { exp(negativeLogLikelihood / Double(max(1, words))) }
    public var bitsPerByte: Double { negativeLogLikelihood / Double(max(1, bytes)) / log(2) }
}

public enum Perplexity {
    public struct Parameters: Sendable {
        /// Tokens of context per forward pass (at most the model's context length).
        public var window: Int = 512
        /// How far each window moves; the last `stride` positions of a window are scored.
        public var stride: Int = 512
        /// Windows per forward pass.
        public var batch: Int = 1

        public init(window: Int = 512, stride: Int = 512, batch: Int = 1) {
            self.window = window
            self.stride = stride
            self.batch = batch
        }
    }

    public struct Progress: Sendable {
        public var scored: Int
        public var total: Int
        public var runningLoss: Double
    }

    /// Scores `tokens` (the first token is context only). `text` of the same tokens gives the
    /// word and byte counts. Throws `CancellationError` between windows when cancelled; the
    /// windows done so far are lost to the caller but nothing else changes.
    public static func evaluate(model: LlamaModel, tokens: [Int32], parameters p: Parameters = Parameters(),
                                cancellation: CancellationToken? = nil,
                                progress: ((Progress) -> Void)? = nil) throws -> PerplexityResult {
        precondition(p.window >= 2 && p.stride >= 1 && p.stride <= p.window, "need 1 ≤ stride ≤ window, window ≥ 2")
        let window = min(p.window, model.config.contextLength)
        let stride = min(p.stride, window)
        // Windows [start, end) score the targets previousEnd..<end: every token after the first
        // exactly once. A window starts at most one token before the previous end, so that the
        // previous window's last token is context for the first unscored one.
        var plans = [(start: Int, end: Int, scoredFrom: Int)]()
        var previousEnd = 1  // token 0 has no context: never scored
        var start = 0
        while previousEnd < tokens.count {
            let end = min(start + window, tokens.count)
            plans.append((start, end, previousEnd))
            previousEnd = end
            start = min(start + stride, end - 1)
        }
        var nll = 0.0
        var scored = 0
        let total = tokens.count - 1
        var workspace: ForwardWorkspace?
        for plan in plans {
            try cancellation?.check()
            let length = plan.end - plan.start
            if workspace?.seq != length { workspace = ForwardWorkspace(config: model.config, batch: 1, seq: length) }
            let logits = model.forward(tokens: Array(tokens[plan.start..<plan.end]), batch: 1, seq: length, logits: .all,
                                       workspace: workspace)
            // Position i predicts token i + 1; score targets scoredFrom..<end.
            var targets = [Int32](repeating: -1, count: length)
            for position in (plan.scoredFrom - 1)..<(plan.end - 1) { targets[position - plan.start] = tokens[position + 1] }
            let losses = Tensor(zeros: [length])
            let counted = targets.withUnsafeBufferPointer {
                crossEntropyForward(losses: losses.data, logits: logits.data, targets: $0.baseAddress!, rows: length, vocab: model.config.vocabSize)
            }
            for i in 0..<length { nll += Double(losses[i]) }
            scored += counted
            progress?(Progress(scored: scored, total: total, runningLoss: nll / Double(max(1, scored))))
        }
        let text = model.tokenizer.decode(Array(tokens.dropFirst()))
        return PerplexityResult(tokens: scored, negativeLogLikelihood: nll, words: TextCorpus.wordCount(text),
                                bytes: text.utf8.count, window: window, stride: stride)
    }
}
