@testable import Commands
import Display
import Foundation
import Transformer
import Workbench
import XCTest

final class EngineCommandTests: XCTestCase {
    var session: Session!
    var output: RecordingOutput!
    var textPath: String!

    override func setUp() {
        session = Session()
        output = RecordingOutput()
        textPath = NSTemporaryDirectory() + "sculpt-text-\(UUID().uuidString).txt"
        try? String(repeating: "It is a truth universally acknowledged, that a single man in possession of a good fortune, must be in want of a wife.\n", count: 40)
            .write(toFile: textPath, atomically: true, encoding: .utf8)
    }

    override func tearDown() { try? FileManager.default.removeItem(atPath: textPath) }

    @discardableResult
    func run(_ code: String) throws -> CellOutcome {
        try CellRunner(session: session).run(code, output: output)
    }

    func failure(_ code: String) -> CommandError? {
        do { try run(code); XCTFail("`\(code)` should fail"); return nil } catch { return error as? CommandError }
    }

    func testCommandsThatNeedAModelSaySo() {
        for code in ["model info", "eval ppl", "generate \"hi\""] {
            XCTAssertTrue(failure(code)?.message.contains("no model is loaded") ?? false, code)
        }
    }

    func testTinyModelCardIsSeededAndComplete() throws {
        let card = try run("seed 3\nmodel tiny layers=3 dim=32 heads=4 kv_heads=2 ffn=64").result
        let text = card?.plainText ?? ""
        XCTAssertTrue(text.contains("tiny (random, seed 3)"), text)
        XCTAssertTrue(text.contains("layers           3"), text)
        XCTAssertNotNil(card?.values["text/html"])
        let again = Session(seed: 3)
        _ = try CellRunner(session: again).run("model tiny layers=3 dim=32 heads=4 kv_heads=2 ffn=64", output: RecordingOutput())
        XCTAssertEqual(session.model?.tokenEmbedding.array, again.model?.tokenEmbedding.array)
        XCTAssertTrue(failure("model tiny dim=30 heads=4")?.message.contains("do not divide") ?? false)
        XCTAssertEqual(failure("model tiny layrs=2")?.suggestion, "layers=2")
    }

    func testEvalPerplexityShowsALiveBarThenATable() throws {
        let outcome = try run("model tiny\ndata text \"\(textPath!)\"\neval ppl tokens=600 window=128")
        let table = outcome.result?.plainText ?? ""
        XCTAssertTrue(table.contains("tokens scored          600"), table)
        XCTAssertTrue(table.contains("perplexity per token"), table)
        // One display with an id, updated in place, ending as done.
        guard case .display(let first, let id?)? = output.events.first(where: { if case .display(_, let id) = $0 { return id != nil } else { return false } }) else {
            return XCTFail("no progress display")
        }
        XCTAssertTrue(first.plainText.hasPrefix("perplexity ["))
        let updates = output.events.compactMap { event -> MimeBundle? in
            if case .update(let bundle, let updateID) = event, updateID == id { return bundle }
            return nil
        }
        XCTAssertTrue(updates.last?.plainText.contains("done") ?? false, updates.last?.plainText ?? "no update")
    }

    func testUnknownSplitSuggestsTheNearest() throws {
        try run("model tiny")
        let error = failure("data text \"\(textPath!)\" split=nope")
        XCTAssertEqual(error?.kind, .badValue)
        XCTAssertTrue(error?.message.contains("no split nope") ?? false, error?.description ?? "")
    }

    func testGenerateStreamsText() throws {
        try run("model tiny")
        try run("generate \"Hello\" tokens=5")
        XCTAssertFalse(output.stdout.isEmpty)
        XCTAssertTrue(output.stdout.hasSuffix("\n"))
        XCTAssertEqual(failure("generate \"x\" temperature=-1")?.kind, .badValue)
    }

    func testInterruptingEvalKeepsTheSession() throws {
        try run("model tiny context=64\ndata text \"\(textPath!)\"")
        // Cancel once the work has visibly started (its first progress update), however fast the machine.
        let watch = CancellingOutput(cancellation: session.cancellation)
        var error: CommandError?
        do {
            _ = try CellRunner(session: session).run("eval ppl tokens=1000000 window=16 stride=1", output: watch)
            XCTFail("should be interrupted")
        } catch let thrown {
            error = thrown as? CommandError
        }
        output = watch
        XCTAssertEqual(error?.kind, .interrupted)
        if case .update(let bundle, _)? = output.events.last { XCTAssertTrue(bundle.plainText.contains("interrupted")) }
        session.cancellation.reset()
        XCTAssertNotNil(try run("model info").result, "the model is still there")
    }

    func testMissingModelFileIsAClearError() {
        let error = failure("model load /nonexistent/model.gguf")
        XCTAssertTrue(error?.message.contains("no such file") ?? false, error?.description ?? "")
        XCTAssertNil(session.model)
    }
}

final class AdapterCommandTests: XCTestCase {
    func testLoRATrainSaveLoadMergeFromCommands() throws {
        let session = Session()
        let output = RecordingOutput()
        let runner = CellRunner(session: session)
        let text = String(repeating: "She was the youngest of the two daughters of a most affectionate, indulgent father. ", count: 40)
        let textPath = NSTemporaryDirectory() + "sculpt-train-\(UUID().uuidString).txt"
        try text.write(toFile: textPath, atomically: true, encoding: .utf8)
        let adapterPath = NSTemporaryDirectory() + "sculpt-adapters-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: textPath); try? FileManager.default.removeItem(atPath: adapterPath) }

        let table = try runner.run("model tiny\ndata text \"\(textPath)\"\nlora rank=4 alpha=8 targets=q,v,down", output: output).result
        XCTAssertTrue(table?.plainText.contains("total") ?? false)
        let done = try runner.run("train steps=12 lr=1e-2 batch=2 seq=32 val_split=\(URL(fileURLWithPath: textPath).deletingPathExtension().lastPathComponent)", output: output).result
        XCTAssertTrue(done?.plainText.contains("12 (total trained: 12)") ?? false, done?.plainText ?? "")
        // One display, updated in place, carrying the curve in three forms and its points as metadata.
        let updates = output.events.compactMap { event -> MimeBundle? in
            if case .update(let bundle, let id) = event, id.hasPrefix("training-") { return bundle }
            return nil
        }
        let last = try XCTUnwrap(updates.last)
        XCTAssertEqual(Set(last.values.keys), ["text/plain", "image/svg+xml", "application/vnd.vegalite.v5+json"])
        XCTAssertNotNil(last.metadata["sculpt"])
        XCTAssertTrue(last.plainText.contains("done"), last.plainText)
        XCTAssertEqual(session.trainingHistory.last?.step, 12)

        _ = try runner.run("adapters save \"\(adapterPath)\"", output: output)
        let before = try runner.run("eval ppl tokens=200 window=64", output: output).result?.plainText
        _ = try runner.run("adapters load \"\(adapterPath)\"", output: output)
        // Same adapters, same path: loss and perplexity rows equal; the rule and the timing row vary.
        func figures(_ text: String?) -> [String] {
            (text ?? "").components(separatedBy: "\n").filter { !$0.hasPrefix("-") && !$0.hasPrefix("time") }
        }
        XCTAssertEqual(figures(try runner.run("eval ppl tokens=200 window=64", output: output).result?.plainText), figures(before))
        XCTAssertTrue(figures(before).contains { $0.hasPrefix("perplexity per token") }, "\(figures(before))")
        _ = try runner.run("lora merge", output: output)
        XCTAssertThrowsError(try runner.run("train steps=1", output: output)) { XCTAssertTrue("\($0)".contains("unmerge")) }
        _ = try runner.run("lora unmerge\ntrain steps=1 batch=2 seq=32", output: output)
    }

    func testLoRAArgumentErrors() {
        let session = Session()
        let runner = CellRunner(session: session)
        XCTAssertThrowsError(try runner.run("model tiny\nlora targets=q,x", output: RecordingOutput())) {
            XCTAssertEqual(($0 as? CommandError)?.kind, .badValue)
        }
        XCTAssertThrowsError(try runner.run("train steps=1", output: RecordingOutput())) {
            XCTAssertTrue("\($0)".contains("no adapters") || "\($0)".contains("no text"), "\($0)")
        }
        XCTAssertEqual(CommandTable.standard.complete("lora targets=q,k,u", cursor: 18).matches, ["up"])
    }
}

final class ElasticCommandTests: XCTestCase {
    func runSearch(seed: Int) throws -> (Session, String) {
        let session = Session()
        let runner = CellRunner(session: session)
        let path = try temporaryText("Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who never took up any book. ", repeated: 50)
        let output = RecordingOutput()
        _ = try runner.run("""
            seed \(seed)
            model tiny layers=2 dim=32 ffn=64 context=128
            data text "\(path)"
            elastic mode=B ranks=8,4 widths=100%,50% groups=layer
            train steps=10 lr=1e-2 batch=2 seq=32
            """, output: output)
        let table = try runner.run("search nsga2 population=4 generations=2 eval_tokens=128 as f", output: output).result
        return (session, table?.plainText ?? "")
    }

    func testSameSeedSameFront() throws {
        let (a, tableA) = try runSearch(seed: 3)
        let (b, tableB) = try runSearch(seed: 3)
        XCTAssertEqual(a.fronts["f"]?.front.map(\.genome), b.fronts["f"]?.front.map(\.genome))
        XCTAssertEqual(a.fronts["f"]?.front.map(\.objectives), b.fronts["f"]?.front.map(\.objectives))
        XCTAssertTrue(tableA.contains("heuristic") && tableA.contains("largest"), tableA)
        XCTAssertEqual(tableA, tableB)
    }

    func testSubnetsCostsAndExports() throws {
        let (session, _) = try runSearch(seed: 1)
        let runner = CellRunner(session: session)
        let output = RecordingOutput()
        let csv = NSTemporaryDirectory() + "sculpt-front-\(UUID().uuidString).csv"
        defer { try? FileManager.default.removeItem(atPath: csv) }
        _ = try runner.run("pareto f csv \"\(csv)\"", output: output)
        let lines = try String(contentsOfFile: csv, encoding: .utf8).split(separator: "\n")
        XCTAssertEqual(lines.first, "loss,macs,front,generation,genome")
        XCTAssertEqual(lines.count - 1, session.fronts["f"]?.evaluated.count)
        let cost = try runner.run("cost min eval_tokens=64 rounds=3", output: output).result?.plainText ?? ""
        XCTAssertTrue(cost.contains("validation loss (64 tokens)") && cost.contains("speedup") && cost.contains("best of 3"), cost)
        XCTAssertEqual(session.activeGenome, session.elastic?.maximal, "cost leaves the active subnet as it was")
        _ = try runner.run("subnet pareto f 0", output: output)
        XCTAssertEqual(session.activeGenome, session.fronts["f"]?.front[0].genome)
        XCTAssertThrowsError(try runner.run("subnet pareto f 99", output: output))
        XCTAssertThrowsError(try runner.run("subnet pareto g 0", output: output)) { XCTAssertEqual(($0 as? CommandError)?.suggestion, "f") }
        XCTAssertThrowsError(try runner.run("subnet heuristc", output: output)) { XCTAssertEqual(($0 as? CommandError)?.suggestion, "heuristic") }
        XCTAssertThrowsError(try runner.run("subnet genome=0,0", output: output))

        // Another model takes none of this one's state with it: its fronts (their genomes mean
        // nothing to another model) and its random draws go, so it starts as a fresh session would.
        _ = try runner.run("subnet random", output: output)
        _ = try runner.run("model tiny layers=2 dim=32 ffn=64 context=128\nelastic mode=B ranks=8,4 widths=100%,50% groups=layer\nsubnet random", output: output)
        XCTAssertTrue(session.fronts.isEmpty && session.lastFront == nil)
        XCTAssertThrowsError(try runner.run("subnet pareto f 0", output: output))
        let fresh = Session(seed: 1)
        _ = try CellRunner(session: fresh).run("model tiny layers=2 dim=32 ffn=64 context=128\nelastic mode=B ranks=8,4 widths=100%,50% groups=layer\nsubnet random", output: output)
        XCTAssertEqual(session.activeGenome, fresh.activeGenome, "the first random draw after a new model is a fresh session's")
    }
}

final class ChannelOrderCommandTests: XCTestCase {
    /// `elastic order=importance` sorts the MLP channels without changing what the model says,
    /// reports what each width keeps, and `order=loaded` puts them back.
    func testImportanceOrderKeepsTheFunctionAndLoadedOrderRestoresIt() throws {
        let (session, runner, output) = try tinySession(reading: "Catherine Morland had never been seen in infancy to suppose her born to be an heroine. ",
                                                        repeated: 40)
        let model = try session.requireModel()
        let weights = model.layers[0].wDown.array
        let tokens: [Int32] = [1, 2, 3, 4, 5, 6, 7, 8]
        let before = model.forward(tokens: tokens, batch: 1, seq: 8, logits: .all).array

        let card = try runner.run("elastic mode=B ranks=4,2 widths=100%,75%,50% order=importance calibration_tokens=256", output: output).result?.plainText ?? ""
        XCTAssertTrue(card.contains("MLP importance kept"), card)
        XCTAssertEqual(session.elastic?.channelOrder, .importance)
        let kept = try XCTUnwrap(session.elastic?.importanceKept)
        XCTAssertEqual(kept.channels, [64, 48, 32])
        XCTAssertEqual(kept.importanceOrder[0], 1, accuracy: 1e-9)
        for k in 1..<3 { XCTAssertGreaterThanOrEqual(kept.importanceOrder[k], kept.loadedOrder[k]) }
        XCTAssertNotEqual(model.layers[0].wDown.array, weights)
        XCTAssertLessThan(zip(model.forward(tokens: tokens, batch: 1, seq: 8, logits: .all).array, before).map { abs($0 - $1) }.max()!, 1e-4)

        _ = try runner.run("elastic mode=B ranks=4,2 widths=100%,50%", output: output)
        XCTAssertEqual(session.elastic?.channelOrder, .loaded)
        XCTAssertEqual(model.layers[0].wDown.array, weights, "order=loaded puts the channels back")
        XCTAssertThrowsError(try runner.run("elastic mode=B order=importance split=nosuchsplit", output: output))
        XCTAssertNotNil(session.lora, "a bad split leaves the adapters in place")
    }
}

final class SandwichCommandTests: XCTestCase {
    /// `train sampler=sandwich` needs elastic adapters, and with them trains three subnets a step.
    func testSandwichNeedsElasticAdaptersAndSaysSo() throws {
        let (session, runner, output) = try tinySession(reading: "It is a truth universally acknowledged, that a single man in possession of a good fortune. ",
                                                        repeated: 40, then: "lora rank=4")
        XCTAssertThrowsError(try runner.run("train steps=2 batch=2 seq=16 sampler=sandwich", output: output)) {
            XCTAssertTrue(String(describing: $0).contains("elastic"), String(describing: $0))
        }
        _ = try runner.run("elastic mode=B ranks=4,2 widths=100%,50%", output: output)
        let summary = try runner.run("train steps=3 batch=2 seq=16 sampler=sandwich", output: output).result?.plainText ?? ""
        XCTAssertTrue(summary.contains("each through 3 subnets"), summary)
        XCTAssertEqual(session.trainingHistory.last?.step, 3)
        XCTAssertEqual(session.activeGenome, session.elastic?.maximal, "the largest subnet is active again after training")
    }

    /// `distill=yes` needs the sandwich's teacher; with it, the smaller subnets train toward the largest.
    func testDistillationNeedsTheSandwichAndTrains() throws {
        let (session, runner, output) = try tinySession(reading: "Catherine Morland had never been seen in her infancy to read a novel. ",
                                                        repeated: 40, then: "elastic mode=B ranks=4,2 widths=100%,50%")
        XCTAssertThrowsError(try runner.run("train steps=2 batch=2 seq=16 distill=yes", output: output)) {
            XCTAssertTrue(String(describing: $0).contains("sampler=sandwich"), String(describing: $0))
        }
        XCTAssertTrue(session.trainingHistory.isEmpty, "a refused run trains nothing")
        let before = session.lora!.ordered.map { $0.2.b.array }
        let summary = try runner.run("train steps=3 batch=2 seq=16 lr=1e-2 sampler=sandwich distill=yes", output: output).result?.plainText ?? ""
        XCTAssertTrue(summary.contains("the others from its predictions"), summary)
        XCTAssertEqual(session.trainingHistory.last?.step, 3)
        XCTAssertNotEqual(session.lora!.ordered.map { $0.2.b.array }, before, "the adapters trained")
        XCTAssertTrue(session.trainingHistory.dropFirst().allSatisfy { $0.trainLoss.isFinite })
    }
}

final class SearchInterruptTests: XCTestCase {
    func testInterruptingASearchKeepsTheFrontUnderItsName() throws {
        let session = Session()
        let runner = CellRunner(session: session)
        let path = try temporaryText("Anne Elliot was a young woman of gentle manners and sweet character. ", repeated: 60)
        let output = RecordingOutput()
        _ = try runner.run("model tiny layers=2 dim=32 ffn=64 context=128\ndata text \"\(path)\"\nelastic mode=B ranks=8,6,4 widths=100%,75%,50%", output: output)
        // Cancel once a few generations have been shown.
        final class Watch: RecordingOutput {
            var session: Session?
            override func update(_ bundle: MimeBundle, id: String) {
                super.update(bundle, id: id)
                if bundle.plainText.contains("generations"), let g = Int(bundle.plainText.split(separator: "·")[1].split(separator: "/")[0].trimmingCharacters(in: .whitespaces)), g >= 2 {
                    session?.cancellation.cancel()
                }
            }
        }
        let watch = Watch()
        watch.session = session
        XCTAssertThrowsError(try runner.run("search nsga2 population=4 generations=1000 eval_tokens=64 as long", output: watch)) {
            XCTAssertEqual(($0 as? CommandError)?.kind, .interrupted)
        }
        let record = try XCTUnwrap(session.fronts["long"])
        XCTAssertTrue(record.interrupted)
        XCTAssertGreaterThanOrEqual(record.generationsDone, 2)
        XCTAssertFalse(record.front.isEmpty)
        session.cancellation.reset()
        XCTAssertTrue(try runner.run("pareto long", output: output).result?.plainText.contains("interrupted") ?? false)
    }
}

final class PairedLatencyTests: XCTestCase {
    /// The speedup compares the best runs (interference only slows a run); every round's own
    /// speedup is kept, sorted, so a noisy measurement shows as a wide range.
    func testSpeedupComparesTheBestRunsAndKeepsTheSpread() {
        let paired = PairedLatency(subnet: [1.0, 1.1, 0.9, 9.0, 1.0], reference: [1.2, 1.1, 1.3, 1.2, 0.99])
        XCTAssertEqual(paired.subnetSeconds, 0.9, accuracy: 1e-12)
        XCTAssertEqual(paired.referenceSeconds, 0.99, accuracy: 1e-12)
        XCTAssertEqual(paired.speedup, 1.1, accuracy: 1e-12)
        XCTAssertEqual(paired.roundSpeedups.count, 5)
        XCTAssertEqual(paired.roundSpeedups.first!, 1.2 / 9.0, accuracy: 1e-12)
        XCTAssertEqual(paired.roundSpeedups.last!, 1.3 / 0.9, accuracy: 1e-9)
        XCTAssertEqual(paired.medianRoundSpeedup, 1.0, accuracy: 1e-12)
        XCTAssertEqual(paired.roundSpeedups, paired.roundSpeedups.sorted())
    }
}

final class LINASCommandTests: XCTestCase {
    /// `search linas` spends exactly its real evaluations, each subnet once, reports every batch's
    /// rank correlations and hypervolume, keeps the record for `compare` beside an NSGA-II front of
    /// the same budget, and an interrupt keeps what was evaluated.
    func testLINASSearchesWithItsBudgetAndComparesWithNSGA2() throws {
        let (session, runner, output) = try tinySession(reading: "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who never took up any book. ", repeated: 50,
                                                        then: "elastic mode=B ranks=8,6,4 widths=100%,75%,50% groups=module\n"
                                                            + "train steps=10 lr=1e-2 batch=2 seq=32")
        let table = try runner.run("search linas population=6 evaluations=18 inner_generations=10 eval_tokens=64 as l", output: output)
            .result?.plainText ?? ""
        XCTAssertTrue(table.contains("Pareto front of l"), table)
        let record = try XCTUnwrap(session.fronts["l"])
        XCTAssertEqual(record.method, "LINAS")
        XCTAssertEqual(record.evaluated.count, 18)
        XCTAssertEqual(Set(record.evaluated.map(\.genome)).count, 18, "each subnet evaluated once")
        XCTAssertEqual(record.rounds.map(\.evaluations), [12, 18])
        XCTAssertTrue(record.rounds.allSatisfy { $0.rankCorrelations.count == 2 })
        let shown = output.events.compactMap { event -> String? in
            switch event {
            case .display(let bundle, _), .update(let bundle, _): return bundle.plainText
            default: return nil
            }
        }.joined(separator: "\n")
        XCTAssertTrue(shown.contains("hypervolume") && shown.contains("rank correlation"), shown)
        XCTAssertTrue(shown.contains("LINAS l: each batch"), shown)
        XCTAssertEqual(session.activeGenome ?? session.elastic?.maximal, session.elastic?.maximal, "the active subnet is as it was")

        _ = try runner.run("search nsga2 population=6 generations=2 eval_tokens=64 as n", output: output)
        let compared = try runner.run("compare l n", output: output).result?.plainText ?? ""
        XCTAssertTrue(compared.contains("hypervolume"), compared)

        XCTAssertThrowsError(try runner.run("search linas population=6 evaluations=4", output: output)) {
            XCTAssertTrue("\($0)".contains("less than one batch"), "\($0)")
        }
        session.cancellation.cancel()
        XCTAssertThrowsError(try runner.run("search linas population=6 evaluations=18 eval_tokens=64 as cut", output: RecordingOutput()))
        session.cancellation.reset()
    }
}

final class NASCommandTests: XCTestCase {
    /// `elastic mode=NAS`: the card shows the depth genes, training draws subnets over depth and
    /// width, a LINAS search finds subnets that skip layers, and one exports as the smaller model.
    func testDepthAndWidthSearchAndExport() throws {
        let (session, runner, output) = try tinySession(reading: "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who never took up any book. ", repeated: 50, layers: 4)
        let card = try runner.run("elastic mode=NAS ranks=8,4 widths=100%,50% groups=layer", output: output).result?.plainText ?? ""
        XCTAssertTrue(card.contains("kept, skipped") && card.contains("×2 layers"), card)
        _ = try runner.run("train steps=6 lr=1e-2 batch=2 seq=32", output: output)
        XCTAssertTrue(session.trainingHistory.allSatisfy { $0.trainLoss.isNaN || $0.trainLoss.isFinite })
        _ = try runner.run("search linas population=6 evaluations=18 inner_generations=10 eval_tokens=64 objectives=loss,params as d", output: output)
        let record = try XCTUnwrap(session.fronts["d"])
        let space = try XCTUnwrap(session.elastic)
        XCTAssertTrue(record.evaluated.contains { space.kept($0.genome).contains(false) }, "some subnets skip layers")
        XCTAssertEqual(Set(record.front.map { space.canonical($0.genome) }).count, record.front.count, "each subnet once on the front")
        let shallow = try XCTUnwrap(record.evaluated.first { space.kept($0.genome).contains(false) })
        _ = try runner.run("subnet genome=" + shallow.genome.map(String.init).joined(separator: ","), output: output)
        let model = try session.requireModel()
        let tokens: [Int32] = Array("Kellynch Hall".utf8).map { Int32($0) }
        let ours = model.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        let file = NSTemporaryDirectory() + "sculpt-\(UUID().uuidString)-nas.gguf"
        addTeardownBlock { try? FileManager.default.removeItem(atPath: file) }
        _ = try runner.run("export gguf \(file)", output: output)
        let reloaded = try LlamaModel.load(try GGUFFile(path: file), keep: true)
        XCTAssertEqual(reloaded.config.layers, space.kept(shallow.genome).filter { $0 }.count)
        let theirs = reloaded.forward(tokens: tokens, batch: 1, seq: tokens.count, logits: .all).array
        XCTAssertLessThan(zip(ours, theirs).map { abs($0 - $1) }.max()!, 1e-3 * ours.map(abs).max()!)
    }
}

final class NASBaselineCommandTests: XCTestCase {
    /// Layer dropping drops layers in ascending Block Influence, one more per subnet, at full
    /// width; uniform width keeps every layer; both are fronts `compare` draws beside a search's.
    func testBaselinesAreFrontsOfTheSuperNetwork() throws {
        let (session, runner, output) = try tinySession(reading: "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who never took up any book. ", repeated: 50, layers: 4,
                                                        then: "elastic mode=NAS ranks=8,4 widths=100%,75%,50% groups=layer")
        _ = try runner.run("baseline drop_layers objectives=loss,params eval_tokens=64 calibration_tokens=256 as drop", output: output)
        let space = try XCTUnwrap(session.elastic)
        let drop = try XCTUnwrap(session.fronts["drop"])
        XCTAssertEqual(drop.evaluated.count, 3, "none, one and both of the two middle layers dropped")
        XCTAssertEqual(drop.evaluated.map { space.kept($0.genome).filter { !$0 }.count }, [0, 1, 2])
        XCTAssertTrue(drop.evaluated.allSatisfy { space.resolve($0.genome).widths == [64, 64, 64, 64] })
        let influence = try session.blockInfluence(split: nil, tokens: 256)
        let firstDropped = try XCTUnwrap(space.kept(drop.evaluated[1].genome).firstIndex(of: false))
        XCTAssertEqual(firstDropped, [1, 2].min { influence[$0] < influence[$1] }, "the lower Block Influence goes first")
        let params = drop.evaluated.map { $0.objectives[1] }
        XCTAssertEqual(params, params.sorted(by: >))

        _ = try runner.run("baseline uniform_width objectives=loss,params eval_tokens=64 as width", output: output)
        let width = try XCTUnwrap(session.fronts["width"])
        XCTAssertEqual(width.evaluated.map { Set(space.resolve($0.genome).widths) }, [[64], [48], [32]])
        XCTAssertTrue(width.evaluated.allSatisfy { !space.kept($0.genome).contains(false) })
        _ = try runner.run("search linas population=4 evaluations=8 inner_generations=5 eval_tokens=64 objectives=loss,params as s", output: output)
        let compared = try runner.run("compare s drop width", output: output).result?.plainText ?? ""
        XCTAssertTrue(compared.contains("drop") && compared.contains("width"), compared)
        XCTAssertEqual(session.activeGenome ?? space.maximal, space.maximal, "the active subnet is as it was")

        _ = try runner.run("elastic mode=A ranks=8,4", output: output)
        XCTAssertThrowsError(try runner.run("baseline drop_layers", output: output)) { XCTAssertTrue("\($0)".contains("mode=NAS"), "\($0)") }
    }

    /// Wanda at each sparsity: the parameter count drops by exactly the zeros Wanda's rule makes
    /// (⌊in·s⌋ of every row, counted here from the shapes), and the weights, the recipe and the
    /// subnet are as they were after.
    func testWandaBaselineCountsParametersWithoutZerosAndPutsTheWeightsBack() throws {
        let (session, runner, output) = try tinySession(reading: "Anne Elliot had been a very pretty girl, but her bloom had vanished early. ", repeated: 50, layers: 3,
                                                        then: "elastic mode=NAS ranks=4 widths=100%,50% groups=layer")
        let model = try XCTUnwrap(session.model)
        let weights = { model.layers.map { layer in Projection.allCases.map { layer.float32Weight($0).array } } }
        let before = weights()
        let recipe = session.recipe.count
        _ = try runner.run("subnet min", output: output)
        let active = session.activeGenome
        _ = try runner.run("baseline wanda sparsities=25%,50% objectives=loss,params eval_tokens=64 calibration_tokens=256 as wanda", output: output)
        let record = try XCTUnwrap(session.fronts["wanda"])
        XCTAssertEqual(record.evaluated.count, 3, "dense, then 25 % and 50 %")
        XCTAssertFalse(record.pointsAreSubnets)
        func zeros(_ s: Double) -> Double {
            Double(model.layers.reduce(0) { sum, layer in
                sum + Projection.allCases.reduce(0) { $0 + layer.shape($1).outFeatures * Int(Double(layer.shape($1).inFeatures) * s) }
            })
        }
        let params = record.evaluated.map { $0.objectives[1] }
        XCTAssertEqual(params[0] - params[1], zeros(0.25))
        XCTAssertEqual(params[0] - params[2], zeros(0.5))
        XCTAssertNotEqual(record.evaluated[2].objectives[0], record.evaluated[0].objectives[0], "the pruned model was the one scored")
        XCTAssertEqual(weights(), before, "the weights are put back")
        XCTAssertEqual(session.recipe.count, recipe)
        XCTAssertEqual(session.activeGenome, active)
        XCTAssertThrowsError(try runner.run("subnet pareto wanda 0", output: output)) { XCTAssertTrue("\($0)".contains("pruned models"), "\($0)") }
        XCTAssertThrowsError(try runner.run("pareto wanda layers", output: output)) { XCTAssertTrue("\($0)".contains("pruned models"), "\($0)") }

        _ = try runner.run("baseline wanda pattern=2:4 objectives=loss,params eval_tokens=64 calibration_tokens=256 as w24", output: output)
        let nm = try XCTUnwrap(session.fronts["w24"])
        XCTAssertEqual(nm.evaluated[0].objectives[1] - nm.evaluated[1].objectives[1], zeros(0.5))
        XCTAssertEqual(weights(), before)
        XCTAssertThrowsError(try runner.run("baseline wanda pattern=4:2", output: output)) { XCTAssertEqual(($0 as? CommandError)?.kind, .badValue) }
        XCTAssertThrowsError(try runner.run("baseline wanda sparsities=20%,150%", output: output)) { XCTAssertEqual(($0 as? CommandError)?.kind, .badValue) }
        // An interrupt (at the first update: after the first pruned model) keeps what was scored and the weights as they were.
        let watch = CancellingOutput(cancellation: session.cancellation)
        XCTAssertThrowsError(try runner.run("baseline wanda sparsities=25%,50%,75% objectives=loss,params eval_tokens=64 calibration_tokens=256 as cut", output: watch)) {
            XCTAssertEqual(($0 as? CommandError)?.kind, .interrupted)
        }
        session.cancellation.reset()
        XCTAssertEqual(session.fronts["cut"]?.evaluated.count, 2)
        XCTAssertEqual(session.fronts["cut"]?.interrupted, true)
        XCTAssertEqual(weights(), before)
        XCTAssertEqual(session.recipe.count, recipe)
        // A base already pruned is not pruned again under the baseline.
        _ = try runner.run("subnet max\nsparsify magnitude sparsity=10%", output: output)
        XCTAssertThrowsError(try runner.run("baseline wanda", output: output)) { XCTAssertTrue("\($0)".contains("sparsify restore"), "\($0)") }
    }

    /// `pareto NAME layers`: each layer's share of the front skipped or at each width, and the
    /// layer counts, counted from the front itself.
    func testParetoLayersCountsTheFront() throws {
        let (session, runner, output) = try tinySession(reading: "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who never took up any book. ", repeated: 50, layers: 4,
                                                        then: "elastic mode=NAS ranks=4 widths=100%,50% groups=layer")
        // InstaTune's alternation trains the super-network first: its steps count on across `train`s.
        _ = try runner.run("train steps=3 lr=1e-2 batch=2 seq=32 sampler=instatune\ntrain steps=2 lr=1e-2 batch=2 seq=32 sampler=instatune", output: output)
        XCTAssertEqual(session.trainingHistory.last?.step, 5)
        _ = try runner.run("search nsga2 population=6 generations=2 eval_tokens=64 objectives=loss,params as s", output: output)
        let table = try runner.run("pareto s layers", output: output).result?.plainText ?? ""
        XCTAssertTrue(table.contains("skipped") && table.contains("32"), table)
        let record = try XCTUnwrap(session.fronts["s"]), space = try XCTUnwrap(session.elastic)
        let map = try CommandTable.frontShapes(record, session: session)
        XCTAssertEqual(map.columns, ["skipped", "64", "32"])
        for l in 0..<4 {
            let skipped = record.front.filter { !space.kept($0.genome)[l] }.count
            let narrow = record.front.filter { space.kept($0.genome)[l] && space.resolve($0.genome).widths[l] == 32 }.count
            XCTAssertEqual(map.values[l][0]!, 100 * Double(skipped) / Double(record.front.count), accuracy: 0.06)
            XCTAssertEqual(map.values[l][2]!, 100 * Double(narrow) / Double(record.front.count), accuracy: 0.06)
            XCTAssertEqual(map.values[l].compactMap { $0 }.reduce(0, +), 100, accuracy: 0.2)
        }
        XCTAssertEqual(map.values[0][0], 0, "the first layer is pinned")
        XCTAssertEqual(map.distribution?.values, record.front.map { Double(space.kept($0.genome).filter { $0 }.count) })
        XCTAssertThrowsError(try runner.run("pareto s layrs", output: output)) { XCTAssertEqual(($0 as? CommandError)?.suggestion, "layers") }
    }
}
