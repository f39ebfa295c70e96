@testable import Commands
import Compression
import Display
import Foundation
import Workbench
import XCTest

final class ALoRACommandTests: XCTestCase {
    func testALoRARunsRoundsKeepsTheBudgetAndShowsOneLiveDisplay() throws {
        let (session, runner, output) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 60,
                                                        then: "data examples arithmetic count=200 digits=3")
        let result = try runner.run("alora budget=2 rounds=2 warmup_steps=4 round_steps=2 seq=64 val_batch=2 val_seq=32 targets=q,v,up,down",
                                    output: output).result
        let allocation = try XCTUnwrap(session.rankAllocation())
        XCTAssertEqual(allocation.values.reduce(0, +), 2 * 4 * 2, "the total rank is the budget's")
        XCTAssertNotEqual(Set(allocation.values), [2], "ranks moved")
        XCTAssertTrue(result?.plainText.contains("Final ALoRA allocation") ?? false)
        XCTAssertTrue(result?.values["text/html"].map { "\($0)".contains("background:") } ?? false, "a heat-map table")
        // One live display: shown once, then updated in place, and it is a chart.
        let ids = output.events.compactMap { event -> String? in
            if case .display(_, let id?) = event, id.hasPrefix("alora-") { return id }
            return nil
        }
        XCTAssertEqual(ids.count, 1)
        let last = output.events.reversed().compactMap { event -> MimeBundle? in
            if case .update(let bundle, let id) = event, id == ids[0] { return bundle }
            return nil
        }.first
        XCTAssertEqual(Set(last.map { Array($0.values.keys) } ?? []), ["text/plain", "image/svg+xml", "application/vnd.vegalite.v5+json"])
        XCTAssertTrue(last?.plainText.contains("round 2/2") ?? false, last?.plainText ?? "")

        let ranks = try runner.run("ranks", output: output).result?.plainText ?? ""
        XCTAssertTrue(ranks.contains("layer") && ranks.contains("down"), ranks)
    }

    func testAnInterruptedALoRAKeepsItsAllocation() throws {
        let (session, runner, _) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 60)
        let watch = CancellingOutput(cancellation: session.cancellation)
        XCTAssertThrowsError(try runner.run("alora budget=2 rounds=3 warmup_steps=50 round_steps=2 seq=32 val_seq=16 targets=q,v", output: watch)) {
            XCTAssertEqual(($0 as? CommandError)?.kind, .interrupted)
        }
        session.cancellation.reset()
        let allocation = try XCTUnwrap(session.rankAllocation(), "the adapters stay")
        XCTAssertEqual(allocation.values.reduce(0, +), 2 * 2 * 2)
        // Stopped before the rounds were done (warm-up 50 + 3 rounds × 2 steps), wherever the interrupt landed.
        XCTAssertLessThan(session.trainingHistory.last?.step ?? 56, 56, "stopped early")
    }
}
