@testable import Commands
import Compression
import Display
import Foundation
import Workbench
import XCTest

final class SparsityCommandTests: XCTestCase {
    func testSparsifyShowsAHeatMapRecordsTheRecipeAndRestores() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        let model = try session.requireModel()
        let dense = model.layers.map { $0.wq.array }
        let result = try runner.run("sparsify wanda sparsity=50% calibration_windows=2 calibration_len=64", output: output).result
        XCTAssertTrue(result?.plainText.contains("50.00 %") ?? false, result?.plainText ?? "")
        let totals = Sparsity.totals(model)
        XCTAssertEqual(Double(totals.zeros) / Double(totals.entries), 0.5, accuracy: 1e-9)
        // One live heat map, a chart.
        let ids = output.events.compactMap { event -> String? in
            if case .display(_, let id?) = event, id.hasPrefix("sparsify-") { return id }
            return nil
        }
        XCTAssertEqual(ids.count, 1)
        let status = try runner.run("status", output: output).result?.plainText ?? ""
        XCTAssertTrue(status.contains("sparsified (wanda)") && status.contains("loaded"), status)

        let map = try runner.run("sparsity", output: output).result?.plainText ?? ""
        XCTAssertTrue(map.contains("50"), map)
        _ = try runner.run("sparsify restore", output: output)
        XCTAssertEqual(model.layers.map { $0.wq.array }, dense, "the dense weights exactly")
        XCTAssertEqual(Sparsity.totals(model).zeros, 0)
        XCTAssertThrowsError(try runner.run("sparsify restore", output: output)) { XCTAssertTrue("\($0)".contains("never pruned"), "\($0)") }
    }

    func testMergingADenseAdapterIntoASparseBaseWarns() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 80)
        _ = try runner.run("sparsify magnitude pattern=2:4\nlora rank=4 targets=q,v\ntrain steps=2 seq=32", output: output)
        let merged = try runner.run("lora merge", output: output).result?.plainText ?? ""
        XCTAssertTrue(merged.contains("densified"), merged)
        XCTAssertThrowsError(try runner.run("sparsify wanda", output: output)) { XCTAssertTrue("\($0)".contains("unmerge"), "\($0)") }
        _ = try runner.run("lora unmerge", output: output)
        let totals = Sparsity.totals(try session.requireModel())
        XCTAssertEqual(Double(totals.zeros) / Double(totals.entries), 0.5, accuracy: 1e-9, "unmerge gives the sparsity back")
        XCTAssertTrue(session.recipe.map(\.action).contains("merged adapters"))
    }

    func testBadSparsifyArgumentsAreClearErrors() throws {
        let (session, runner, output) = try tinySession(reading: "Emma. ", repeated: 80)
        for (line, expected) in [("sparsify prune", "wanda"), ("sparsify wanda pattern=3:3", "N:M"), ("sparsify wanda layers=9", "outside"),
                                 ("sparsify wanda calibration_windows=4000 calibration_len=100", "tokens")] {
            XCTAssertThrowsError(try runner.run(line, output: output), line) { XCTAssertTrue("\($0)".contains(expected), "\(line): \($0)") }
        }
        XCTAssertEqual(Sparsity.totals(try session.requireModel()).zeros, 0, "nothing pruned")
        XCTAssertTrue(session.recipe.allSatisfy { $0.action == "loaded" })
    }
}
