import Display
import Foundation
import XCTest

final class ChartTests: XCTestCase {
    func testProgressBarShowsCountsRateAndState() {
        var bar = ProgressBar(title: "perplexity", done: 256, total: 1024, unit: "tokens", rate: 512, secondsLeft: 1.5)
        XCTAssertEqual(bar.plainText, "perplexity [#######.......................] 25% · 256/1024 tokens · 512 tokens/s · 2 s left")
        bar.state = .interrupted
        XCTAssertTrue(bar.plainText.hasSuffix("interrupted"))
        XCTAssertTrue(bar.html.contains("width:25.0%"))
        XCTAssertEqual(Set(bar.bundle.values.keys), ["text/plain", "text/html"])
    }

    func testLineChartDrawsEverySeriesAndCarriesItsPoints() throws {
        let chart = LineChart(title: "loss", xTitle: "step", yTitle: "nats", series: [
            .init(name: "train", points: [(1, 3.0), (2, 2.5), (3, .nan), (4, 2.0)], colour: "#123456"),
            .init(name: "validation", points: [(0, 3.5), (4, 2.6)], colour: "#654321"),
        ])
        XCTAssertEqual(chart.svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertTrue(chart.svg.contains("#123456") && chart.svg.contains(">validation<"))
        let bundle = chart.bundle(plain: "p")
        guard case .json(let spec)? = bundle.values["application/vnd.vegalite.v5+json"] else { return XCTFail("no Vega-Lite") }
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: spec) as? [String: Any])
        let values = try XCTUnwrap((object["data"] as? [String: Any])?["values"] as? [[String: Any]])
        XCTAssertEqual(values.count, 5, "the NaN point is left out")
    }

    func testScatterPlotMarksAndFront() throws {
        let plot = ScatterPlot(title: "front", xTitle: "MACs", yTitle: "loss", groupTitle: "generation",
                               points: [.init(x: 1e6, y: 3, group: 0), .init(x: 2e6, y: 2, group: 1)],
                               front: [(1e6, 3), (2e6, 2)], markers: [.init(name: "heuristic", x: 1.5e6, y: 2.8, colour: "#2ca02c")])
        XCTAssertTrue(plot.svg.contains("<path d=\"M"))
        XCTAssertTrue(plot.svg.contains(">heuristic<"))
        guard case .json(let data)? = plot.bundle(plain: "p").values["application/json"] else { return XCTFail("no points") }
        let json = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        XCTAssertEqual((json["points"] as? [Any])?.count, 2)
        XCTAssertEqual((json["markers"] as? [[String: Any]])?.first?["name"] as? String, "heuristic")
    }
}
