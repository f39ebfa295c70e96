import Foundation
import Tensors
import XCTest

/// Every backward kernel against finite differences of its forward.
final class KernelGradientTests: XCTestCase {
    typealias G = GradientCheck

    func testLinear() {
        let (rows, inF, outF) = (3, 5, 4)
        let x = G.random([rows, inF], seed: 1), w = G.random([outF, inF], seed: 2), r = G.random([rows, outF], seed: 3)
        let y = Tensor(zeros: [rows, outF])
        func loss() -> Double {
            linearForward(out: y.data, input: x.data, weight: w.data, rows: rows, inFeatures: inF, outFeatures: outF)
            return G.dot(y, r)
        }
        let dx = Tensor(zeros: x.shape), dw = Tensor(zeros: w.shape)
        linearBackward(dInput: dx.data, dWeight: dw.data, dOut: r.data, input: x.data, weight: w.data,
                       rows: rows, inFeatures: inF, outFeatures: outF)
        G.assertMatches(dx, input: x, "linear dInput", loss: loss)
        G.assertMatches(dw, input: w, "linear dWeight", loss: loss)
    }

    func testRMSNorm() {
        // 19 channels: two 8-wide steps of the vectorised sums and a tail of 3.
        let (rows, channels) = (4, 19)
        let x = G.random([rows, channels], seed: 4), w = G.random([channels], seed: 5), r = G.random([rows, channels], seed: 6)
        let y = Tensor(zeros: x.shape), rstd = Tensor(zeros: [rows])
        func loss() -> Double {
            rmsNormForward(out: y.data, rstd: rstd.data, input: x.data, weight: w.data, rows: rows, channels: channels, eps: 1e-5)
            return G.dot(y, r)
        }
        _ = loss()
        let dx = Tensor(zeros: x.shape), dw = Tensor(zeros: w.shape)
        rmsNormBackward(dInput: dx.data, dWeight: dw.data, dOut: r.data, input: x.data, weight: w.data, rstd: rstd.data,
                        rows: rows, channels: channels)
        G.assertMatches(dx, input: x, step: 5e-3, "rmsnorm dInput", loss: loss)
        G.assertMatches(dw, input: w, "rmsnorm dWeight", loss: loss)
        // Frozen norms (no weight gradient) take a loop of their own: the same dInput.
        let dxFrozen = Tensor(zeros: x.shape)
        rmsNormBackward(dInput: dxFrozen.data, dWeight: nil, dOut: r.data, input: x.data, weight: w.data, rstd: rstd.data,
                        rows: rows, channels: channels)
        for i in 0..<dx.count { XCTAssertEqual(dxFrozen.data[i], dx.data[i], accuracy: 1e-6 * max(1, abs(dx.data[i])), "dInput \(i)") }
    }

    func testRoPE() {
        let (rows, heads, d) = (5, 2, 8)
        let table = RoPETable(headDim: d, maxPositions: 64, base: 10_000)
        let positions: [Int32] = [0, 3, 17, 40, 63]
        let x = G.random([rows, heads, d], seed: 7), r = G.random([rows, heads, d], seed: 8)
        func loss() -> Double {
            let y = x.copy()
            positions.withUnsafeBufferPointer { ropeForward(x: y.data, positions: $0.baseAddress!, table: table, rows: rows, heads: heads) }
            return G.dot(y, r)
        }
        let dx = r.copy()
        positions.withUnsafeBufferPointer { ropeBackward(dx: dx.data, positions: $0.baseAddress!, table: table, rows: rows, heads: heads) }
        G.assertMatches(dx, input: x, "rope", loss: loss)
    }

    func testRoPERotatesAdjacentPairsByTheGGUFAngle() {
        // Position 1, pair 0 of a 4-wide head: θ = 1; pair 1: θ = base^(−1/2).
        let table = RoPETable(headDim: 4, maxPositions: 2, base: 100)
        let x = Tensor(shape: [1, 1, 4], values: [1, 0, 1, 0])
        let position: [Int32] = [1]
        position.withUnsafeBufferPointer { ropeForward(x: x.data, positions: $0.baseAddress!, table: table, rows: 1, heads: 1) }
        XCTAssertEqual(x.array, [cos(1), sin(1), cos(0.1), sin(0.1)].map(Float.init), accuracy: 1e-6)
    }

    func testSwiGLU() {
        let n = 11
        let g = G.random([n], seed: 9, std: 2), u = G.random([n], seed: 10), r = G.random([n], seed: 11)
        let y = Tensor(zeros: [n])
        func loss() -> Double {
            swigluForward(out: y.data, gate: g.data, up: u.data, count: n)
            return G.dot(y, r)
        }
        let dg = Tensor(zeros: [n]), du = Tensor(zeros: [n])
        swigluBackward(dGate: dg.data, dUp: du.data, dOut: r.data, gate: g.data, up: u.data, count: n)
        G.assertMatches(dg, input: g, "swiglu dGate", loss: loss)
        G.assertMatches(du, input: u, "swiglu dUp", loss: loss)
    }

    func testSoftmax() {
        let (rows, cols) = (3, 6)
        let x = G.random([rows, cols], seed: 12), r = G.random([rows, cols], seed: 13)
        let y = Tensor(zeros: x.shape)
        func loss() -> Double {
            softmaxForward(out: y.data, input: x.data, rows: rows, columns: cols)
            return G.dot(y, r)
        }
        _ = loss()
        let dx = Tensor(zeros: x.shape)
        softmaxBackward(dInput: dx.data, dOut: r.data, out: y.data, rows: rows, columns: cols)
        G.assertMatches(dx, input: x, step: 5e-3, "softmax", loss: loss)
    }

    func testCrossEntropyWithAMaskedRow() {
        let (rows, vocab) = (4, 9)
        let z = G.random([rows, vocab], seed: 14, std: 2)
        let targets: [Int32] = [3, -1, 8, 0]
        let losses = Tensor(zeros: [rows])
        func loss() -> Double {
            targets.withUnsafeBufferPointer { _ = crossEntropyForward(losses: losses.data, logits: z.data, targets: $0.baseAddress!, rows: rows, vocab: vocab) }
            return (0..<rows).reduce(0.0) { $0 + Double(losses[$1]) } / 3
        }
        let counted = targets.withUnsafeBufferPointer { crossEntropyForward(losses: losses.data, logits: z.data, targets: $0.baseAddress!, rows: rows, vocab: vocab) }
        XCTAssertEqual(counted, 3)
        XCTAssertEqual(losses[1], 0)
        let dz = Tensor(zeros: z.shape)
        targets.withUnsafeBufferPointer { crossEntropyBackward(dLogits: dz.data, logits: z.data, targets: $0.baseAddress!, rows: rows, vocab: vocab, scale: 1.0 / 3) }
        G.assertMatches(dz, input: z, step: 5e-3, "cross-entropy", loss: loss)
        for j in 0..<vocab { XCTAssertEqual(dz[vocab + j], 0, "the masked row gets no gradient") }
    }

    func testEmbedding() {
        let (rows, channels, vocab) = (5, 3, 4)
        let table = G.random([vocab, channels], seed: 15), r = G.random([rows, channels], seed: 16)
        let tokens: [Int32] = [2, 0, 2, 3, 1]
        let y = Tensor(zeros: [rows, channels])
        func loss() -> Double {
            tokens.withUnsafeBufferPointer { embeddingForward(out: y.data, tokens: $0.baseAddress!, table: table.data, rows: rows, channels: channels, vocab: vocab) }
            return G.dot(y, r)
        }
        let dt = Tensor(zeros: table.shape)
        tokens.withUnsafeBufferPointer { embeddingBackward(dTable: dt.data, dOut: r.data, tokens: $0.baseAddress!, rows: rows, channels: channels) }
        G.assertMatches(dt, input: table, "embedding", loss: loss)
    }

    func testAttention() {
        // 2 sequences of 70 tokens: more than one causal block of 64 rows; 4 query heads over 2 KV heads.
        let shape = AttentionShape(batch: 2, seq: 70, heads: 4, kvHeads: 2, headDim: 4)
        let rows = shape.batch * shape.seq
        let q = G.random([rows, 4, 4], seed: 17), k = G.random([rows, 2, 4], seed: 18), v = G.random([rows, 2, 4], seed: 19)
        let r = G.random([rows, 4, 4], seed: 20)
        let out = Tensor(zeros: q.shape), probs = Tensor(zeros: [2, 4, 70, 70])
        func loss() -> Double {
            attentionForward(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data, shape: shape)
            return G.dot(out, r)
        }
        _ = loss()
        let dq = Tensor(zeros: q.shape), dk = Tensor(zeros: k.shape), dv = Tensor(zeros: v.shape)
        attentionBackward(dq: dq.data, dk: dk.data, dv: dv.data, dOut: r.data, q: q.data, k: k.data, v: v.data,
                          probs: probs.data, shape: shape)
        // Spot-check a sample of elements (every 7th) to keep the test quick in debug builds.
        for (name, analytic, input) in [("dq", dq, q), ("dk", dk, k), ("dv", dv, v)] {
            var worst: Float = 0
            for i in stride(from: 0, to: input.count, by: 7) {
                let saved = input[i]
                input[i] = saved + 1e-2; let plus = loss()
                input[i] = saved - 1e-2; let minus = loss()
                input[i] = saved
                let numeric = Float((plus - minus) / 2e-2)
                worst = max(worst, abs(numeric - analytic[i]) / max(1, abs(numeric)))
            }
            XCTAssertLessThan(worst, 2e-2, "attention \(name)")
        }
    }

    func testAttentionIsCausalAndDecodeAgreesWithTheFullPass() {
        let shape = AttentionShape(batch: 1, seq: 6, heads: 2, kvHeads: 1, headDim: 4)
        let q = G.random([6, 2, 4], seed: 21), k = G.random([6, 1, 4], seed: 22), v = G.random([6, 1, 4], seed: 23)
        let out = Tensor(zeros: q.shape), probs = Tensor(zeros: [1, 2, 6, 6])
        attentionForward(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data, shape: shape)
        // Changing the last token's key must not change earlier outputs.
        let before = out.array
        k[5 * 4] += 3
        attentionForward(out: out.data, probs: probs.data, q: q.data, k: k.data, v: v.data, shape: shape)
        XCTAssertEqual(Array(out.array[0..<(5 * 8)]), Array(before[0..<(5 * 8)]))
        // The decode path on the cache gives the last row of the full pass.
        let decoded = Tensor(zeros: [2, 4]), scores = Tensor(zeros: [6])
        attentionDecode(out: decoded.data, q: q.data + 5 * 8, keys: k.data, values: v.data, scores: scores.data,
                        length: 6, heads: 2, kvHeads: 1, headDim: 4)
        XCTAssertEqual(decoded.array, Array(out.array[(5 * 8)...]), accuracy: 1e-5)
    }
}

func XCTAssertEqual(_ a: [Float], _ b: [Float], accuracy: Float, file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(a.count, b.count, file: file, line: line)
    for (x, y) in zip(a, b) where abs(x - y) > accuracy {
        XCTFail("\(a) differs from \(b) beyond \(accuracy)", file: file, line: line)
        return
    }
}

final class FusedCrossEntropyTests: XCTestCase {
    /// The fused kernel gives the losses of the forward kernel and the gradient of the backward
    /// kernel (itself checked against finite differences above), and its own gradient matches
    /// finite differences of its loss.
    func testFusedLossAndGradientMatchTheSeparateKernels() {
        let (rows, vocab) = (5, 37)
        let z = GradientCheck.random([rows, vocab], seed: 30, std: 3)
        let targets: [Int32] = [0, 36, -1, 17, 4]
        let losses = Tensor(zeros: [rows]), fusedLosses = Tensor(zeros: [rows])
        let dz = Tensor(zeros: z.shape)
        targets.withUnsafeBufferPointer { t in
            crossEntropyForward(losses: losses.data, logits: z.data, targets: t.baseAddress!, rows: rows, vocab: vocab)
            crossEntropyBackward(dLogits: dz.data, logits: z.data, targets: t.baseAddress!, rows: rows, vocab: vocab, scale: 0.25)
        }
        let fused = z.copy()
        let counted = targets.withUnsafeBufferPointer {
            crossEntropyForwardBackward(logitsToGradient: fused.data, losses: fusedLosses.data, targets: $0.baseAddress!, rows: rows, vocab: vocab, scale: 0.25)
        }
        XCTAssertEqual(counted, 4)
        XCTAssertEqual(fusedLosses.array, losses.array, accuracy: 1e-5)
        XCTAssertEqual(fused.array, dz.array, accuracy: 1e-6)
        GradientCheck.assertMatches(fused, input: z, step: 5e-3, "fused cross-entropy") {
            targets.withUnsafeBufferPointer { crossEntropyForward(losses: losses.data, logits: z.data, targets: $0.baseAddress!, rows: rows, vocab: vocab) }
            return 0.25 * (0..<rows).reduce(0.0) { $0 + Double(losses[$1]) }
        }
    }
}

final class DistillationKernelTests: XCTestCase {
    /// The distillation gradient matches finite differences of the distillation loss, masked rows
    /// get none, and the reported loss is the labels' cross-entropy.
    func testDistillationGradientAndLabelLoss() {
        let (rows, vocab) = (4, 37)
        let z = GradientCheck.random([rows, vocab], seed: 31, std: 3)
        let teacher = Tensor(zeros: z.shape)
        softmaxForward(out: teacher.data, input: GradientCheck.random([rows, vocab], seed: 32, std: 2).data, rows: rows, columns: vocab)
        let targets: [Int32] = [5, -1, 36, 0]
        let losses = Tensor(zeros: [rows]), labelLosses = Tensor(zeros: [rows]), expectedLabelLosses = Tensor(zeros: [rows])
        let gradient = z.copy()
        let counted = targets.withUnsafeBufferPointer { t in
            crossEntropyForwardBackward(logitsToGradient: gradient.data, losses: labelLosses.data, targets: t.baseAddress!,
                                        teacher: teacher.data, rows: rows, vocab: vocab, scale: 1.0 / 3)
        }
        XCTAssertEqual(counted, 3)
        targets.withUnsafeBufferPointer { crossEntropyForward(losses: expectedLabelLosses.data, logits: z.data, targets: $0.baseAddress!, rows: rows, vocab: vocab) }
        XCTAssertEqual(labelLosses.array, expectedLabelLosses.array, accuracy: 1e-5)
        for j in 0..<vocab { XCTAssertEqual(gradient[vocab + j], 0, "the masked row gets no gradient") }
        GradientCheck.assertMatches(gradient, input: z, step: 5e-3, "distillation") {
            targets.withUnsafeBufferPointer {
                distillationForward(losses: losses.data, logits: z.data, teacher: teacher.data, targets: $0.baseAddress!, rows: rows, vocab: vocab)
            }
            return (0..<rows).reduce(0.0) { $0 + Double(losses[$1]) } / 3
        }
    }

    /// Learning from itself teaches nothing: the gradient toward one's own distribution is zero,
    /// and the distillation loss is then the distribution's entropy.
    func testATeacherEqualToTheStudentGivesNoGradient() {
        let (rows, vocab) = (2, 19)
        let z = GradientCheck.random([rows, vocab], seed: 33, std: 2)
        let teacher = Tensor(zeros: z.shape)
        softmaxForward(out: teacher.data, input: z.data, rows: rows, columns: vocab)
        let targets: [Int32] = [1, 2]
        let gradient = z.copy(), labelLosses = Tensor(zeros: [rows]), losses = Tensor(zeros: [rows])
        targets.withUnsafeBufferPointer { t in
            _ = crossEntropyForwardBackward(logitsToGradient: gradient.data, losses: labelLosses.data, targets: t.baseAddress!,
                                            teacher: teacher.data, rows: rows, vocab: vocab, scale: 1)
            _ = distillationForward(losses: losses.data, logits: z.data, teacher: teacher.data, targets: t.baseAddress!, rows: rows, vocab: vocab)
        }
        XCTAssertLessThan(gradient.array.map(abs).max()!, 1e-5)
        for i in 0..<rows {
            let entropy = (0..<vocab).reduce(0.0) { s, j in let p = Double(teacher[i * vocab + j]); return s - p * log(p) }
            XCTAssertEqual(Double(losses[i]), entropy, accuracy: 1e-4)
        }
    }
}
