import Foundation
import Tensors

/// Everything one training step keeps from its forward pass for its backward pass, and the
/// backward's own buffers, for one batch shape. Reused across steps.
public final class TrainingWorkspace {
    public let batch: Int
    public let seq: Int
    let rows: Int

    /// Per layer: exactly the activations backward reads.
    final class LayerActivations {
        let xIn, xn1, q, k, v, attention, xMid, xn2: Tensor   // (rows, dim or kvDim)
        let gate, up, hidden: Tensor                            // (rows, ffnDim)
        let rstd1, rstd2: Tensor                                // (rows)
        let probs: Tensor                                       // (batch, heads, seq, seq)

        init(_ c: LlamaConfiguration, batch: Int, seq: Int) {
            let rows = batch * seq
            xIn = Tensor(zeros: [rows, c.dim]); xn1 = Tensor(zeros: [rows, c.dim])
            q = Tensor(zeros: [rows, c.dim]); k = Tensor(zeros: [rows, c.kvDim]); v = Tensor(zeros: [rows, c.kvDim])
            attention = Tensor(zeros: [rows, c.dim]); xMid = Tensor(zeros: [rows, c.dim]); xn2 = Tensor(zeros: [rows, c.dim])
            gate = Tensor(zeros: [rows, c.ffnDim]); up = Tensor(zeros: [rows, c.ffnDim]); hidden = Tensor(zeros: [rows, c.ffnDim])
            rstd1 = Tensor(zeros: [rows]); rstd2 = Tensor(zeros: [rows])
            probs = Tensor(zeros: [batch, c.heads, seq, seq])
        }
    }

    let layers: [LayerActivations]
    let xFinal, xnFinal, rstdFinal: Tensor
    /// Logits, overwritten by their gradient.
    let logits: Tensor
    let losses: Tensor
    // Backward buffers.
    let dx, dxn, dAttention, dq, dk, dv, dHidden, dGate, dUp: Tensor
    let positions: [Int32]

    public init(config c: LlamaConfiguration, batch: Int, seq: Int) {
        self.batch = batch
        self.seq = seq
        rows = batch * seq
        layers = (0..<c.layers).map { _ in LayerActivations(c, batch: batch, seq: seq) }
        xFinal = Tensor(zeros: [rows, c.dim]); xnFinal = Tensor(zeros: [rows, c.dim]); rstdFinal = Tensor(zeros: [rows])
        logits = Tensor(zeros: [rows, c.vocabSize]); losses = Tensor(zeros: [rows])
        dx = Tensor(zeros: [rows, c.dim]); dxn = Tensor(zeros: [rows, c.dim]); dAttention = Tensor(zeros: [rows, c.dim])
        dq = Tensor(zeros: [rows, c.dim]); dk = Tensor(zeros: [rows, c.kvDim]); dv = Tensor(zeros: [rows, c.kvDim])
        dHidden = Tensor(zeros: [rows, c.ffnDim]); dGate = Tensor(zeros: [rows, c.ffnDim]); dUp = Tensor(zeros: [rows, c.ffnDim])
        positions = (0..<rows).map { Int32($0 % seq) }
    }

    /// Bytes held, for memory reports.
    public var byteCount: Int {
        let perLayer = layers.first.map { l in [l.xIn, l.xn1, l.q, l.k, l.v, l.attention, l.xMid, l.xn2, l.gate, l.up, l.hidden, l.rstd1, l.rstd2, l.probs].reduce(0) { $0 + $1.byteCount } } ?? 0
        return perLayer * layers.count + [xFinal, xnFinal, logits, dx, dxn, dAttention, dq, dk, dv, dHidden, dGate, dUp].reduce(0) { $0 + $1.byteCount }
    }
}

/// What a training step learns from.
public enum TrainingTarget {
    /// The labels: next-token cross-entropy.
    case labels
    /// The labels, and the step writes its own next-token distribution into the tensor
    /// (rows, vocab), for subnets that learn from it on the same tokens (in-place distillation).
    case labelsTeaching(Tensor)
    /// The distribution an earlier `.labelsTeaching` step wrote on the same tokens.
    case teacher(Tensor)
}

extension LlamaModel {
    /// One forward and backward pass on `batch` sequences: returns the summed loss over counted
    /// targets and their count. Gradients reach only the adapters (scaled by `gradientScale /
    /// counted`, so a mean loss); frozen weights get none and need no buffers.
    /// `targets[i]` is the token row i should predict, or −1 to leave row i out of the loss.
    /// With `.teacher`, the gradient is the distillation loss's; the returned loss is still the labels'.
    public func trainingStep(tokens: [Int32], targets: [Int32], workspace w: TrainingWorkspace,
                             gradientScale: Float = 1, learning target: TrainingTarget = .labels) -> (lossSum: Double, counted: Int) {
        let c = config
        let rows = w.rows
        precondition(tokens.count == rows && targets.count == rows, "tokens and targets must be batch × seq")
        let shape = AttentionShape(batch: w.batch, seq: w.seq, heads: c.heads, kvHeads: c.kvHeads, headDim: c.headDim)

        // Forward, keeping what backward needs.
        tokens.withUnsafeBufferPointer {
            embed($0.baseAddress!, rows: rows, into: w.layers.first?.xIn.data ?? w.xFinal.data)
        }
        w.positions.withUnsafeBufferPointer { pp in
            let positions = pp.baseAddress!
            for l in layers.indices {
                let a = w.layers[l]
                let next = l + 1 < layers.count ? w.layers[l + 1].xIn : w.xFinal
                let buffers = BlockBuffers(input: a.xIn.data, middle: a.xMid.data, output: next.data, attentionNormed: a.xn1.data,
                                           q: a.q.data, k: a.k.data, v: a.v.data, attention: a.attention.data, mlpNormed: a.xn2.data,
                                           gate: a.gate.data, up: a.up.data, hidden: a.hidden.data,
                                           attentionRstd: a.rstd1.data, mlpRstd: a.rstd2.data)
                runBlock(l, buffers, rows: rows, positions: positions, attention: .sequences(shape, probs: a.probs.data, cache: nil), training: true)
            }
        }
        rmsNormForward(out: w.xnFinal.data, rstd: w.rstdFinal.data, input: w.xFinal.data, weight: finalNorm.data, rows: rows, channels: c.dim, eps: c.normEps)
        outputLogits(out: w.logits.data, input: w.xnFinal.data, rows: rows)

        // Loss and its gradient: mean over counted targets.
        let counted = targets.withUnsafeBufferPointer { t in t.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) } }
        guard counted > 0 else { return (0, 0) }
        let scale = gradientScale / Float(counted)
        targets.withUnsafeBufferPointer {
            switch target {
            case .labels, .labelsTeaching:
                if case .labelsTeaching(let teacher) = target {
                    precondition(teacher.count == rows * c.vocabSize, "the teacher's distribution must be rows × vocab")
                    softmaxForward(out: teacher.data, input: w.logits.data, rows: rows, columns: c.vocabSize)
                }
                _ = crossEntropyForwardBackward(logitsToGradient: w.logits.data, losses: w.losses.data, targets: $0.baseAddress!,
                                                rows: rows, vocab: c.vocabSize, scale: scale)
            case .teacher(let teacher):
                precondition(teacher.count == rows * c.vocabSize, "the teacher's distribution must be rows × vocab")
                _ = crossEntropyForwardBackward(logitsToGradient: w.logits.data, losses: w.losses.data, targets: $0.baseAddress!,
                                                teacher: UnsafePointer(teacher.data), rows: rows, vocab: c.vocabSize, scale: scale)
            }
        }
        var lossSum = 0.0
        for i in 0..<rows { lossSum += Double(w.losses[i]) }

        // Backward through the frozen model: only input gradients, plus the adapters' own.
        w.dxn.zero()
        let head = outputProjection
        withExtendedLifetime(head) {
            linearBackward(dInput: w.dxn.data, dWeight: nil, dOut: w.logits.data, input: w.xnFinal.data, weight: head.data,
                           rows: rows, inFeatures: c.dim, outFeatures: c.vocabSize)
        }
        w.dx.zero()
        rmsNormBackward(dInput: w.dx.data, dWeight: nil, dOut: w.dxn.data, input: w.xFinal.data, weight: finalNorm.data,
                        rstd: w.rstdFinal.data, rows: rows, channels: c.dim)
        w.positions.withUnsafeBufferPointer { pp in
            let positions = pp.baseAddress!
            for l in stride(from: layers.count - 1, through: 0, by: -1) where activeShape.layers[l].kept {
                // (A skipped block passed the stream through: its gradient passes through too.)
                let layer = layers[l], a = w.layers[l], width = activeShape.layers[l].mlpWidth
                // MLP: x_out = x_mid + down(silu(gate(n₂)) ⊙ up(n₂)), n₂ = norm(x_mid)
                w.dHidden.zero()
                projectBackward(layer, .down, width: width, dOut: w.dx.data, input: a.hidden.data, dInput: w.dHidden.data, rows: rows)
                w.dGate.zero(); w.dUp.zero()
                swigluBackward(dGate: w.dGate.data, dUp: w.dUp.data, dOut: w.dHidden.data, gate: a.gate.data, up: a.up.data, count: rows * width)
                w.dxn.zero()
                projectBackward(layer, .gate, width: width, dOut: w.dGate.data, input: a.xn2.data, dInput: w.dxn.data, rows: rows)
                projectBackward(layer, .up, width: width, dOut: w.dUp.data, input: a.xn2.data, dInput: w.dxn.data, rows: rows)
                rmsNormBackward(dInput: w.dx.data, dWeight: nil, dOut: w.dxn.data, input: a.xMid.data, weight: layer.ffnNorm.data,
                                rstd: a.rstd2.data, rows: rows, channels: c.dim)
                // Attention: x_mid = x_in + o(attend(rope(q(n₁)), rope(k(n₁)), v(n₁))), n₁ = norm(x_in)
                w.dAttention.zero()
                projectBackward(layer, .o, width: width, dOut: w.dx.data, input: a.attention.data, dInput: w.dAttention.data, rows: rows)
                w.dq.zero(); w.dk.zero(); w.dv.zero()
                attentionBackward(dq: w.dq.data, dk: w.dk.data, dv: w.dv.data, dOut: w.dAttention.data, q: a.q.data, k: a.k.data, v: a.v.data,
                                  probs: a.probs.data, shape: shape)
                ropeBackward(dx: w.dq.data, positions: positions, table: rope, rows: rows, heads: c.heads)
                ropeBackward(dx: w.dk.data, positions: positions, table: rope, rows: rows, heads: c.kvHeads)
                w.dxn.zero()
                projectBackward(layer, .q, width: width, dOut: w.dq.data, input: a.xn1.data, dInput: w.dxn.data, rows: rows)
                projectBackward(layer, .k, width: width, dOut: w.dk.data, input: a.xn1.data, dInput: w.dxn.data, rows: rows)
                projectBackward(layer, .v, width: width, dOut: w.dv.data, input: a.xn1.data, dInput: w.dxn.data, rows: rows)
                rmsNormBackward(dInput: w.dx.data, dWeight: nil, dOut: w.dxn.data, input: a.xIn.data, weight: layer.attentionNorm.data,
                                rstd: a.rstd1.data, rows: rows, channels: c.dim)
            }
        }
        return (lossSum, counted)
    }

    /// dInput += dOut · W for a frozen projection, plus its adapter's backward.
    @inline(__always)
    func projectBackward(_ layer: LlamaLayer, _ p: Projection, width: Int, dOut: UnsafePointer<Float>, input: UnsafePointer<Float>,
                         dInput: UnsafeMutablePointer<Float>, rows: Int) {
        let (i, o) = p.shape(config, ffn: width)
        // A packed weight is dequantized for the step (a copy: kept alive through the product).
        let weight = layer.float32Weight(p)
        withExtendedLifetime(weight) {
            linearBackward(dInput: dInput, dWeight: nil, dOut: dOut, input: input, weight: weight.data, rows: rows,
                           inFeatures: i, outFeatures: o, weightStride: p.shape(config).inFeatures)
        }
        layer.adapters[p]?.backward(dOut: dOut, input: input, dInput: dInput, rows: rows, inFeatures: i, outFeatures: o)
    }

    /// Summed loss and counted targets without gradients (validation), on the inference path.
    public func loss(tokens: [Int32], targets: [Int32], batch: Int, seq: Int, workspace: ForwardWorkspace? = nil) -> (lossSum: Double, counted: Int) {
        let scored = score(tokens: tokens, targets: targets, batch: batch, seq: seq, workspace: workspace)
        return (scored.lossSum, scored.counted)
    }

    /// Summed loss, targets the model ranks first (greedy next-token accuracy), and counted targets.
    public func score(tokens: [Int32], targets: [Int32], batch: Int, seq: Int,
                      workspace: ForwardWorkspace? = nil) -> (lossSum: Double, correct: Int, counted: Int) {
        let logits = forward(tokens: tokens, batch: batch, seq: seq, logits: .all, workspace: workspace)
        let rows = batch * seq, vocab = config.vocabSize
        let losses = Tensor(zeros: [rows])
        let counted = targets.withUnsafeBufferPointer {
            crossEntropyForward(losses: losses.data, logits: logits.data, targets: $0.baseAddress!, rows: rows, vocab: vocab)
        }
        var sum = 0.0, correct = 0
        for i in 0..<rows where targets[i] >= 0 {
            sum += Double(losses[i])
            // The first of the largest logits, as greedy decoding picks.
            let row = logits.data + i * vocab
            var best = 0
            for v in 1..<vocab where row[v] > row[best] { best = v }
            if best == Int(targets[i]) { correct += 1 }
        }
        return (sum, correct, counted)
    }
}
