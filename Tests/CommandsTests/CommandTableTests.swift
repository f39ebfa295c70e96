@testable import Commands
import Display
import Workbench
import XCTest

final class CommandTableTests: XCTestCase {
    let table = CommandTable.standard

    func run(_ code: String, output: RecordingOutput = RecordingOutput(), session: Session = Session()) throws -> (CellOutcome, RecordingOutput) {
        let outcome = try CellRunner(session: session, table: table).run(code, output: output)
        return (outcome, output)
    }

    func error(_ code: String) -> CommandError? {
        do {
            _ = try run(code)
            XCTFail("`\(code)` should fail")
            return nil
        } catch {
            return error as? CommandError
        }
    }

    func testEveryCommandHasAHelpPageWithItsUsage() throws {
        let overview = table.overview().plainText
        for command in table.commands {
            XCTAssertTrue(overview.contains(command.summary), command.name)
            let page = try table.help(for: command.name)
            XCTAssertTrue(page.plainText.hasPrefix(command.usage), command.name)
            guard case .text(let markdown)? = page.values["text/markdown"] else { return XCTFail("no markdown for \(command.name)") }
            XCTAssertTrue(markdown.contains("`\(command.usage)`"))
            for argument in command.arguments { XCTAssertTrue(page.plainText.contains(argument.help), "\(command.name) \(argument.name)") }
        }
    }

    func testErrorsNameLineWordAndNearestValidWord() {
        let unknown = error("seed 1\nstauts")
        XCTAssertEqual(unknown?.kind, .unknownCommand)
        XCTAssertEqual(unknown?.line, 2)
        XCTAssertEqual(unknown?.suggestion, "status")
        XCTAssertEqual(unknown?.description, "line 2: unknown command `stauts`; did you mean `status`?")

        let option = error("echo hi too=stderr")
        XCTAssertEqual(option?.kind, .unknownOption)
        XCTAssertEqual(option?.word, "too=stderr")
        XCTAssertEqual(option?.suggestion, "to=stderr")
        XCTAssertEqual(option?.column, 8)

        let value = error("echo hi to=stdrr")
        XCTAssertEqual(value?.kind, .badValue)
        XCTAssertEqual(value?.suggestion, "to=stderr")

        XCTAssertEqual(error("seed -3")?.kind, .badValue)
        XCTAssertEqual(error("seed x")?.kind, .badValue)
        XCTAssertEqual(error("sleep")?.kind, .missingArgument)
        XCTAssertEqual(error("seed 1 2")?.kind, .unexpectedArgument)
        XCTAssertEqual(error(#"echo "open"#)?.kind, .syntax)
        XCTAssertEqual(error("help bogus")?.kind, .unknownCommand)
        let traceback = unknown?.traceback ?? []
        XCTAssertEqual(traceback.first, "  2 | stauts")
        XCTAssertTrue(traceback[1].contains("^^^^^^"))
    }

    func testACellStopsAtTheFirstErrorAndKeepsWhatRan() {
        let session = Session()
        let output = RecordingOutput()
        XCTAssertThrowsError(try CellRunner(session: session).run("seed 9\nbogus\nseed 10", output: output))
        XCTAssertEqual(session.seed, 9)
        // The first line's result was shown before the error.
        XCTAssertEqual(output.events, [.display(MimeBundle(plain: "seed = 9"), id: nil)])
    }

    func testLastLineResultIsTheCellResult() throws {
        let (outcome, output) = try run("echo one\nseed 4\n# comment\n")
        XCTAssertEqual(outcome.result?.plainText, "seed = 4")
        XCTAssertEqual(output.stdout, "one\n")
    }

    func testEchoClearStatusAndPager() throws {
        let (_, output) = try run("echo hello,   world\necho \"a  =  b\" to=stderr\nclear wait=yes")
        XCTAssertEqual(output.events, [.text("hello, world\n", stderr: false), .text("a  =  b\n", stderr: true), .clear(wait: true)])

        let (status, _) = try run("seed 12\nstatus")
        XCTAssertTrue(status.result?.plainText.contains("seed") ?? false)
        XCTAssertTrue(status.result?.plainText.contains("12") ?? false)
        XCTAssertNotNil(status.result?.values["text/html"])

        let (paged, _) = try run("?seed\nmodel?".replacingOccurrences(of: "\nmodel?", with: "\necho?"))
        XCTAssertEqual(paged.pages.count, 2)
        XCTAssertTrue(paged.pages[0].plainText.hasPrefix("seed [N]"))
        XCTAssertNil(paged.result)
    }

    func testSleepStopsWhenInterrupted() {
        let session = Session()
        DispatchQueue.global().asyncAfter(deadline: .now() + 0.1) { session.cancellation.cancel() }
        let started = Date()
        XCTAssertThrowsError(try CellRunner(session: session).run("sleep 30\nseed 5", output: RecordingOutput())) {
            XCTAssertEqual(($0 as? CommandError)?.kind, .interrupted)
        }
        // Far below the 30 s asked for, with room for a busy machine.
        XCTAssertLessThan(Date().timeIntervalSince(started), 20)
        XCTAssertEqual(session.seed, Session.defaultSeed, "lines after the interrupt do not run")
    }

    func testResetAsksAndObeysTheAnswer() throws {
        let session = Session(seed: 7)
        let no = RecordingOutput()
        no.answers = ["n"]
        _ = try run("reset", output: no, session: session)
        XCTAssertEqual(session.seed, 7)
        XCTAssertEqual(no.prompts.count, 1)

        let yes = RecordingOutput()
        yes.answers = ["y"]
        _ = try run("reset", output: yes, session: session)
        XCTAssertEqual(session.seed, Session.defaultSeed)

        session.seed = 3
        let cannotAsk = RecordingOutput()
        XCTAssertThrowsError(try run("reset", output: cannotAsk, session: session)) {
            XCTAssertEqual(($0 as? CommandError)?.suggestion, "reset force=yes")
        }
        XCTAssertEqual(session.seed, 3)
        _ = try run("reset force=yes", output: cannotAsk, session: session)
        XCTAssertEqual(session.seed, Session.defaultSeed)
    }

    func testCompletion() {
        func matches(_ code: String, _ cursor: Int? = nil) -> [String] {
            table.complete(code, cursor: cursor ?? code.unicodeScalars.count).matches
        }
        XCTAssertEqual(matches("ec"), ["echo"])
        XCTAssertEqual(Set(matches("s")), ["seed", "sleep", "status", "search", "subnet", "sparsify", "sparsity", "sensitivity"])
        XCTAssertEqual(matches("echo x t"), ["to="])
        XCTAssertEqual(matches("echo x to=st"), ["stdout", "stderr"])
        XCTAssertEqual(table.complete("echo x to=st", cursor: 12).start, 10)
        XCTAssertEqual(matches("clear wait="), ["yes", "no"])
        XCTAssertEqual(Set(matches("help se")), ["seed", "search", "sensitivity"])
        XCTAssertEqual(matches("seed 1\nst"), ["status"])
        XCTAssertEqual(matches("echo to=stdout t"), [], "an option is offered once")
        XCTAssertEqual(matches("bogus x"), [])
        XCTAssertEqual(matches("echo é\nec", 9), ["echo"], "cursor counts Unicode scalars")
    }

    func testInspectShowsTheHelpPageOfTheLineUnderTheCursor() {
        XCTAssertTrue(table.inspect("seed 3", cursor: 2)?.plainText.hasPrefix("seed [N]") ?? false)
        XCTAssertTrue(table.inspect("echo a\nseed 3", cursor: 9)?.plainText.hasPrefix("seed [N]") ?? false)
        XCTAssertTrue(table.inspect("help sleep", cursor: 3)?.plainText.hasPrefix("sleep SECONDS") ?? false)
        XCTAssertNil(table.inspect("bogus", cursor: 2))
    }

    func testCompleteness() {
        XCTAssertEqual(table.completeness("echo hi"), .complete)
        XCTAssertEqual(table.completeness(""), .complete)
        XCTAssertEqual(table.completeness("echo \"hi"), .incomplete)
        XCTAssertEqual(table.completeness("echo hi \\"), .incomplete)
        XCTAssertEqual(table.completeness("bogus"), .invalid)
        XCTAssertEqual(table.completeness("seed 1\nbogus"), .invalid)
        XCTAssertEqual(table.completeness("?seed"), .complete)
    }

    func testEditDistanceAndNearest() {
        XCTAssertEqual(editDistance("kitten", "sitting"), 3)
        XCTAssertEqual(nearest("rnak", in: ["rank", "alpha"]), "rank")
        XCTAssertNil(nearest("zzzzzz", in: ["rank", "alpha"]))
    }
}
