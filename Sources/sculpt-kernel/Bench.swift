import ArgumentParser
import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

/// Engine speeds as JSON, for benchmarks/engine_throughput.py to set beside PyTorch and llama.cpp.
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure the engine: GEMM rate, prefill and generation throughput (JSON on stdout).")

    @Option(help: "A GGUF model (default: the cached SmolLM2-135M).")
    var model: String = TextCorpus.cacheDirectory() + "/models/SmolLM2-135M-Instruct.Q4_1.gguf"

    @Option(help: "Prompt length for the prefill measurement.")
    var prefill = 512

    @Option(help: "Tokens to generate for the generation measurement.")
    var generate = 64

    @Option(help: "Timed runs (median reported).")
    var runs = 3

    @Flag(help: "Keep the file's Q8_0/Q4_0/Q4_1 blocks (the quantized kernels) instead of dequantizing to Float32.")
    var keep = false

    @Flag(help: "Also profile one generated token (where its time goes) and measure the streaming memory bandwidth.")
    var profile = false

    @Flag(help: "Measure LoRA training steps instead (rank 8 on all seven projections, AdamW, batch 4 × 128).")
    var train = false

    @Option(help: "Training steps to time (after one warm-up step).")
    var steps = 5

    @Flag(help: "Time the quantized matrix-vector product alone on the model's matrices (GB/s of weights read).")
    var products = false

    func run() throws {
        if products {
            try printProducts()
            return
        }
        let loadStart = Date()
        let llama = try LlamaModel.load(path: model, keep: keep)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        if train {
            let seconds = Training.stepSeconds(model: llama, steps: steps)
            let result: [String: Any] = ["blas_kernels": blasKernels, "train_step_seconds_median": seconds.sorted()[seconds.count / 2], "train_step_seconds": seconds,
                                         "batch": 4, "seq": 128, "rank": 8, "targets": "q,k,v,o,gate,up,down",
                                         "max_resident_mb": maxResidentMegabytes(), "load_seconds": loadSeconds]
            let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        if profile {
            try printProfile(llama, loadSeconds: loadSeconds)
            return
        }
        let gemm = Throughput.gemmGFLOPS(config: llama.config, rows: prefill, runs: runs)
        let prefillAll = Throughput.prefillTokensPerSecond(model: llama, tokens: prefill, runs: runs, scope: .all)
        let prefillLast = Throughput.prefillTokensPerSecond(model: llama, tokens: prefill, runs: runs, scope: .last)
        let generation = Throughput.generationTokensPerSecond(model: llama, tokens: generate)
        let gemmBoundTokensPerSecond = gemm * 1e9 / (2 * Double(llama.config.macsPerToken))
        let result: [String: Any] = [
            "load_seconds": loadSeconds,
            "gemm_gflops": gemm,
            "blas_kernels": blasKernels,
            "gemm_bound_tokens_per_second": gemmBoundTokensPerSecond,
            "prefill_tokens": prefill,
            "prefill_tokens_per_second_all_logits": prefillAll,
            "prefill_tokens_per_second_last_logits": prefillLast,
            "generation_tokens_per_second": generation,
            "max_resident_mb": maxResidentMegabytes(),
            "weights_mb": Double(llama.weightBytes) / 1e6,
            "packed": llama.isPacked,
            "kernel_path": KernelPath.current.rawValue,
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

/// Peak resident set size of this process, from /proc.
func maxResidentMegabytes() -> Double {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let kb = line.split(separator: " ").compactMap { Double($0) }.first ?? 0
        return kb / 1024
    }
    return 0
}

extension Bench {
    /// One generated token's time by part, at the middle of a `generate`-token run after a
    /// 5-token prompt, beside what memory bandwidth allows.
    func printProfile(_ llama: LlamaModel, loadSeconds: Double) throws {
        let prompt = llama.tokenizer.encode("The capital of France is")
        let cache = KVCache(config: llama.config, capacity: prompt.count + 2 * generate + 8)
        _ = llama.forward(tokens: prompt, batch: 1, seq: prompt.count, logits: .last, cache: cache)
        var rng = SeededGenerator(seed: 3)
        let tokens = (0..<generate).map { _ in Int32(rng.next() % UInt64(llama.config.vocabSize)) }
        _ = llama.profileDecode(tokens: Array(tokens.prefix(8)), cache: cache)   // warm-up
        var profiles = [TokenProfile]()
        for _ in 0..<max(1, runs) {
            let fresh = KVCache(config: llama.config, capacity: cache.capacity)
            _ = llama.forward(tokens: prompt, batch: 1, seq: prompt.count, logits: .last, cache: fresh)
            profiles.append(llama.profileDecode(tokens: tokens, cache: fresh))
        }
        let profile = profiles.sorted { $0.total < $1.total }[profiles.count / 2]
        let bandwidth = Throughput.streamingReadBytesPerSecond()
        let position = prompt.count + generate / 2
        let bytes = llama.bytesReadPerToken(position: position)
        let result: [String: Any] = [
            "load_seconds": loadSeconds,
            "kernel_path": KernelPath.current.rawValue,
            "cpu_flags": KernelPath.cpuFlags.filter { $0.hasPrefix("avx") || $0 == "fma" || $0 == "f16c" }.sorted(),
            "profile_seconds_per_token": Dictionary(uniqueKeysWithValues: profile.parts.map { ($0.name, $0.seconds) }),
            "profile_order": profile.parts.map(\.name),
            "profile_total_seconds_per_token": profile.total,
            "bytes_read_per_token": bytes,
            "stream_bandwidth_bytes_per_second": bandwidth,
            "bandwidth_bound_seconds_per_token": Double(bytes) / bandwidth,
            "max_resident_mb": maxResidentMegabytes(),
        ]
        let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }
}

extension Bench {
    /// The matrix-vector product of every packed projection of the model, one after the other
    /// (as a decode step reads them) and one matrix over and over (from cache), as GB/s.
    func printProducts() throws {
        let llama = try LlamaModel.load(path: model, keep: true)
        let matrices = llama.layers.flatMap { layer in Projection.allCases.compactMap { layer.packed[$0] } }
        guard !matrices.isEmpty else { throw ValidationError("no packed matrices in \(model)") }
        let x = Tensor(zeros: [1, 2048]), y = Tensor(zeros: [1, 2048])
        for i in 0..<2048 { x[i] = Float(i % 7) - 3 }
        let bytes = Double(matrices.reduce(0) { $0 + $1.byteCount })
        let sweep = Throughput.median(runs: max(5, runs)) {
            for m in matrices { quantizedLinear(out: y.data, input: x.data, weight: m, rows: 1, inFeatures: m.columns, outFeatures: m.rows) }
        }
        let one = matrices.first { $0.rows > $0.columns } ?? matrices[0]
        let repeated = Throughput.median(runs: max(5, runs)) {
            for _ in 0..<100 { quantizedLinear(out: y.data, input: x.data, weight: one, rows: 1, inFeatures: one.columns, outFeatures: one.rows) }
        }
        print(String(format: "path %@: sweep of %d matrices (%.1f MB): %.2f ms, %.1f GB/s; one %d×%d matrix 100×: %.1f µs each, %.1f GB/s",
                     KernelPath.current.rawValue, matrices.count, bytes / 1e6, sweep * 1e3, bytes / sweep / 1e9, one.rows, one.columns,
                     repeated * 1e4, Double(one.byteCount) * 100 / repeated / 1e9))
    }
}
