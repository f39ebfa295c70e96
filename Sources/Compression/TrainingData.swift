import Foundation
import Tensors

/// Batches of (tokens, targets) for next-token training. A target of −1 is left out of the loss.
public protocol TrainingData {
    /// A random batch for training.
    func sample(batch: Int, seq: Int, rng: inout SeededGenerator) -> (tokens: [Int32], targets: [Int32])
    /// The `index`-th fixed batch, for validation (the same every time).
    func fixed(index: Int, batch: Int, seq: Int) -> (tokens: [Int32], targets: [Int32])
    /// How many distinct fixed batches there are at this shape.
    func fixedCount(batch: Int, seq: Int) -> Int
}

/// Windows of a token stream: predict every next token.
public struct TextWindows: TrainingData {
    public let stream: [Int32]

    public init(_ stream: [Int32]) { self.stream = stream }

    public func sample(batch: Int, seq: Int, rng: inout SeededGenerator) -> (tokens: [Int32], targets: [Int32]) {
        precondition(stream.count > seq + 1, "a stream of \(stream.count) tokens is too short for windows of \(seq)")
        var tokens = [Int32](), targets = [Int32]()
        for _ in 0..<batch {
            let start = Int(rng.next() % UInt64(stream.count - seq - 1))
            tokens += stream[start..<(start + seq)]
            targets += stream[(start + 1)...(start + seq)]
        }
        return (tokens, targets)
    }

    public func fixed(index: Int, batch: Int, seq: Int) -> (tokens: [Int32], targets: [Int32]) {
        var tokens = [Int32](), targets = [Int32]()
        for b in 0..<batch {
            // Consecutive non-overlapping windows from the start of the stream.
            let start = ((index * batch + b) * seq) % max(1, stream.count - seq - 1)
            tokens += stream[start..<(start + seq)]
            targets += stream[(start + 1)...(start + seq)]
        }
        return (tokens, targets)
    }

    public func fixedCount(batch: Int, seq: Int) -> Int { max(1, (stream.count - 1) / (batch * seq)) }
}

/// Prompt/answer pairs: the loss counts only the answer's tokens (instruction tuning).
public struct InstructionExamples: TrainingData {
    public let examples: [(prompt: [Int32], answer: [Int32])]
    public let padding: Int32

    public init(examples: [(prompt: [Int32], answer: [Int32])], padding: Int32) {
        precondition(!examples.isEmpty, "no examples")
        self.examples = examples
        self.padding = padding
    }

    func row(_ example: (prompt: [Int32], answer: [Int32]), seq: Int) -> (tokens: [Int32], targets: [Int32]) {
        // A prompt too long for the window loses its start, never the answer: the loss is on the answer.
        let answer = Array(example.answer.prefix(seq))
        let all = Array(example.prompt.suffix(max(1, seq + 1 - answer.count))) + answer
        let promptCount = all.count - answer.count
        var tokens = Array(all.prefix(seq))
        var targets = [Int32](repeating: -1, count: seq)
        // Position i predicts token i + 1; count it only when that token belongs to the answer.
        for i in 0..<(all.count - 1) where i + 1 >= promptCount {
            targets[i] = all[i + 1]
        }
        tokens += [Int32](repeating: padding, count: seq - tokens.count)
        return (tokens, targets)
    }

    public func sample(batch: Int, seq: Int, rng: inout SeededGenerator) -> (tokens: [Int32], targets: [Int32]) {
        var tokens = [Int32](), targets = [Int32]()
        for _ in 0..<batch {
            let r = row(examples[Int(rng.next() % UInt64(examples.count))], seq: seq)
            tokens += r.tokens
            targets += r.targets
        }
        return (tokens, targets)
    }

    public func fixed(index: Int, batch: Int, seq: Int) -> (tokens: [Int32], targets: [Int32]) {
        var tokens = [Int32](), targets = [Int32]()
        for b in 0..<batch {
            let r = row(examples[(index * batch + b) % examples.count], seq: seq)
            tokens += r.tokens
            targets += r.targets
        }
        return (tokens, targets)
    }

    public func fixedCount(batch: Int, seq: Int) -> Int { max(1, examples.count / batch) }
}
