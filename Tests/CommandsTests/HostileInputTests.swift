@testable import Commands
import Compression
import Foundation
import Tensors
import Workbench
import XCTest

/// Bad command lines and files from a hostile-input run: each must end as a clear error and
/// leave the kernel process and the session as they were.
final class HostileInputTests: XCTestCase {
    /// The error a cell ends with; fails the test when it runs.
    func failure(_ runner: CellRunner, _ code: String, output: RecordingOutput = RecordingOutput()) -> CommandError? {
        do {
            _ = try runner.run(code, output: output)
            XCTFail("`\(code.prefix(80))` should fail")
            return nil
        } catch {
            XCTAssertTrue(error is CommandError, "\(error)")
            return error as? CommandError
        }
    }

    func testNonFiniteAndHugeNumbersAreRefused() throws {
        let (session, runner, _) = try tinySession(reading: "Emma Woodhouse, handsome, clever, and rich. ", repeated: 40,
                                                   then: "elastic mode=B ranks=8,4 widths=100%,50%")
        let genome = session.activeGenome
        for code in ["subnet width=nan", "subnet width=inf", "subnet width=-inf", "subnet width=1e300", "subnet width=0",
                     "cost width=nan", "cost width=1e300", "elastic ranks=5000000000000000000", "elastic ranks=8,-1",
                     "elastic mode=B widths=nan", "elastic mode=B widths=1e300%", "model tiny layers=1e300"] {
            XCTAssertEqual(failure(runner, code)?.kind, .badValue, code)
        }
        XCTAssertEqual(session.activeGenome, genome, "the active subnet is unchanged")
        XCTAssertNotNil(session.elastic, "the elastic adapters are still there")
    }

    func testWindowsLongerThanTheContextAndTextsShorterThanAWindow() throws {
        let (session, runner, output) = try tinySession(reading: "It is a truth universally acknowledged. ", repeated: 40, then: "lora rank=4")
        // The window is clamped to the context (128 here); so must the stride be.
        let ppl = try runner.run("eval ppl window=8192 stride=8192", output: output).result?.plainText ?? ""
        XCTAssertTrue(ppl.contains("128 / 128"), ppl)

        let tiny = try temporaryText("hello world!", repeated: 1)
        _ = try runner.run("data text \"\(tiny)\"", output: output)
        let error = failure(runner, "train steps=2 seq=32", output: output)
        XCTAssertTrue(error?.message.contains("too few for windows of seq=32") ?? false, error?.message ?? "")
        XCTAssertNotNil(session.lora, "the adapters are kept")
        XCTAssertTrue(session.trainingHistory.isEmpty)
        // The live display does not stay at "running".
        let last = output.events.reversed().compactMap { event -> String? in
            if case .update(let bundle, let id) = event, id.hasPrefix("training-") { return bundle.plainText }
            return nil
        }.first
        XCTAssertTrue(last?.contains("failed") ?? false, last ?? "no training display")
    }

    func testFailingAdapterReplacementsKeepTheAdapters() throws {
        let (session, runner, output) = try tinySession(reading: "She was the youngest of the two daughters. ", repeated: 40,
                                                        then: "lora rank=4 targets=q,v")
        let before = try XCTUnwrap(session.lora)
        let a = before.ordered[0].adapter.a.array
        XCTAssertEqual(failure(runner, "lora rank=1000")?.kind, .failed)
        XCTAssertTrue(session.lora === before, "lora rank=1000 keeps the old adapters")
        XCTAssertTrue(failure(runner, "elastic ranks=1000,8")?.message.contains("rank 1000") ?? false)
        XCTAssertTrue(session.lora === before && session.elastic == nil)

        let directory = NSTemporaryDirectory() + "sculpt-bad-adapters-\(UUID().uuidString)"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: directory) }
        _ = try runner.run("adapters save \"\(directory)\"", output: output)
        let config = directory + "/" + PEFTAdapters.configFile
        let weights = directory + "/" + PEFTAdapters.weightsFile
        let goodConfig = try Data(contentsOf: URL(fileURLWithPath: config))
        let cases: [(String, () throws -> Void)] = [
            ("r 0", { try #"{"r": 0, "lora_alpha": 8, "target_modules": ["q_proj"]}"#.write(toFile: config, atomically: true, encoding: .utf8) }),
            ("r negative", { try #"{"r": -3, "lora_alpha": 8, "target_modules": ["q_proj"]}"#.write(toFile: config, atomically: true, encoding: .utf8) }),
            ("r huge", { try #"{"r": 1e300, "lora_alpha": 8, "target_modules": ["q_proj"]}"#.write(toFile: config, atomically: true, encoding: .utf8) }),
            ("r above the width", { try #"{"r": 1000, "lora_alpha": 8, "target_modules": ["q_proj"]}"#.write(toFile: config, atomically: true, encoding: .utf8) }),
            ("weights truncated", {
                try goodConfig.write(to: URL(fileURLWithPath: config))
                try Data(try Data(contentsOf: URL(fileURLWithPath: weights)).prefix(100)).write(to: URL(fileURLWithPath: weights))
            }),
        ]
        for (name, corrupt) in cases {
            try corrupt()
            XCTAssertNotNil(failure(runner, "adapters load \"\(directory)\""), name)
            XCTAssertTrue(session.lora === before, "\(name): the old adapters stay attached")
            XCTAssertTrue(session.model!.layers[0].adapters[.q] === before.ordered[0].adapter, name)
        }
        XCTAssertEqual(before.ordered[0].adapter.a.array, a, "and unchanged")
    }

    func testFileErrorsNameThePathAndTheReason() throws {
        let (_, runner, output) = try tinySession(reading: "Emma Woodhouse. ", repeated: 40,
                                                   then: "elastic mode=B ranks=8,4 widths=100%,50%\nsearch nsga2 population=4 generations=1 eval_tokens=64 as f")
        let file = try temporaryText("not a directory", repeated: 1)
        var messages = [String]()
        for code in ["adapters save \"\(file)\"", "adapters save /proc/sculpt/none", "adapters load \"\(file)\"",
                     "model load \"\(NSTemporaryDirectory())\"", "model load /nonexistent/model.gguf",
                     "pareto f csv /nonexistent-folder/front.csv"] {
            let message = failure(runner, code, output: output)?.description ?? ""
            XCTAssertFalse(message.contains("NSCocoaErrorDomain") || message.contains("Error Domain"), message)
            messages.append(message)
        }
        XCTAssertTrue(messages[0].contains("it is a file"), messages[0])
        XCTAssertTrue(messages[1].contains("/proc/sculpt/none"), messages[1])
        XCTAssertTrue(messages[3].contains("directory"), messages[3])
        XCTAssertTrue(messages[4].contains("no such file"), messages[4])
        XCTAssertTrue(messages[5].lowercased().contains("no such file"), messages[5])
    }

    func testRepeatedOptionsAndHugeWords() throws {
        let runner = CellRunner(session: Session())
        let repeated = failure(runner, "echo hi to=stdout to=stderr")
        XCTAssertEqual(repeated?.kind, .badValue)
        XCTAssertTrue(repeated?.message.contains("given twice") ?? false)
        let word = String(repeating: "x", count: 100_000)
        for code in [word, "echo hi \(word)=1", "model load \(word)"] {
            let error = failure(runner, code)
            XCTAssertLessThan(error?.description.count ?? .max, 1000, "a 100 KB word is not echoed back whole")
            XCTAssertLessThan(error?.traceback.joined().count ?? .max, 2000)
        }
    }

    func testModelsTooLargeForTheMachineAreRefusedBeforeAllocating() throws {
        let session = Session()
        let runner = CellRunner(session: session)
        _ = try runner.run("model tiny", output: RecordingOutput())
        let model = session.model
        // Inside every documented range, about 68 GB of weights: more than any machine here has
        // (24 GB). On a larger machine the command would really allocate it, so stop first.
        guard let available = MachineMemory.availableBytes(), available < 60_000_000_000 else {
            return XCTFail("this test needs a machine with less than 60 GB available")
        }
        let error = failure(runner, "model tiny layers=64 dim=4096 heads=64 kv_heads=64 ffn=16384 vocab=65536 context=8192")
        XCTAssertTrue(error?.message.contains("memory") ?? false, error?.message ?? "")
        XCTAssertTrue(session.model === model, "the loaded model stays")
    }
}
