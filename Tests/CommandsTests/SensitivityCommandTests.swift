@testable import Commands
import Compression
import Display
import Foundation
import Tensors
import Transformer
import Workbench
import XCTest

final class SensitivityCommandTests: XCTestCase {
    /// A cell is the loss change of that module compressed alone: checked against quantizing
    /// that module by hand and a whole forward; the model is unchanged afterwards.
    func testACellIsTheLossChangeOfThatModuleAloneAndTheModelIsUnchanged() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        let model = try session.requireModel()
        let before = model.layers.map { layer in Projection.allCases.map { layer.weight($0).array } }
        let grid = GroupQuantizer.Parameters(bits: 4, group: 16, symmetric: false)
        let result = try session.sensitivity(.quantize(grid), targets: [.v, .down], tokens: 128, window: 64, split: nil,
                                             calibrationSplit: nil, calibrationWindows: 1, calibrationLength: 64) { _, _, _ in }
        XCTAssertEqual(model.layers.map { layer in Projection.allCases.map { layer.weight($0).array } }, before, "unchanged")
        XCTAssertEqual(result.columns, ["v", "down"])
        XCTAssertTrue(result.deltas.allSatisfy { $0.allSatisfy { $0 != nil } })

        let all = try session.tokens(split: session.evaluationSplit!)
        let tokens = (0..<2).flatMap { all[($0 * 64)..<($0 * 64 + 64)] }
        let targets = (0..<2).flatMap { all[($0 * 64 + 1)...($0 * 64 + 64)] }
        func meanLoss() -> Double {
            let (s, c) = model.loss(tokens: Array(tokens), targets: Array(targets), batch: 2, seq: 64)
            return s / Double(c)
        }
        let base = meanLoss()
        XCTAssertEqual(result.baseLoss, base, accuracy: 1e-4)
        let w = model.layers[1].wDown
        let (i, o) = Projection.down.shape(model.config)
        GroupQuantizer.quantize(w, rows: o, columns: i, parameters: grid).dequantize(into: w.data)
        XCTAssertEqual(result.deltas[1][1]!, meanLoss() - base, accuracy: 1e-4)

        let text = try runner.run("sensitivity width=50% tokens=128 window=64", output: output).result?.plainText ?? ""
        XCTAssertTrue(text.contains("mlp"), text)
        XCTAssertThrowsError(try runner.run("sensitivity bits=4 width=50%", output: output)) { XCTAssertTrue("\($0)".contains("exactly one"), "\($0)") }
    }

    func testAnInterruptedSensitivityKeepsItsCellsAndTheModel() throws {
        let (session, _, _) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        let model = try session.requireModel()
        let before = model.layers.map { layer in Projection.allCases.map { layer.weight($0).array } }
        var cells = 0
        XCTAssertThrowsError(try session.sensitivity(.prune(.unstructured(0.5), wanda: false), targets: Projection.allCases, tokens: 128, window: 64,
                                                     split: nil, calibrationSplit: nil, calibrationWindows: 1, calibrationLength: 64) { _, _, _ in
            cells += 1
            if cells == 3 { session.cancellation.cancel() }
        }) { error in
            let partial = (error as? SensitivityInterrupted)?.partial
            XCTAssertEqual(partial?.deltas.flatMap { $0 }.compactMap { $0 }.count, 3, "the cells measured are kept")
        }
        session.cancellation.reset()
        XCTAssertEqual(model.layers.map { layer in Projection.allCases.map { layer.weight($0).array } }, before, "unchanged")
    }
}
