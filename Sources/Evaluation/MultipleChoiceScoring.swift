import Foundation
import Tensors
import Transformer

/// Multiple-choice scoring by log-likelihood, as BIG-bench and lm-eval-harness score causal models:
/// each choice's tokens after the prompt's, log P(choice | prompt) = Σ log p(cᵢ | prompt, c<ᵢ).
/// `acc` takes the choice with the highest log-likelihood; `acc_norm` divides it by the choice's
/// length in characters first (lm-eval's length normalization). A prediction earns the example's
/// target score for that choice (1 or 0: the accuracy for single-answer tasks).
///
/// The prompt and each choice are tokenized apart and joined, with nothing added between them
/// (the output prefix ends in a space where one belongs). An empty prompt becomes the model's
/// BOS (or EOS) token, so the first token of a choice has a context.
public enum MultipleChoiceScoring {
    public struct Parameters: Sendable {
        /// Examples scored per task (the first N); nil for all.
        public var limit: Int?
        /// Solved examples put before each question, drawn from the task's others.
        public var shots = 0
        public var seed: UInt64 = 0

        public init(limit: Int? = nil, shots: Int = 0, seed: UInt64 = 0) {
            self.limit = limit
            self.shots = shots
            self.seed = seed
        }
    }

    /// One task's figures. With an interrupt, `count` says how many examples were scored.
    public struct TaskResult: Sendable {
        public var name: String
        public var count: Int
        public var available: Int
        public var accuracy: Double
        public var accuracyStandardError: Double
        public var normalizedAccuracy: Double
        public var normalizedStandardError: Double
        /// The share of examples whose correct choice is the greedy continuation, for tasks that
        /// report it (`MultipleChoiceTask.scoresGreedy`).
        public var greedyAccuracy: Double?
        public var greedyStandardError: Double?
        public var chance: Double
        public var choices: Double
        public var seconds: Double
    }

    /// One choice's score: its log-likelihood after the prompt, and whether every one of its
    /// tokens is the most likely token at its position (greedy decoding would write it; LAMBADA's
    /// exact match, lm-eval's `is_greedy`).
    public struct ChoiceScore: Sendable, Equatable {
        public var logLikelihood: Double
        public var isGreedy: Bool
    }

    public struct Progress: Sendable {
        public var task: String
        public var done: Int
        public var total: Int
        public var accuracy: Double
    }

    /// The prompt's tokens for an example (empty → one BOS/EOS token).
    public static func promptTokens(_ text: String, tokenizer: ByteLevelBPE) -> [Int32] {
        let tokens = tokenizer.encode(text)
        return tokens.isEmpty ? [tokenizer.bosID ?? tokenizer.eosID ?? 0] : tokens
    }

    /// Log-likelihood of each choice after the prompt, and whether it is the greedy continuation.
    /// The prompt runs once (its keys and values cached); the choices then run as one batch of
    /// continuations over it, so a question with seven choices costs one prompt and seven short
    /// continuations, not seven prompts. log p(c₀ | prompt) comes from the prompt's last position,
    /// log p(cₜ₊₁ | prompt, c≤ₜ) from continuation row t. Prompts that do not fit the context with
    /// the choice take the batched path below, which keeps the prompt's end.
    public static func logLikelihoods(model: LlamaModel, prompt: [Int32], choices: [[Int32]]) -> [ChoiceScore] {
        let longest = choices.map(\.count).max() ?? 0
        guard !prompt.isEmpty, prompt.count + longest <= model.config.contextLength, choices.allSatisfy({ !$0.isEmpty }) else {
            return batchedLogLikelihoods(model: model, prompt: prompt, choices: choices)
        }
        let vocab = model.config.vocabSize
        let cache = KVCache(config: model.config, capacity: prompt.count)
        let last = model.forward(tokens: prompt, batch: 1, seq: prompt.count, logits: .last, cache: cache)
        // First tokens: from the prompt's last logits, one row shared by every choice.
        let lse = Double(logSumExp(last.data, vocab))
        let mostLikely = Int32(rowArgmax(last.data, vocab))
        var scores = choices.map { ChoiceScore(logLikelihood: Double(last[Int($0[0])]) - lse, isGreedy: $0[0] == mostLikely) }
        let seq = longest - 1
        guard seq > 0 else { return scores }
        var tokens = [Int32](), scored = [Int](), targets = [Int32](), owner = [Int]()
        for (i, choice) in choices.enumerated() {
            tokens += Array(choice.prefix(seq)) + [Int32](repeating: choice[0], count: seq - min(seq, choice.count))
            for t in 0..<(choice.count - 1) {
                scored.append(i * seq + t)
                targets.append(choice[t + 1])
                owner.append(i)
            }
        }
        guard !scored.isEmpty else { return scores }
        let logits = model.forwardContinuations(tokens: tokens, batch: choices.count, seq: seq, cache: cache, logits: .rows(scored))
        accumulate(into: &scores, logits: logits, targets: targets, owner: owner, vocab: vocab)
        return scores
    }

    /// Every choice as its own row, prompt + choice, padded at the end (causal attention: padding
    /// after a row's last token changes nothing before it). Prompts longer than the context keep
    /// their end. The reference the cached path is checked against.
    static func batchedLogLikelihoods(model: LlamaModel, prompt: [Int32], choices: [[Int32]]) -> [ChoiceScore] {
        let context = model.config.contextLength
        let rows = choices.map { choice -> (tokens: [Int32], scoredFrom: Int) in
            let kept = Array(choice.prefix(context - 1))
            let p = Array(prompt.suffix(context - kept.count))
            return (p + kept, p.count)
        }
        let seq = max(1, rows.map(\.tokens.count).max() ?? 1)
        let pad = model.tokenizer.eosID ?? 0
        var tokens = [Int32](), scored = [Int](), targets = [Int32](), owner = [Int]()
        for (i, row) in rows.enumerated() {
            tokens += row.tokens + [Int32](repeating: pad, count: seq - row.tokens.count)
            // Position j predicts token j + 1: only the positions before the choice's tokens get logits.
            for j in max(0, row.scoredFrom - 1)..<max(0, row.tokens.count - 1) {
                scored.append(i * seq + j)
                targets.append(row.tokens[j + 1])
                owner.append(i)
            }
        }
        var scores = [ChoiceScore](repeating: ChoiceScore(logLikelihood: 0, isGreedy: true), count: rows.count)
        guard !scored.isEmpty else { return scores }
        let logits = model.forward(tokens: tokens, batch: rows.count, seq: seq, logits: .rows(scored))
        accumulate(into: &scores, logits: logits, targets: targets, owner: owner, vocab: model.config.vocabSize)
        return scores
    }

    /// Adds log p(target) of each scored row to its choice, and clears the choice's `isGreedy`
    /// where the row's most likely token is not the target.
    static func accumulate(into scores: inout [ChoiceScore], logits: Tensor, targets: [Int32], owner: [Int], vocab: Int) {
        let losses = Tensor(zeros: [targets.count])
        _ = targets.withUnsafeBufferPointer {
            crossEntropyForward(losses: losses.data, logits: logits.data, targets: $0.baseAddress!, rows: targets.count, vocab: vocab)
        }
        for (k, i) in owner.enumerated() {
            scores[i].logLikelihood -= Double(losses[k])
            if rowArgmax(logits.data + k * vocab, vocab) != Int(targets[k]) { scores[i].isGreedy = false }
        }
    }

    /// The index of a row's largest logit (the first, on ties).
    static func rowArgmax(_ row: UnsafeMutablePointer<Float>, _ count: Int) -> Int {
        var best = 0
        for j in 1..<count where row[j] > row[best] { best = j }
        return best
    }

    /// Scores the tasks in order. An interrupt stops between examples and returns what was scored
    /// (`interrupted` true): the examples done so far count, and the results say how many.
    public static func evaluate(model: LlamaModel, tasks: [MultipleChoiceTask], parameters p: Parameters = Parameters(),
                                cancellation: CancellationToken? = nil,
                                progress: ((Progress) -> Void)? = nil) -> (results: [TaskResult], interrupted: Bool) {
        var results = [TaskResult]()
        let total = tasks.reduce(0) { $0 + min($1.examples.count, p.limit ?? .max) }
        var done = 0
        for task in tasks {
            let started = Date()
            let examples = Array(task.examples.prefix(p.limit ?? .max))
            var plain = [Double](), normalized = [Double](), greedy = [Double](), chance = [Double](), choiceCounts = [Double]()
            var interrupted = false
            for (index, example) in examples.enumerated() {
                if cancellation?.isCancelled ?? false { interrupted = true; break }
                let shots = shotExamples(for: index, in: task.examples, count: p.shots, seed: p.seed)
                let prompt = promptTokens(task.format.prompt(example, shots: shots), tokenizer: model.tokenizer)
                let choices = example.choices.map { model.tokenizer.encode($0) }
                let scores = logLikelihoods(model: model, prompt: prompt, choices: choices)
                let ll = scores.map(\.logLikelihood)
                let lengths = example.choices.map { Double(max(1, $0.unicodeScalars.count)) }
                plain.append(example.scores[argmax(ll)])
                // Greedy exact match: the best-scored correct choice is what greedy decoding writes.
                greedy.append(example.scores.indices.contains { example.scores[$0] == 1 && scores[$0].isGreedy } ? 1 : 0)
                normalized.append(example.scores[argmax(zip(ll, lengths).map { $0 / $1 })])
                chance.append(example.chance)
                choiceCounts.append(Double(example.choices.count))
                done += 1
                progress?(Progress(task: task.name, done: done, total: total, accuracy: mean(plain)))
            }
            if !plain.isEmpty {
                results.append(TaskResult(name: task.name, count: plain.count, available: task.examples.count,
                                          accuracy: mean(plain), accuracyStandardError: standardError(plain),
                                          normalizedAccuracy: mean(normalized), normalizedStandardError: standardError(normalized),
                                          greedyAccuracy: task.scoresGreedy ? mean(greedy) : nil,
                                          greedyStandardError: task.scoresGreedy ? standardError(greedy) : nil,
                                          chance: mean(chance), choices: mean(choiceCounts), seconds: Date().timeIntervalSince(started)))
            }
            if interrupted { return (results, true) }
        }
        return (results, false)
    }

    /// `count` other examples of the task, the same for the same seed and example.
    static func shotExamples(for index: Int, in examples: [MultipleChoiceExample], count: Int, seed: UInt64) -> [MultipleChoiceExample] {
        guard count > 0, examples.count > 1 else { return [] }
        var rng = SeededGenerator(seed: seed &+ UInt64(index) &* 0x9E37_79B9_7F4A_7C15)
        var pool = Array(examples.indices.filter { $0 != index })
        var chosen = [MultipleChoiceExample]()
        for _ in 0..<min(count, pool.count) {
            let k = Int(rng.next() % UInt64(pool.count))
            chosen.append(examples[pool.remove(at: k)])
        }
        return chosen
    }

    /// The first index of the largest value: ties go to the earlier choice.
    static func argmax(_ values: [Double]) -> Int {
        var best = 0
        for i in values.indices where values[i] > values[best] { best = i }
        return best
    }

    static func mean(_ x: [Double]) -> Double { x.isEmpty ? 0 : x.reduce(0, +) / Double(x.count) }

    /// The standard error of the mean: sample standard deviation / √n (lm-eval's `mean_stderr`).
    static func standardError(_ x: [Double]) -> Double {
        guard x.count > 1 else { return 0 }
        let m = mean(x)
        let variance = x.reduce(0) { $0 + ($1 - m) * ($1 - m) } / Double(x.count - 1)
        return (variance / Double(x.count)).squareRoot()
    }
}
