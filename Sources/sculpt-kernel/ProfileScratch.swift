import Compression
import Foundation
import Tensors
import Transformer

func profileForward(_ m: LlamaModel, T: Int) {
    func t(_ name: String, _ n: Int = 3, _ body: () -> Void) {
        body()
        let s = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<n { body() }
        let e = Double(DispatchTime.now().uptimeNanoseconds - s) / 1e9 / Double(n)
        print(name, String(format: "%.1f ms", e * 1000))
    }
    let c = m.config
    var rng = SeededGenerator(seed: 1)
    let ids = (0..<T).map { _ in Int32(rng.next() % 49152) }
    let ws = ForwardWorkspace(config: c, batch: 1, seq: T)
    t("forward all, no adapters") { _ = m.forward(tokens: ids, batch: 1, seq: T, logits: .all, workspace: ws) }
    let a = LoRAAdapter(inFeatures: 576, outFeatures: 576, rank: 8, alpha: 16, dropout: 0, seed: 1)
    let x = Tensor(zeros: [T, 576]); rng.fillNormal(x, std: 1)
    let y = Tensor(zeros: [T, 576])
    t("one adapter forward", 20) { a.forward(input: x.data, out: y.data, rows: T, training: false) }
    let h = Tensor(zeros: [T, 8])
    t("x·Aᵀ (512×576 → 8)", 20) { linearForward(out: h.data, input: x.data, weight: a.a.data, rows: T, inFeatures: 576, outFeatures: 8) }
    t("h·Bᵀ (8 → 576)", 20) { linearForward(out: y.data, input: h.data, weight: a.b.data, rows: T, inFeatures: 8, outFeatures: 576, accumulate: true, scale: 2) }
    BLASThreads.count = 1
    t("x·Aᵀ 1 thread", 20) { linearForward(out: h.data, input: x.data, weight: a.a.data, rows: T, inFeatures: 576, outFeatures: 8) }
    t("h·Bᵀ 1 thread", 20) { linearForward(out: y.data, input: h.data, weight: a.b.data, rows: T, inFeatures: 8, outFeatures: 576, accumulate: true, scale: 2) }
    BLASThreads.count = 2
    let lora = try! LoRASet(model: m, configuration: LoRAConfiguration(rank: 8, alpha: 16, targets: [.q, .k, .v, .up, .down]), seed: 1)
    t("forward all, 5 adapters") { _ = m.forward(tokens: ids, batch: 1, seq: T, logits: .all, workspace: ws) }
    let tw = TrainingWorkspace(config: c, batch: 4, seq: 128)
    let targets = ids.map { $0 }
    t("training step 4×128") { _ = m.trainingStep(tokens: ids, targets: targets, workspace: tw) }
    lora.detach(from: m)
    t("training step 4×128, no adapters") { _ = m.trainingStep(tokens: ids, targets: targets, workspace: tw) }
}
