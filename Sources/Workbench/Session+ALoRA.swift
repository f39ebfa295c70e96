import Compression
import Evaluation
import Foundation
import Tensors
import Transformer

/// What happened in one ALoRA round, for the live display.
public struct ALoRARound: Sendable {
    /// 0 after the warm-up training, then 1…rounds.
    public var round: Int
    public var importance: ALoRA.Importance?
    public var reallocation: ALoRA.Reallocation?
    public var allocation: [ALoRA.Module: Int]
    /// The validation loss after this round's training.
    public var validationLoss: Double?
}

/// An ALoRA run: every round, and whether it was interrupted (the allocation reached is kept).
public struct ALoRARun: Sendable {
    public var rounds: [ALoRARound]
    public var interrupted: Bool
    public var seconds: Double
}

extension Session {
    /// Attaches ALoRA adapters (replacing any): `budget` ranks per module, gates on every rank.
    @discardableResult
    public func attachALoRA(_ parameters: ALoRA.Parameters) throws -> LoRASet {
        let model = try requireModel()
        try LoRAConfiguration(rank: parameters.capacity, alpha: parameters.alpha, targets: parameters.targets).validate(for: model.config)
        return try replaceAdapters(on: model) { try ALoRA.attach(model: model, parameters: parameters, seed: seed) }
    }

    /// ALoRA: train `warmup` steps at the uniform allocation, then each round score every open
    /// rank (AB-LoRA) on one fixed validation batch, move `prune` ranks, and train `roundTraining`
    /// steps. An interrupt stops where it is and keeps the allocation reached and what was trained.
    public func alora(_ parameters: ALoRA.Parameters, rounds: Int, prune: Int?, warmup: Training.Parameters,
                      roundTraining: Training.Parameters, validationBatch: Int, validationSeq: Int, ranksPerPass: Int? = nil,
                      split: String?, validationSplit: String?,
                      onTraining: @escaping (Training.Event) -> Void,
                      onScoring: @escaping (Int, Int) -> Void,
                      onRound: (ALoRARound) -> Void) throws -> ALoRARun {
        let model = try requireModel()
        let started = Date()
        let set = try attachALoRA(parameters)
        var history = [ALoRARound]()
        func finish(_ interrupted: Bool) -> ALoRARun { ALoRARun(rounds: history, interrupted: interrupted, seconds: Date().timeIntervalSince(started)) }

        // The fixed batch every round scores on: the first validation windows (examples held out,
        // or the validation text).
        let validation: TrainingData
        if let examples = split == nil ? try exampleData() : nil, validationSplit == nil {
            validation = examples.validation
        } else if let (data, _) = try validationData(split: validationSplit) ?? validationData(split: evaluationSplit) {
            validation = data
        } else {
            throw WorkbenchError.invalid("ALoRA scores ranks on a validation batch: give `val_split=` or use the Austen text or examples")
        }
        let seq = min(validationSeq, model.config.contextLength - 1)
        let (tokens, targets) = validation.fixed(index: 0, batch: validationBatch, seq: seq)

        let first = try train(warmup, split: split, validationSplit: validationSplit, progress: onTraining)
        let warm = ALoRARound(round: 0, importance: nil, reallocation: nil, allocation: ALoRA.allocation(set),
                              validationLoss: first.finalValidationLoss)
        history.append(warm)
        onRound(warm)
        if first.interrupted { return finish(true) }
        let moves = prune ?? parameters.targets.count
        for round in 1...max(1, rounds) where rounds > 0 {
            let importance: ALoRA.Importance
            do {
                importance = try ALoRA.importance(model: model, set: set, tokens: tokens, targets: targets, batch: validationBatch, seq: seq,
                                                  ranksPerPass: ranksPerPass, cancellation: cancellation, progress: onScoring)
            } catch is CancellationError {
                return finish(true)
            }
            let moved = ALoRA.reallocate(set: set, importance: importance, count: moves)
            var entry = ALoRARound(round: round, importance: importance, reallocation: moved, allocation: ALoRA.allocation(set), validationLoss: nil)
            let trained = try train(roundTraining, split: split, validationSplit: validationSplit, progress: onTraining)
            entry.validationLoss = trained.finalValidationLoss
            history.append(entry)
            onRound(entry)
            if trained.interrupted { return finish(true) }
        }
        return finish(false)
    }

    /// Ranks per (layer, projection) of the current adapters: open gates for ALoRA, the active
    /// rank for elastic adapters, the rank for plain LoRA. Nil without adapters.
    public func rankAllocation() -> [ALoRA.Module: Int]? {
        guard let lora else { return nil }
        var out = [ALoRA.Module: Int]()
        for (l, p, adapter) in lora.ordered {
            out[ALoRA.Module(layer: l, projection: p)] = adapter.gates == nil ? adapter.activeRank : adapter.openRanks
        }
        return out
    }
}
