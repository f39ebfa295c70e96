import Foundation
import Tensors
import Transformer

extension Training {
    /// Seconds per optimizer step of LoRA rank 8 on all seven projections, AdamW, batch 4 × 128
    /// random tokens: the configuration the PyTorch + PEFT comparison uses. One warm-up step first.
    public static func stepSeconds(model: LlamaModel, steps: Int, rank: Int = 8, batch: Int = 4, seq: Int = 128) -> [Double] {
        guard let lora = try? LoRASet(model: model, configuration: LoRAConfiguration(rank: rank, alpha: Float(2 * rank), targets: Projection.allCases), seed: 1) else { return [] }
        defer { lora.detach(from: model) }
        var rng = SeededGenerator(seed: 5)
        let stream = (0..<(batch * seq * 8)).map { _ in Int32(rng.next() % UInt64(model.config.vocabSize)) }
        let data = TextWindows(stream)
        let optimizer = AdamW(parameters: lora.parameters)
        let workspace = TrainingWorkspace(config: model.config, batch: batch, seq: seq)
        var times = [Double]()
        for step in 0...steps {
            let start = DispatchTime.now().uptimeNanoseconds
            lora.zeroGradients()
            let (x, y) = data.sample(batch: batch, seq: seq, rng: &rng)
            _ = model.trainingStep(tokens: x, targets: y, workspace: workspace)
            optimizer.clipGradients(maxNorm: 1)
            optimizer.update(learningRate: 1e-4)
            if step > 0 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9) }
        }
        return times
    }
}
