import Foundation

/// Lines over a shared x axis (a loss curve: train and validation against step), drawn as SVG,
/// specified as Vega-Lite with the data inline, with the raw points in the display's metadata.
public struct LineChart: Sendable {
    public struct Series: Sendable {
        public var name: String
        public var points: [(x: Double, y: Double)]
        public var colour: String

        public init(name: String, points: [(x: Double, y: Double)], colour: String) {
            self.name = name
            self.points = points
            self.colour = colour
        }
    }

    public var title: String
    /// A second line under the title: a live display's progress ("40% · 20/50 steps · 12 s left").
    public var subtitle: String?
    public var xTitle: String
    public var yTitle: String
    public var series: [Series]
    public var width = 560
    public var height = 260

    public init(title: String, xTitle: String, yTitle: String, series: [Series]) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.series = series
    }

    var allPoints: [(x: Double, y: Double)] { series.flatMap(\.points).filter { $0.y.isFinite } }

    /// Axis range with a little room, never empty.
    static func range(_ values: [Double]) -> (Double, Double) {
        guard let lo = values.min(), let hi = values.max() else { return (0, 1) }
        if lo == hi { return (lo - 0.5, hi + 0.5) }
        let pad = (hi - lo) * 0.05
        return (lo - pad, hi + pad)
    }

    /// About five round tick values across a range.
    static func ticks(_ lo: Double, _ hi: Double) -> [Double] {
        let raw = (hi - lo) / 5
        let magnitude = pow(10, floor(log10(raw)))
        let step = [1.0, 2, 2.5, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? raw
        var out = [Double]()
        var t = ceil(lo / step) * step
        while t <= hi + 1e-12 { out.append(t); t += step }
        return out
    }

    static func label(_ v: Double) -> String {
        abs(v) >= 1000 || v == v.rounded() ? String(Int(v.rounded())) : String(format: abs(v) < 1 ? "%.3g" : "%.2f", v)
    }

    public var svg: String {
        let left = 56.0, right = 110.0, top = subtitle == nil ? 28.0 : 42.0, bottom = 40.0
        let w = Double(width), h = Double(height)
        let (x0, x1) = LineChart.range(allPoints.map(\.x))
        let (y0, y1) = LineChart.range(allPoints.map(\.y))
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (w - left - right) }
        func py(_ y: Double) -> Double { h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<text x=\"\(left)\" y=\"16\" font-size=\"12\" font-weight=\"bold\">\(htmlEscaped(title))</text>"
        if let subtitle { s += "<text x=\"\(left)\" y=\"31\" fill=\"#555\">\(htmlEscaped(subtitle))</text>" }
        for t in LineChart.ticks(y0, y1) {
            let y = py(t)
            s += "<line x1=\"\(left)\" x2=\"\(w - right)\" y1=\"\(f(y))\" y2=\"\(f(y))\" stroke=\"#e5e7eb\"/>"
            s += "<text x=\"\(left - 6)\" y=\"\(f(y + 4))\" text-anchor=\"end\" fill=\"#555\">\(LineChart.label(t))</text>"
        }
        for t in LineChart.ticks(x0, x1) {
            let x = px(t)
            s += "<text x=\"\(f(x))\" y=\"\(f(h - bottom + 16))\" text-anchor=\"middle\" fill=\"#555\">\(LineChart.label(t))</text>"
        }
        s += "<line x1=\"\(left)\" x2=\"\(w - right)\" y1=\"\(f(h - bottom))\" y2=\"\(f(h - bottom))\" stroke=\"#333\"/>"
        s += "<line x1=\"\(left)\" x2=\"\(left)\" y1=\"\(top)\" y2=\"\(f(h - bottom))\" stroke=\"#333\"/>"
        s += "<text x=\"\(f((left + w - right) / 2))\" y=\"\(f(h - 6))\" text-anchor=\"middle\">\(htmlEscaped(xTitle))</text>"
        s += "<text transform=\"translate(14,\(f((top + h - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(htmlEscaped(yTitle))</text>"
        for (i, line) in series.enumerated() {
            let points = line.points.filter { $0.y.isFinite }
            if points.count > 1 {
                let path = points.map { "\(f(px($0.x))),\(f(py($0.y)))" }.joined(separator: " ")
                s += "<polyline fill=\"none\" stroke=\"\(line.colour)\" stroke-width=\"1.8\" points=\"\(path)\"/>"
            }
            for p in points where points.count <= 60 {
                s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"2.5\" fill=\"\(line.colour)\"/>"
            }
            let ly = top + 14 + Double(i) * 16
            s += "<line x1=\"\(f(w - right + 10))\" x2=\"\(f(w - right + 26))\" y1=\"\(f(ly - 4))\" y2=\"\(f(ly - 4))\" stroke=\"\(line.colour)\" stroke-width=\"2\"/>"
            s += "<text x=\"\(f(w - right + 30))\" y=\"\(f(ly))\">\(htmlEscaped(line.name))</text>"
        }
        return s + "</svg>"
    }

    private func f(_ v: Double) -> String { String(format: "%.1f", v) }

    /// Vega-Lite v5 with the points inline: interactive in JupyterLab.
    public var vegaLite: [String: Any] {
        let values: [[String: Any]] = series.flatMap { line in
            line.points.filter { $0.y.isFinite }.map { ["x": $0.x, "y": $0.y, "series": line.name] as [String: Any] }
        }
        return [
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": LineChart.vegaTitle(title, subtitle), "width": width - 170, "height": height - 70,
            "data": ["values": values],
            "mark": ["type": "line", "point": true, "tooltip": true],
            "encoding": [
                "x": LineChart.vegaAxis(title: xTitle, values: allPoints.map(\.x), field: "x"),
                "y": LineChart.vegaAxis(title: yTitle, values: allPoints.map(\.y), field: "y"),
                "color": ["field": "series", "type": "nominal", "title": "",
                          "scale": ["domain": series.map(\.name), "range": series.map(\.colour)]],
            ],
        ]
    }

    /// A Vega-Lite title with an optional subtitle.
    static func vegaTitle(_ title: String, _ subtitle: String?) -> Any {
        guard let subtitle else { return title }
        return ["text": title, "subtitle": subtitle, "subtitleColor": "#555"]
    }

    /// A quantitative position channel. Large values get SI labels ("330k", "1.2M") rather than
    /// "330,000"; small ones keep Vega's own format. The scale leaves out zero: a loss curve near 3
    /// would otherwise be a flat line at the top.
    static func vegaAxis(title: String, values: [Double], field: String) -> [String: Any] {
        var channel: [String: Any] = ["field": field, "type": "quantitative", "title": title, "scale": ["zero": false]]
        if (values.map(abs).max() ?? 0) >= 1e4 { channel["axis"] = ["format": "~s"] }
        return channel
    }

    /// The points, for export.
    public var json: [String: Any] {
        ["title": title, "x": xTitle, "y": yTitle,
         "series": series.map { ["name": $0.name, "points": $0.points.filter { $0.y.isFinite }.map { [$0.x, $0.y] }] }]
    }

    /// Vega-Lite, SVG and a plain-text summary, with the points in the metadata.
    public func bundle(plain: String) -> MimeBundle {
        MimeBundle.chart(plain: plain, svg: svg, vegaLite: vegaLite, points: json)
    }
}
