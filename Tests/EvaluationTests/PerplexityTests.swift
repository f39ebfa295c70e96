import Evaluation
import Foundation
import Tensors
import Transformer
import XCTest

final class PerplexityTests: XCTestCase {
    let model = LlamaModel.random(config: try! LlamaConfiguration(layers: 2, dim: 32, ffnDim: 64, heads: 4, kvHeads: 2,
                                                                  vocabSize: 256, contextLength: 64), seed: 5)

    /// Σ −log p(token t | tokens 0..<t) with all preceding tokens as context, one forward per token.
    func bruteForceNLL(_ tokens: [Int32], context: Int) -> Double {
        var nll = 0.0
        for t in 1..<tokens.count {
            let start = max(0, t - context)
            let logits = model.forward(tokens: Array(tokens[start..<t]), batch: 1, seq: t - start, logits: .last).array
            let lse = logits.withUnsafeBufferPointer { logSumExp($0.baseAddress!, $0.count) }
            nll += Double(lse - logits[Int(tokens[t])])
        }
        return nll
    }

    func testEveryTokenIsScoredOnceWithFullContextInsideOneWindow() throws {
        let tokens = model.tokenizer.encode("It is a truth universally acknowledged.")
        let result = try Perplexity.evaluate(model: model, tokens: tokens, parameters: .init(window: 64, stride: 64))
        XCTAssertEqual(result.tokens, tokens.count - 1)
        XCTAssertEqual(result.negativeLogLikelihood, bruteForceNLL(tokens, context: 64), accuracy: 1e-3)
    }

    func testWindowsCoverTheStreamWithoutGapsOrRepeats() throws {
        let tokens = model.tokenizer.encode(String(repeating: "Emma Woodhouse, handsome, clever, and rich. ", count: 3))
        for (window, stride) in [(16, 16), (16, 8), (20, 7)] {
            let result = try Perplexity.evaluate(model: model, tokens: tokens, parameters: .init(window: window, stride: stride))
            XCTAssertEqual(result.tokens, tokens.count - 1, "window \(window) stride \(stride)")
            XCTAssertGreaterThan(result.perplexityPerToken, 1)
        }
        // A random model is within a factor of two of uniform over 256 bytes.
        let result = try Perplexity.evaluate(model: model, tokens: tokens, parameters: .init(window: 32, stride: 32))
        XCTAssertTrue((128...512).contains(result.perplexityPerToken), "\(result.perplexityPerToken)")
    }

    func testCancellationStopsBetweenWindows() {
        let token = CancellationToken()
        token.cancel()
        XCTAssertThrowsError(try Perplexity.evaluate(model: model, tokens: Array(repeating: 65, count: 100),
                                                     parameters: .init(window: 16, stride: 16), cancellation: token)) {
            XCTAssertTrue($0 is CancellationError)
        }
    }

    func testGreedyGenerationIsDeterministicAndSamplingFollowsTheSeed() {
        let prompt = model.tokenizer.encode("Once")
        let a = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: 8, stopAtEOS: false))
        let b = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: 8, stopAtEOS: false))
        XCTAssertEqual(a.tokens, b.tokens)
        XCTAssertEqual(a.tokens.count, 8)
        // Greedy picks the argmax of the full forward at each step.
        let logits = model.forward(tokens: prompt, batch: 1, seq: prompt.count, logits: .last).array
        XCTAssertEqual(Int(a.tokens[0]), logits.indices.max { logits[$0] < logits[$1] })
        let s1 = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: 8, temperature: 1, seed: 3, stopAtEOS: false))
        let s2 = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: 8, temperature: 1, seed: 3, stopAtEOS: false))
        XCTAssertEqual(s1.tokens, s2.tokens)
        var streamed = ""
        let s3 = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: 8, temperature: 1, seed: 4, stopAtEOS: false)) { streamed += $0 }
        XCTAssertEqual(streamed, s3.text)
    }
}
