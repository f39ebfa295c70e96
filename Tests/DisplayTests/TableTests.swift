import Display
import XCTest

final class TableTests: XCTestCase {
    let table = Table(title: "Costs", columns: ["subnet", "MACs"], alignments: [.left, .right],
                      rows: [["max", "135M"], ["<heuristic> | b", "90M"]])

    func testPlainTextIsAligned() {
        XCTAssertEqual(table.plainText, """
        Costs
        subnet           MACs
        ---------------  ----
        max              135M
        <heuristic> | b   90M
        """)
    }

    func testMarkdownEscapesPipesAndMarksAlignment() {
        XCTAssertTrue(table.markdown.contains("| --- | ---: |"))
        XCTAssertTrue(table.markdown.contains(#"<heuristic> \| b"#))
    }

    func testHTMLEscapesCells() {
        XCTAssertTrue(table.html.contains("&lt;heuristic&gt; | b"))
        XCTAssertFalse(table.html.contains("<heuristic>"))
    }

    func testBundleCarriesThreeRepresentations() {
        XCTAssertEqual(Set(table.bundle.values.keys), ["text/plain", "text/html", "text/markdown"])
    }

    func testShortRowsArePadded() {
        XCTAssertEqual(Table(columns: ["a", "b"], rows: [["1"]]).rows, [["1", ""]])
    }
}
