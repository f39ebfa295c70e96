import Foundation

/// Points coloured by a group number (a search's generation), a front drawn as a step line,
/// and named markers (reference points), as SVG, Vega-Lite and text, with the raw points in the
/// display's metadata.
public struct ScatterPlot: Sendable {
    public struct Point: Sendable {
        public var x: Double
        public var y: Double
        public var group: Int
        public var label: String

        public init(x: Double, y: Double, group: Int, label: String = "") {
            self.x = x
            self.y = y
            self.group = group
            self.label = label
        }
    }

    public struct Marker: Sendable {
        public var name: String
        public var x: Double
        public var y: Double
        public var colour: String

        public init(name: String, x: Double, y: Double, colour: String) {
            self.name = name
            self.x = x
            self.y = y
            self.colour = colour
        }
    }

    public var title: String
    /// A second line under the title: a live display's progress.
    public var subtitle: String?
    public var xTitle: String
    public var yTitle: String
    public var groupTitle: String
    public var points: [Point]
    /// Names for the groups when they are categories (the fronts of `compare`), not an order.
    public var groupNames: [String]?
    /// Front points in x order, drawn as a line.
    public var front: [(x: Double, y: Double)]
    public var markers: [Marker]
    public var width = 600
    public var height = 340

    public init(title: String, xTitle: String, yTitle: String, groupTitle: String, points: [Point],
                front: [(x: Double, y: Double)], markers: [Marker]) {
        self.title = title
        self.xTitle = xTitle
        self.yTitle = yTitle
        self.groupTitle = groupTitle
        self.points = points
        self.front = front
        self.markers = markers
    }

    /// A blue → orange ramp over groups.
    static func colour(_ group: Int, of count: Int) -> String {
        let t = count <= 1 ? 0 : Double(group) / Double(count - 1)
        let (r, g, b) = (31 + t * (230 - 31), 111 + t * (120 - 111), 235 + t * (30 - 235))
        return String(format: "#%02x%02x%02x", Int(r), Int(g), Int(b))
    }

    public var svg: String {
        let left = 64.0, right = 130.0, top = subtitle == nil ? 28.0 : 42.0, bottom = 42.0
        let w = Double(width), h = Double(height)
        let xs = points.map(\.x) + markers.map(\.x), ys = points.map(\.y) + markers.map(\.y)
        let (x0, x1) = LineChart.range(xs), (y0, y1) = LineChart.range(ys)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (w - left - right) }
        func py(_ y: Double) -> Double { h - bottom - (y - y0) / (y1 - y0) * (h - top - bottom) }
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        let groups = (points.map(\.group).max() ?? 0) + 1
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<text x=\"\(left)\" y=\"16\" font-size=\"12\" font-weight=\"bold\">\(htmlEscaped(title))</text>"
        if let subtitle { s += "<text x=\"\(left)\" y=\"31\" fill=\"#555\">\(htmlEscaped(subtitle))</text>" }
        for t in LineChart.ticks(y0, y1) {
            s += "<line x1=\"\(left)\" x2=\"\(f(w - right))\" y1=\"\(f(py(t)))\" y2=\"\(f(py(t)))\" stroke=\"#eee\"/>"
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(py(t) + 4))\" text-anchor=\"end\" fill=\"#555\">\(LineChart.label(t))</text>"
        }
        for t in LineChart.ticks(x0, x1) {
            s += "<text x=\"\(f(px(t)))\" y=\"\(f(h - bottom + 16))\" text-anchor=\"middle\" fill=\"#555\">\(ScatterPlot.short(t))</text>"
        }
        s += "<line x1=\"\(left)\" x2=\"\(f(w - right))\" y1=\"\(f(h - bottom))\" y2=\"\(f(h - bottom))\" stroke=\"#333\"/>"
        s += "<line x1=\"\(left)\" x2=\"\(left)\" y1=\"\(top)\" y2=\"\(f(h - bottom))\" stroke=\"#333\"/>"
        s += "<text x=\"\(f((left + w - right) / 2))\" y=\"\(f(h - 8))\" text-anchor=\"middle\">\(htmlEscaped(xTitle))</text>"
        s += "<text transform=\"translate(16,\(f((top + h - bottom) / 2))) rotate(-90)\" text-anchor=\"middle\">\(htmlEscaped(yTitle))</text>"
        for p in points {
            s += "<circle cx=\"\(f(px(p.x)))\" cy=\"\(f(py(p.y)))\" r=\"3\" fill=\"\(ScatterPlot.colour(p.group, of: groups))\" fill-opacity=\"0.75\"><title>\(htmlEscaped(p.label))</title></circle>"
        }
        if front.count > 1 {
            // A step line: the front dominates everything above and to the right of it.
            var path = "M\(f(px(front[0].x))),\(f(py(front[0].y)))"
            for p in front.dropFirst() { path += " H\(f(px(p.x))) V\(f(py(p.y)))" }
            s += "<path d=\"\(path)\" fill=\"none\" stroke=\"#111\" stroke-width=\"1.5\"/>"
        }
        for m in markers {
            let (x, y) = (px(m.x), py(m.y))
            s += "<path d=\"M\(f(x)),\(f(y - 7)) L\(f(x + 6)),\(f(y + 5)) L\(f(x - 6)),\(f(y + 5)) Z\" fill=\"\(m.colour)\" stroke=\"#111\"/>"
        }
        var ly = top + 12
        s += legend(groups: groups, x: w - right + 10, y: &ly)
        ly += 18
        s += "<line x1=\"\(f(w - right + 10))\" x2=\"\(f(w - right + 26))\" y1=\"\(f(ly - 4))\" y2=\"\(f(ly - 4))\" stroke=\"#111\" stroke-width=\"1.5\"/><text x=\"\(f(w - right + 30))\" y=\"\(f(ly))\">front</text>"
        for m in markers {
            ly += 16
            s += "<path d=\"M\(f(w - right + 18)),\(f(ly - 10)) l6,10 l-12,0 Z\" fill=\"\(m.colour)\" stroke=\"#111\"/><text x=\"\(f(w - right + 30))\" y=\"\(f(ly))\">\(htmlEscaped(m.name))</text>"
        }
        return s + "</svg>"
    }

    /// The colour key. Named groups: a swatch and a name each. Ordered groups (generations): one
    /// swatch per group in a row, labelled with the first, middle and last group, so each colour
    /// can be read off as a generation.
    private func legend(groups: Int, x: Double, y: inout Double) -> String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = ""
        if let groupNames {
            for (k, name) in groupNames.enumerated() {
                s += "<circle cx=\"\(f(x + 4))\" cy=\"\(f(y - 4))\" r=\"4\" fill=\"\(ScatterPlot.colour(k, of: groupNames.count))\"/>"
                s += "<text x=\"\(f(x + 14))\" y=\"\(f(y))\">\(htmlEscaped(name))</text>"
                y += 14
            }
            return s
        }
        s += "<text x=\"\(f(x))\" y=\"\(f(y))\" fill=\"#555\">\(htmlEscaped(groupTitle))</text>"
        y += 6
        let width = 100.0, cell = width / Double(max(1, groups))
        for g in 0..<max(1, groups) {
            s += "<rect x=\"\(f(x + Double(g) * cell))\" y=\"\(f(y))\" width=\"\(f(cell + 0.3))\" height=\"8\" fill=\"\(ScatterPlot.colour(g, of: groups))\"><title>\(htmlEscaped(groupTitle)) \(g)</title></rect>"
        }
        y += 20
        let last = max(0, groups - 1)
        var labels = [(0, "start")]
        if last >= 2 { labels.append((last / 2, "middle")) }
        if last >= 1 { labels.append((last, "end")) }
        for (g, anchor) in labels {
            s += "<text x=\"\(f(x + (Double(g) + 0.5) * cell))\" y=\"\(f(y - 2))\" text-anchor=\"\(anchor)\" fill=\"#555\">\(g)</text>"
        }
        return s
    }

    static func short(_ v: Double) -> String {
        let a = abs(v)
        if a >= 1e9 { return String(format: "%.2fG", v / 1e9) }
        if a >= 1e6 { return String(format: "%.1fM", v / 1e6) }
        if a >= 1e4 { return String(format: "%.0fk", v / 1e3) }
        return LineChart.label(v)
    }

    public var vegaLite: [String: Any] {
        let names = groupNames ?? []
        var values: [[String: Any]] = points.map { p in
            ["x": p.x, "y": p.y, "kind": "evaluated", groupTitle: p.group, "subnet": p.label,
             "name": names.indices.contains(p.group) ? names[p.group] : ""]
        }
        values += front.map { ["x": $0.x, "y": $0.y, "kind": "front"] }
        values += markers.map { ["x": $0.x, "y": $0.y, "kind": $0.name] }
        let x = LineChart.vegaAxis(title: xTitle, values: points.map(\.x) + markers.map(\.x), field: "x")
        let y = LineChart.vegaAxis(title: yTitle, values: points.map(\.y) + markers.map(\.y), field: "y")
        let groups = (points.map(\.group).max() ?? 0) + 1
        // The same colours as the SVG: a ramp over ordered groups, one colour per named group.
        let colour: [String: Any] = groupNames.map { names in
            ["field": "name", "type": "nominal", "title": groupTitle,
             "scale": ["domain": names, "range": names.indices.map { ScatterPlot.colour($0, of: names.count) }]]
        } ?? ["field": groupTitle, "type": "quantitative",
              "scale": ["domain": [0, max(1, groups - 1)], "range": [ScatterPlot.colour(0, of: 2), ScatterPlot.colour(1, of: 2)]]]
        return [
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": LineChart.vegaTitle(title, subtitle), "width": width - 180, "height": height - 80,
            "data": ["values": values],
            "layer": [
                ["transform": [["filter": "datum.kind == 'evaluated'"]],
                 "mark": ["type": "circle", "size": 36, "tooltip": true],
                 "encoding": ["x": x, "y": y, "color": colour]],
                ["transform": [["filter": "datum.kind == 'front'"]],
                 "mark": ["type": "line", "interpolate": "step-after", "color": "#111"],
                 "encoding": ["x": x, "y": y]],
                ["transform": [["filter": "datum.kind != 'evaluated' && datum.kind != 'front'"]],
                 "mark": ["type": "point", "shape": "triangle-up", "size": 120, "filled": true, "tooltip": true],
                 "encoding": ["x": x, "y": y, "color": ["field": "kind", "type": "nominal", "title": "reference",
                                                        "scale": ["domain": markers.map(\.name), "range": markers.map(\.colour)]]]],
            ],
        ]
    }

    public var json: [String: Any] {
        ["x": xTitle, "y": yTitle,
         "points": points.map { ["x": $0.x, "y": $0.y, "group": $0.group, "label": $0.label] as [String: Any] },
         "front": front.map { [$0.x, $0.y] },
         "markers": markers.map { ["name": $0.name, "x": $0.x, "y": $0.y] as [String: Any] }]
    }

    /// Vega-Lite, SVG and a plain-text summary, with the points in the metadata.
    public func bundle(plain: String) -> MimeBundle {
        MimeBundle.chart(plain: plain, svg: svg, vegaLite: vegaLite, points: json)
    }
}
