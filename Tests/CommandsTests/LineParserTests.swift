@testable import Commands
import XCTest

final class LineParserTests: XCTestCase {
    func testWordsOptionsQuotesAndComments() throws {
        let tokens = try LineParser.tokenize(#"model load "my model.gguf" rank=8 name='a b' path="x\"y" # a comment"#)
        XCTAssertEqual(tokens.map(\.text), ["model", "load", "my model.gguf", "rank=8", "name=a b", #"path=x"y"#])
        XCTAssertEqual(tokens[3].key, "rank")
        XCTAssertEqual(tokens[3].value, "8")
        XCTAssertEqual(tokens[4].value, "a b")
        XCTAssertNil(tokens[2].key)
        XCTAssertEqual(tokens[2].column, 11)
    }

    func testEqualsInsideAQuotedWordIsNotAnOption() throws {
        let tokens = try LineParser.tokenize(#"echo "a=b" x+y=z"#)
        XCTAssertNil(tokens[1].key)
        XCTAssertNil(tokens[2].key)
    }

    func testUnterminatedQuoteIsReportedWithItsColumn() {
        XCTAssertThrowsError(try LineParser.tokenize(#"echo "abc"#)) {
            XCTAssertEqual($0 as? LineParser.Failure, .unterminatedQuote(column: 5))
        }
    }

    func testContinuationLinesJoinAndKeepTheFirstLineNumber() {
        let lines = LineParser.logicalLines("seed 1\nlora rank=8 \\\n  alpha=16\n\necho x")
        XCTAssertEqual(lines.map(\.number), [1, 2, 4, 5])
        XCTAssertEqual(lines[1].text, "lora rank=8    alpha=16")
        XCTAssertTrue(LineParser.endsWithContinuation("echo a \\"))
        XCTAssertFalse(LineParser.endsWithContinuation("echo a"))
    }
}
