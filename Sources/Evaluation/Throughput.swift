import Foundation
import Tensors
import Transformer

/// Measured speeds, for benchmarks that set them beside a peer's in the same run.
public enum Throughput {
    /// Seconds of each of `runs` timed calls of `body`, after `warmup` untimed ones, sorted.
    static func timings(runs: Int, warmup: Int, _ body: () -> Void) -> [Double] {
        for _ in 0..<warmup { body() }
        return (0..<max(1, runs)).map { _ in
            let start = DispatchTime.now().uptimeNanoseconds
            body()
            return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        }.sorted()
    }

    /// Median of `runs` timings of `body`, after `warmup` untimed runs.
    public static func median(runs: Int, warmup: Int = 1, _ body: () -> Void) -> Double {
        let times = timings(runs: runs, warmup: warmup, body)
        return times[times.count / 2]
    }

    /// Trimmed mean: drops the fastest and slowest `trim` fraction, averages the rest.
    public static func trimmedMean(runs: Int, warmup: Int = 2, trim: Double = 0.2, _ body: () -> Void) -> Double {
        let times = timings(runs: runs, warmup: warmup, body)
        let cut = Int(Double(times.count) * trim)
        let kept = times[cut..<(times.count - cut)]
        return kept.reduce(0, +) / Double(kept.count)
    }

    /// SGEMM rate (GFLOP/s) of the BLAS Sculpt uses, at the shapes of a prefill of `rows` tokens:
    /// the model's projections, weighted as the forward pass runs them.
    public static func gemmGFLOPS(config c: LlamaConfiguration, rows: Int, runs: Int = 3) -> Double {
        let shapes = [(c.dim, c.dim), (c.kvDim, c.dim), (c.kvDim, c.dim), (c.dim, c.dim),
                      (c.ffnDim, c.dim), (c.ffnDim, c.dim), (c.dim, c.ffnDim)]
        let input = Tensor(zeros: [rows, max(c.dim, c.ffnDim)])
        var rng = SeededGenerator(seed: 1)
        rng.fillNormal(input, std: 1)
        let weights = shapes.map { Tensor(zeros: [$0.0, $0.1]) }
        let out = Tensor(zeros: [rows, max(c.dim, c.ffnDim)])
        let flops = Double(shapes.reduce(0) { $0 + 2 * rows * $1.0 * $1.1 })
        let seconds = median(runs: runs) {
            for (w, (o, i)) in zip(weights, shapes) {
                linearForward(out: out.data, input: input.data, weight: w.data, rows: rows, inFeatures: i, outFeatures: o)
            }
        }
        return flops / seconds / 1e9
    }

    /// Forward throughput in tokens per second for one sequence of `tokens`, all-position logits.
    public static func prefillTokensPerSecond(model: LlamaModel, tokens: Int, runs: Int = 3, scope: LogitsScope = .all) -> Double {
        var rng = SeededGenerator(seed: 2)
        let ids = (0..<tokens).map { _ in Int32(rng.next() % UInt64(model.config.vocabSize)) }
        let workspace = ForwardWorkspace(config: model.config, batch: 1, seq: tokens)
        let seconds = median(runs: runs) { _ = model.forward(tokens: ids, batch: 1, seq: tokens, logits: scope, workspace: workspace) }
        return Double(tokens) / seconds
    }

    /// The memory bandwidth of streaming reads (bytes/s): a buffer far larger than the caches
    /// summed by every core in contiguous parts, the best of `runs`. What a memory-bound
    /// decode step can at most reach: bytes read per token ÷ this.
    public static func streamingReadBytesPerSecond(megabytes: Int = 512, runs: Int = 5) -> Double {
        let count = megabytes << 20 / 4
        let buffer = Tensor(uninitialized: [count])
        parallelChunks(count, minimumChunk: 1 << 20) { range in
            for i in range { buffer.data[i] = Float(i & 7) }
        }
        var best = Double.infinity
        var sink: Float = 0
        let lock = NSLock()
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            parallelChunks(count / 64, minimumChunk: 1 << 14) { range in
                var acc = SIMD16<Float>(repeating: 0), acc2 = SIMD16<Float>(repeating: 0)
                let base = UnsafeRawPointer(buffer.data)
                for i in range {
                    let p = base + i * 256
                    acc += p.load(as: SIMD16<Float>.self) + p.load(fromByteOffset: 64, as: SIMD16<Float>.self)
                    acc2 += p.load(fromByteOffset: 128, as: SIMD16<Float>.self) + p.load(fromByteOffset: 192, as: SIMD16<Float>.self)
                }
                lock.lock(); sink += (acc + acc2).sum(); lock.unlock()
            }
            best = min(best, Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
        }
        precondition(sink.isFinite)
        return Double(count * 4) / best
    }

    /// Greedy generation speed after a short prompt.
    public static func generationTokensPerSecond(model: LlamaModel, tokens: Int) -> Double {
        let prompt = model.tokenizer.encode("The capital of France is")
        _ = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: 4, stopAtEOS: false))
        let result = Generation.generate(model: model, prompt: prompt, parameters: .init(maxTokens: tokens, stopAtEOS: false))
        return result.tokensPerSecond
    }
}
