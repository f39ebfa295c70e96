@testable import Compression
import Foundation
import Tensors
import Transformer
import XCTest

final class SparsityTests: XCTestCase {
    let config = try! LlamaConfiguration(layers: 3, dim: 16, ffnDim: 32, heads: 4, kvHeads: 2, vocabSize: 256, contextLength: 64)

    func randomMatrix(_ rows: Int, _ columns: Int, seed: UInt64) -> Tensor {
        let w = Tensor(zeros: [rows, columns])
        var rng = SeededGenerator(seed: seed)
        rng.fillNormal(w, std: 1)
        return w
    }

    func testEveryRowLosesItsLowestScores() {
        let (rows, columns) = (6, 20)
        let w = randomMatrix(rows, columns, seed: 1)
        let original = w.copy()
        let scores = (0..<w.count).map { abs(w[$0]) * Float(1 + $0 % 3) }
        let cut = Sparsity.prune(w, scores: scores, rows: rows, columns: columns, pattern: .unstructured(0.45), wholeMatrix: false)
        XCTAssertEqual(cut, rows * 9, "⌊20 × 0.45⌋ = 9 per row")
        for r in 0..<rows {
            let row = (r * columns)..<((r + 1) * columns)
            let zeroed = row.filter { w[$0] == 0 }
            let kept = row.filter { w[$0] != 0 }
            XCTAssertEqual(zeroed.count, 9)
            XCTAssertLessThanOrEqual(zeroed.map { scores[$0] }.max()!, kept.map { scores[$0] }.min()!)
            for i in kept { XCTAssertEqual(w[i], original[i]) }
        }
    }

    func testNOfMZeroesTheLowestInEveryGroup() {
        let (rows, columns) = (5, 16)
        let w = randomMatrix(rows, columns, seed: 2)
        let scores = (0..<w.count).map { abs(w[$0]) }
        Sparsity.prune(w, scores: scores, rows: rows, columns: columns, pattern: .nOfM(2, 4), wholeMatrix: false)
        for g in stride(from: 0, to: rows * columns, by: 4) {
            let group = g..<(g + 4)
            XCTAssertEqual(group.filter { w[$0] == 0 }.count, 2, "group at \(g)")
            XCTAssertLessThanOrEqual(group.filter { w[$0] == 0 }.map { scores[$0] }.max()!, group.filter { w[$0] != 0 }.map { scores[$0] }.min()!)
        }
        XCTAssertEqual(Sparsity.Pattern.nOfM(parsing: "4:8"), .nOfM(4, 8))
        XCTAssertNil(Sparsity.Pattern.nOfM(parsing: "4:4"))
        XCTAssertNil(Sparsity.Pattern.nOfM(parsing: "x:8"))
    }

    func testMagnitudeUsesOneThresholdPerMatrix() throws {
        let model = LlamaModel.random(config: config, seed: 3)
        let down = model.layers[1].wDown.copy()
        var p = PruningParameters()
        p.pattern = .unstructured(0.5)
        p.targets = [.down]
        p.layers = [1]
        try MagnitudePruning.prune(model: model, parameters: p)
        let w = model.layers[1].wDown
        XCTAssertEqual(Sparsity.zeros(w), w.count / 2)
        let pruned = (0..<w.count).filter { w[$0] == 0 }.map { abs(down[$0]) }
        let kept = (0..<w.count).filter { w[$0] != 0 }.map { abs(down[$0]) }
        XCTAssertLessThanOrEqual(pruned.max()!, kept.min()!)
        // Rows differ: one threshold, not a fraction of every row.
        let perRow = (0..<config.dim).map { r in (0..<config.ffnDim).filter { w[r * config.ffnDim + $0] == 0 }.count }
        XCTAssertGreaterThan(Set(perRow).count, 1)
        XCTAssertEqual(Sparsity.zeros(model.layers[0].wDown), 0, "layer 0 untouched")
        XCTAssertEqual(Sparsity.zeros(model.layers[1].wUp), 0, "up untouched")
    }

    func windows(_ n: Int, _ len: Int) -> [[Int32]] {
        (0..<n).map { (w: Int) -> [Int32] in (0..<len).map { (t: Int) -> Int32 in Int32((t * 37 + w * 11 + 5) % 256) } }
    }

    /// Wanda's mask of every projection against the definition computed another way: the block's
    /// inputs from a whole forward of the model pruned so far (`residualStreams`), the projections'
    /// inputs rebuilt by hand for q, k, v, gate and up (RMSNorm of the stream), and the scores
    /// |W_ij|·‖X_j‖ taken on the dense weights. Each row's pruned scores lie below its kept ones
    /// (within a relative 1e-4: the two paths round differently).
    func testWandaMatchesItsDefinitionBlockByBlock() throws {
        let model = LlamaModel.random(config: config, seed: 4)
        let dense = model.layers.map { layer in Projection.allCases.map { layer.weight($0).copy() } }
        let calibration = windows(3, 12)
        var p = PruningParameters()
        p.pattern = .unstructured(0.5)
        var order = [Int]()
        try Wanda.prune(model: model, parameters: p, windows: calibration) { order.append($0) }
        XCTAssertEqual(order, [0, 1, 2])

        // The reference: layers before l as pruned, layer l dense again to read its inputs.
        let reference = LlamaModel.random(config: config, seed: 4)
        for l in 0..<config.layers {
            for earlier in 0..<l {
                for projection in Projection.allCases {
                    let src = model.layers[earlier].weight(projection)
                    reference.layers[earlier].weight(projection).data.update(from: src.data, count: src.count)
                }
            }
            let tokens = calibration.flatMap { $0 }
            let stream = reference.residualStreams(tokens: tokens, batch: calibration.count, seq: 12)[l]
            let rows = tokens.count
            // q, k, v read RMSNorm(x)·g of the stream entering the block.
            let normed = Tensor(zeros: [rows, config.dim])
            rmsNormForward(out: normed.data, rstd: nil, input: stream.data, weight: reference.layers[l].attentionNorm.data,
                           rows: rows, channels: config.dim, eps: config.normEps)
            var sumOfSquares = [Double](repeating: 0, count: config.dim)
            for r in 0..<rows { for j in 0..<config.dim { sumOfSquares[j] += Double(normed[r * config.dim + j] * normed[r * config.dim + j]) } }
            for projection in [Projection.q, .k, .v] {
                let k = Projection.allCases.firstIndex(of: projection)!
                let (i, o) = projection.shape(config)
                let scores = Wanda.scores(weight: dense[l][k], rows: o, columns: i, inputSumOfSquares: sumOfSquares)
                let pruned = model.layers[l].weight(projection)
                for r in 0..<o {
                    let row = (r * i)..<((r + 1) * i)
                    let zeroed = row.filter { pruned[$0] == 0 }
                    XCTAssertEqual(zeroed.count, i / 2, "\(l).\(projection) row \(r)")
                    let highestPruned = zeroed.map { scores[$0] }.max()!
                    let lowestKept = row.filter { pruned[$0] != 0 }.map { scores[$0] }.min()!
                    XCTAssertLessThanOrEqual(highestPruned, lowestKept * (1 + 1e-4), "\(l).\(projection) row \(r)")
                }
            }
            for projection in [Projection.o, .gate, .up, .down] {
                let (i, o) = projection.shape(config)
                let pruned = model.layers[l].weight(projection)
                for r in 0..<o { XCTAssertEqual((0..<i).filter { pruned[r * i + $0] == 0 }.count, i / 2) }
            }
        }
    }

    func testAnInterruptedWandaLeavesWholeBlocksPruned() throws {
        let model = LlamaModel.random(config: config, seed: 5)
        let dense = model.layers.map { layer in Projection.allCases.map { layer.weight($0).copy() } }
        let cancellation = CancellationToken()
        var p = PruningParameters()
        p.pattern = .nOfM(2, 4)
        var pruned = [Int]()
        XCTAssertThrowsError(try Wanda.prune(model: model, parameters: p, windows: windows(2, 8), cancellation: cancellation) { l in
            pruned.append(l)
            if l == 1 { cancellation.cancel() }
        }) { XCTAssertTrue($0 is CancellationError) }
        XCTAssertEqual(pruned, [0, 1])
        for l in 0...1 {
            for p in Projection.allCases { XCTAssertEqual(Sparsity.zeros(model.layers[l].weight(p)), model.layers[l].weight(p).count / 2, "\(l).\(p)") }
        }
        for (k, p) in Projection.allCases.enumerated() { XCTAssertEqual(model.layers[2].weight(p).array, dense[2][k].array, "layer 2 as it was") }
        XCTAssertTrue(model.layers.allSatisfy { $0.adapters.isEmpty })
    }

    func testBadPatternsAreRefused() {
        var p = PruningParameters()
        p.pattern = .nOfM(3, 5)
        XCTAssertThrowsError(try p.validate(for: config)) { XCTAssertTrue("\($0)".contains("groups of 5"), "\($0)") }
        p.pattern = .unstructured(0.5)
        p.layers = [7]
        XCTAssertThrowsError(try p.validate(for: config)) { XCTAssertTrue("\($0)".contains("layer 7"), "\($0)") }
    }
}
