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
        let points = try XCTUnwrap(try metadataPoints(bundle)["series"] as? [[String: Any]])
        XCTAssertEqual(points.map { $0["name"] as? String }, ["train", "validation"])
    }

    /// JupyterLab ranks text/html and application/json above Vega-Lite: a chart's bundle must carry
    /// neither, or it shows as HTML or as a JSON tree instead of the chart.
    func testChartBundlesCarryNoFormThatOutranksVegaLite() {
        let chart = LineChart(title: "loss", xTitle: "step", yTitle: "nats", series: [.init(name: "train", points: [(1, 3)], colour: "#123456")])
        let plot = ScatterPlot(title: "f", xTitle: "x", yTitle: "y", groupTitle: "generation", points: [.init(x: 1, y: 1, group: 0)], front: [], markers: [])
        for bundle in [chart.bundle(plain: "p"), plot.bundle(plain: "p")] {
            XCTAssertEqual(Set(bundle.values.keys), ["text/plain", "image/svg+xml", "application/vnd.vegalite.v5+json"])
            XCTAssertEqual(Set(bundle.metadata.keys), ["sculpt"])
        }
    }

    func testLargeAxisValuesGetSILabelsAndSubtitleShows() throws {
        var plot = ScatterPlot(title: "front", xTitle: "MACs", yTitle: "loss", groupTitle: "generation",
                               points: [.init(x: 330_000, y: 3, group: 0), .init(x: 350_000, y: 2, group: 1)], front: [], markers: [])
        plot.subtitle = "50% · 2/4 generations"
        let encoding = try XCTUnwrap((plot.vegaLite["layer"] as? [[String: Any]])?.first?["encoding"] as? [String: Any])
        XCTAssertEqual(((encoding["x"] as? [String: Any])?["axis"] as? [String: Any])?["format"] as? String, "~s")
        XCTAssertNil((encoding["y"] as? [String: Any])?["axis"], "small values keep Vega's own labels")
        XCTAssertEqual((plot.vegaLite["title"] as? [String: Any])?["subtitle"] as? String, "50% · 2/4 generations")
        XCTAssertTrue(plot.svg.contains(">50% · 2/4 generations<"))
        XCTAssertTrue(plot.svg.contains(">330k<") || plot.svg.contains(">340k<"), "SVG ticks in k")
    }

    func testGenerationLegendLabelsEachColour() {
        let points = (0..<5).map { ScatterPlot.Point(x: Double($0), y: Double($0), group: $0) }
        let plot = ScatterPlot(title: "f", xTitle: "x", yTitle: "y", groupTitle: "generation", points: points, front: [], markers: [])
        // One swatch per generation, each titled with its number, and the ends labelled.
        for g in 0..<5 { XCTAssertTrue(plot.svg.contains("<title>generation \(g)</title></rect>"), "swatch \(g)") }
        XCTAssertTrue(plot.svg.contains(">0</text>") && plot.svg.contains(">4</text>"))
        var named = plot
        named.groupNames = ["a", "b", "c", "d", "e"]
        XCTAssertTrue(named.svg.contains(">c</text>"), "named groups list their names")
    }

    private func metadataPoints(_ bundle: MimeBundle) throws -> [String: Any] {
        guard case .json(let data)? = bundle.metadata["sculpt"] else { XCTFail("no points in the metadata"); return [:] }
        let object = try XCTUnwrap(JSONSerialization.jsonObject(with: data) as? [String: Any])
        return try XCTUnwrap(object["points"] as? [String: Any])
    }

    /// A heat map's histogram counts whole numbers (layer counts) one bar each, with what it counts
    /// named; other values go into 20 equal bins.
    func testHistogramCountsWholeNumbersOneBarEach() throws {
        var map = HeatMap(title: "t", rowTitle: "layer", columnTitle: "choice", valueTitle: "%", rows: ["0"], columns: ["a"], values: [[1]])
        map.distribution = ("layers kept", "subnets", [22, 24, 24, 25])
        let svg = map.svg
        XCTAssertTrue(svg.contains("<title>24: 2 subnets</title>") && svg.contains("<title>23: 0 subnets</title>"), svg)
        XCTAssertTrue(svg.contains("layers kept (4 subnets)"), svg)
        let spec = try XCTUnwrap(map.vegaLite["vconcat"] as? [[String: Any]])
        let x = try XCTUnwrap(((spec[1]["encoding"] as? [String: Any])?["x"]) as? [String: Any])
        XCTAssertEqual(x["type"] as? String, "ordinal")
        map.distribution = ("scores", "ranks", [0.1, 0.25, 0.7])
        XCTAssertTrue(map.svg.contains("scores (3 ranks)"))
        XCTAssertNotNil(((map.vegaLite["vconcat"] as? [[String: Any]])?[1]["encoding"] as? [String: Any]).flatMap { ($0["x"] as? [String: Any])?["bin"] })
    }

    func testScatterPlotMarksAndFront() throws {
        let plot = ScatterPlot(title: "front", xTitle: "MACs", yTitle: "loss", groupTitle: "generation",
                               points: [.init(x: 1e6, y: 3, group: 0), .init(x: 2e6, y: 2, group: 1)],
                               front: [(1e6, 3), (2e6, 2)], markers: [.init(name: "heuristic", x: 1.5e6, y: 2.8, colour: "#2ca02c")])
        XCTAssertTrue(plot.svg.contains("<path d=\"M"))
        XCTAssertTrue(plot.svg.contains(">heuristic<"))
        let json = try metadataPoints(plot.bundle(plain: "p"))
        XCTAssertEqual((json["points"] as? [Any])?.count, 2)
        XCTAssertEqual((json["markers"] as? [[String: Any]])?.first?["name"] as? String, "heuristic")
    }
}
