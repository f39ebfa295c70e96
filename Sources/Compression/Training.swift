import Foundation
import Tensors
import Transformer

/// Adapter training on a frozen model: AdamW, linear warm-up then cosine decay, gradient
/// clipping and accumulation, validation every few steps. Seeded: the same seed and data give
/// the same losses.
public enum Training {
    /// The recipe. Defaults follow the LoRA papers this family builds on (AdamW, 3e-4, clip 1).
    public struct Parameters: Sendable {
        public var steps: Int
        public var learningRate: Float = 3e-4
        /// Sequences per micro-batch and tokens per sequence.
        public var batch: Int = 4
        public var seq: Int = 128
        public var warmup: Int = 0
        /// Micro-batches per optimizer step.
        public var accumulate: Int = 1
        /// Validate every this many steps (0: only at the end).
        public var evalEvery: Int = 0
        /// Fixed validation batches per validation.
        public var validationBatches: Int = 4
        public var weightDecay: Float = 0
        /// Largest global gradient norm (0: no clipping).
        public var clip: Float = 1
        public var seed: UInt64 = 0
        /// In-place distillation (BigNAS): the first subnet of each step learns from the labels and
        /// the others from its next-token distribution on the same micro-batch.
        public var distillation = false

        public init(steps: Int) { self.steps = steps }
    }

    /// Reported after every step.
    public struct Event: Sendable {
        public var step: Int
        public var steps: Int
        public var trainLoss: Double
        /// Set on the steps that validated.
        public var validationLoss: Double?
        public var learningRate: Float
        public var gradientNorm: Float
        public var tokensPerSecond: Double
        public var elapsed: Double

        public init(step: Int, steps: Int, trainLoss: Double, validationLoss: Double?, learningRate: Float,
                    gradientNorm: Float, tokensPerSecond: Double, elapsed: Double) {
            self.step = step
            self.steps = steps
            self.trainLoss = trainLoss
            self.validationLoss = validationLoss
            self.learningRate = learningRate
            self.gradientNorm = gradientNorm
            self.tokensPerSecond = tokensPerSecond
            self.elapsed = elapsed
        }
    }

    public struct Result: Sendable {
        public var events: [Event]
        public var interrupted: Bool
        public var seconds: Double
        public var finalValidationLoss: Double?
    }

    /// Mean loss over the fixed validation batches (inference path, no gradients).
    public static func validationLoss(model: LlamaModel, data: TrainingData, batch: Int, seq: Int, batches: Int) -> Double {
        validationScore(model: model, data: data, batch: batch, seq: seq, batches: batches).loss
    }

    /// Mean loss and next-token accuracy (the target ranked first) over the fixed validation batches.
    public static func validationScore(model: LlamaModel, data: TrainingData, batch: Int, seq: Int, batches: Int) -> (loss: Double, accuracy: Double) {
        var sum = 0.0, correct = 0, counted = 0
        let workspace = ForwardWorkspace(config: model.config, batch: batch, seq: seq)
        for index in 0..<min(batches, data.fixedCount(batch: batch, seq: seq)) {
            let (tokens, targets) = data.fixed(index: index, batch: batch, seq: seq)
            let scored = model.score(tokens: tokens, targets: targets, batch: batch, seq: seq, workspace: workspace)
            sum += scored.lossSum
            correct += scored.correct
            counted += scored.counted
        }
        return (sum / Double(max(1, counted)), Double(correct) / Double(max(1, counted)))
    }

    /// Trains `adapters` (already attached to `model`). Cancellation is checked between
    /// micro-batches: an interrupted run keeps the adapters as trained so far.
    ///
    /// Super-network training (LoNAS, Shears): at the start of every step `sampleSubnets` picks the
    /// subnets the step trains, as functions that activate them — one random subnet (LoNAS), or the
    /// largest, the smallest and a random one (the sandwich rule). Every micro-batch runs through
    /// each of them and the step's gradient is their mean. `validationSubnet` activates the subnet
    /// validation measures (and is left active at the end). With `distillation`, the first subnet of
    /// a step teaches the others.
    public static func run(model: LlamaModel, adapters: LoRASet, train: TrainingData, validation: TrainingData?,
                           parameters p: Parameters, cancellation: CancellationToken? = nil,
                           sampleSubnets: ((inout SeededGenerator) -> [() -> Void])? = nil, validationSubnet: (() -> Void)? = nil,
                           progress: ((Event) -> Void)? = nil) -> Result {
        defer { validationSubnet?() }
        precondition(!adapters.isMerged, "unmerge the adapters before training")
        let optimizer = AdamW(parameters: adapters.parameters, weightDecay: p.weightDecay)
        let schedule = LearningRateSchedule(peak: p.learningRate, warmup: p.warmup, total: p.steps)
        let workspace = TrainingWorkspace(config: model.config, batch: p.batch, seq: p.seq)
        var rng = SeededGenerator(seed: p.seed)
        // The teacher's next-token distribution for one micro-batch: rows × vocab floats.
        let teacher = p.distillation ? Tensor(zeros: [p.batch * p.seq, model.config.vocabSize]) : nil
        var events = [Event]()
        let started = Date()
        var tokens = 0
        var interrupted = false

        stepLoop: for step in 0..<p.steps {
            adapters.zeroGradients()
            let subnets = sampleSubnets?(&rng) ?? [{}]
            let scale = 1 / Float(p.accumulate * subnets.count)
            var lossSum = 0.0, counted = 0
            for _ in 0..<p.accumulate {
                let (x, y) = train.sample(batch: p.batch, seq: p.seq, rng: &rng)
                for (index, activate) in subnets.enumerated() {
                    if cancellation?.isCancelled == true { interrupted = true; break stepLoop }
                    activate()
                    let target: TrainingTarget
                    if let teacher, subnets.count > 1 { target = index == 0 ? .labelsTeaching(teacher) : .teacher(teacher) } else { target = .labels }
                    let (s, c) = model.trainingStep(tokens: x, targets: y, workspace: workspace, gradientScale: scale, learning: target)
                    lossSum += s
                    counted += c
                    tokens += x.count
                }
            }
            let norm = optimizer.clipGradients(maxNorm: p.clip)
            let lr = schedule.rate(at: step)
            optimizer.update(learningRate: lr)
            var event = Event(step: step + 1, steps: p.steps, trainLoss: lossSum / Double(max(1, counted)), validationLoss: nil,
                              learningRate: lr, gradientNorm: norm, tokensPerSecond: Double(tokens) / Date().timeIntervalSince(started),
                              elapsed: Date().timeIntervalSince(started))
            let last = step + 1 == p.steps
            if let validation, (p.evalEvery > 0 && (step + 1) % p.evalEvery == 0) || last {
                validationSubnet?()
                event.validationLoss = validationLoss(model: model, data: validation, batch: p.batch, seq: p.seq, batches: p.validationBatches)
            }
            events.append(event)
            progress?(event)
        }
        return Result(events: events, interrupted: interrupted, seconds: Date().timeIntervalSince(started),
                      finalValidationLoss: events.last(where: { $0.validationLoss != nil })?.validationLoss)
    }
}
