import ArgumentParser
import Compression
import Evaluation
import Foundation
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

    @Flag(help: "Measure LoRA training steps instead (rank 8 on all seven projections, AdamW, batch 4 × 128).")
    var train = false

    @Option(help: "Training steps to time (after one warm-up step).")
    var steps = 5

    func run() throws {
        let loadStart = Date()
        let llama = try LlamaModel.load(path: model)
        let loadSeconds = Date().timeIntervalSince(loadStart)
        if train {
            let seconds = Training.stepSeconds(model: llama, steps: steps)
            let result: [String: Any] = ["train_step_seconds_median": seconds.sorted()[seconds.count / 2], "train_step_seconds": seconds,
                                         "batch": 4, "seq": 128, "rank": 8, "targets": "q,k,v,o,gate,up,down",
                                         "max_resident_mb": maxResidentMegabytes(), "load_seconds": loadSeconds]
            let data = try JSONSerialization.data(withJSONObject: result, options: [.prettyPrinted, .sortedKeys])
            print(String(decoding: data, as: UTF8.self))
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
            "gemm_bound_tokens_per_second": gemmBoundTokensPerSecond,
            "prefill_tokens": prefill,
            "prefill_tokens_per_second_all_logits": prefillAll,
            "prefill_tokens_per_second_last_logits": prefillLast,
            "generation_tokens_per_second": generation,
            "max_resident_mb": maxResidentMegabytes(),
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
