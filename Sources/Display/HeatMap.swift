import Foundation

/// A grid of values (rows × columns: layers × modules) coloured on one scale, with each cell's
/// value on hover, as SVG, Vega-Lite, an HTML table with coloured cells, and text. Rank tables,
/// sensitivity and sparsity all draw with it. An optional distribution (a histogram of, say, the
/// rank importances) is drawn under the grid.
public struct HeatMap: Sendable {
    public var title: String
    public var subtitle: String?
    public var rowTitle: String
    public var columnTitle: String
    public var valueTitle: String
    public var rows: [String]
    public var columns: [String]
    /// values[row][column]; nil for a cell with no value (drawn blank).
    public var values: [[Double?]]
    /// A histogram under the grid: its title, what it counts ("ranks", "subnets") and the values.
    public var distribution: (title: String, counted: String, values: [Double])?

    public init(title: String, rowTitle: String, columnTitle: String, valueTitle: String,
                rows: [String], columns: [String], values: [[Double?]]) {
        self.title = title
        self.rowTitle = rowTitle
        self.columnTitle = columnTitle
        self.valueTitle = valueTitle
        self.rows = rows
        self.columns = columns
        self.values = values
    }

    var range: (Double, Double) {
        let all = values.flatMap { $0.compactMap { $0 } }.filter(\.isFinite)
        guard let lo = all.min(), let hi = all.max() else { return (0, 1) }
        return lo == hi ? (lo - 0.5, hi + 0.5) : (lo, hi)
    }

    /// White → blue: low values light, high values dark.
    static func colour(_ t: Double) -> String {
        let t = min(1, max(0, t))
        let (r, g, b) = (247 - t * (247 - 8), 251 - t * (251 - 69), 255 - t * (255 - 148))
        return String(format: "#%02x%02x%02x", Int(r), Int(g), Int(b))
    }

    static func number(_ v: Double) -> String {
        v == v.rounded() && abs(v) < 1e6 ? String(Int(v)) : String(format: abs(v) < 0.01 || abs(v) >= 1e4 ? "%.2e" : "%.3g", v)
    }

    func colour(of v: Double) -> String {
        let (lo, hi) = range
        return HeatMap.colour((v - lo) / (hi - lo))
    }

    public var svg: String {
        let cell = 22.0, left = 70.0, top = subtitle == nil ? 44.0 : 58.0, legendWidth = 120.0
        let gridW = Double(columns.count) * cell, gridH = Double(rows.count) * cell
        let histogramH = distribution == nil ? 0.0 : 110.0
        let width = left + gridW + legendWidth + 20, height = top + gridH + 30 + histogramH
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        var s = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\" font-family=\"sans-serif\" font-size=\"11\">"
        s += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>"
        s += "<text x=\"10\" y=\"16\" font-size=\"12\" font-weight=\"bold\">\(htmlEscaped(title))</text>"
        if let subtitle { s += "<text x=\"10\" y=\"31\" fill=\"#555\">\(htmlEscaped(subtitle))</text>" }
        for (j, column) in columns.enumerated() {
            s += "<text x=\"\(f(left + (Double(j) + 0.5) * cell))\" y=\"\(f(top - 6))\" text-anchor=\"middle\">\(htmlEscaped(column))</text>"
        }
        s += "<text x=\"10\" y=\"\(f(top - 6))\" fill=\"#555\">\(htmlEscaped(rowTitle))</text>"
        for (i, row) in rows.enumerated() {
            let y = top + Double(i) * cell
            s += "<text x=\"\(f(left - 6))\" y=\"\(f(y + cell / 2 + 4))\" text-anchor=\"end\">\(htmlEscaped(row))</text>"
            for (j, value) in values[i].enumerated() {
                let x = left + Double(j) * cell
                guard let value else { continue }
                s += "<rect x=\"\(f(x))\" y=\"\(f(y))\" width=\"\(f(cell - 1))\" height=\"\(f(cell - 1))\" fill=\"\(colour(of: value))\">"
                s += "<title>\(htmlEscaped("\(rowTitle) \(rows[i]), \(columns[j]): \(valueTitle) \(HeatMap.number(value))"))</title></rect>"
                let (lo, hi) = range
                let dark = (value - lo) / (hi - lo) > 0.55
                s += "<text x=\"\(f(x + cell / 2 - 0.5))\" y=\"\(f(y + cell / 2 + 3.5))\" text-anchor=\"middle\" font-size=\"9\" fill=\"\(dark ? "white" : "#222")\">\(HeatMap.number(value))</text>"
            }
        }
        // Colour key: the scale's ends and middle.
        let (lo, hi) = range
        let kx = left + gridW + 16
        s += "<text x=\"\(f(kx))\" y=\"\(f(top + 8))\" fill=\"#555\">\(htmlEscaped(valueTitle))</text>"
        for k in 0..<10 {
            s += "<rect x=\"\(f(kx + Double(k) * 10))\" y=\"\(f(top + 14))\" width=\"10\" height=\"10\" fill=\"\(HeatMap.colour(Double(k) / 9))\"/>"
        }
        s += "<text x=\"\(f(kx))\" y=\"\(f(top + 36))\">\(HeatMap.number(lo))</text>"
        s += "<text x=\"\(f(kx + 100))\" y=\"\(f(top + 36))\" text-anchor=\"end\">\(HeatMap.number(hi))</text>"
        if let distribution, !distribution.values.isEmpty {
            s += histogramSVG(distribution, x: left, y: top + gridH + 30, width: max(gridW, 240), height: histogramH - 30)
        }
        return s + "</svg>"
    }

    /// Counts of the distribution's values in 20 equal bins, or one bin per whole number when
    /// the values are whole numbers spanning fewer than 40 (layer counts, say).
    static func bins(_ values: [Double], count: Int = 20) -> [(lo: Double, hi: Double, count: Int)] {
        let finite = values.filter(\.isFinite)
        guard let lo = finite.min(), let hi = finite.max() else { return [] }
        if wholeNumbers(finite) {
            return stride(from: lo, through: hi, by: 1).map { v in (v - 0.5, v + 0.5, finite.filter { $0 == v }.count) }
        }
        let width = hi > lo ? (hi - lo) / Double(count) : 1
        var counts = [Int](repeating: 0, count: count)
        for v in finite { counts[min(count - 1, Int((v - lo) / width))] += 1 }
        return counts.enumerated().map { (lo + Double($0.offset) * width, lo + Double($0.offset + 1) * width, $0.element) }
    }

    /// Whole numbers spanning fewer than 40: counted one bar per number.
    static func wholeNumbers(_ values: [Double]) -> Bool {
        guard let lo = values.min(), let hi = values.max() else { return false }
        return values.allSatisfy { $0 == $0.rounded() } && hi - lo < 40
    }

    private func histogramSVG(_ d: (title: String, counted: String, values: [Double]), x: Double, y: Double, width: Double, height: Double) -> String {
        func f(_ v: Double) -> String { String(format: "%.1f", v) }
        let bins = HeatMap.bins(d.values)
        let whole = HeatMap.wholeNumbers(d.values.filter(\.isFinite))
        let most = Double(bins.map(\.count).max() ?? 1)
        let barW = width / Double(max(1, bins.count))
        var s = "<text x=\"\(f(x))\" y=\"\(f(y - 4))\" fill=\"#555\">\(htmlEscaped(d.title)) (\(d.values.count) \(htmlEscaped(d.counted)))</text>"
        for (k, bin) in bins.enumerated() {
            let h = (height - 14) * Double(bin.count) / max(1, most)
            s += "<rect x=\"\(f(x + Double(k) * barW))\" y=\"\(f(y + height - 14 - h))\" width=\"\(f(barW - 1))\" height=\"\(f(h))\" fill=\"#1f6feb\">"
            let range = whole ? HeatMap.number(bin.lo + 0.5) : "\(HeatMap.number(bin.lo))…\(HeatMap.number(bin.hi))"
            s += "<title>\(range): \(bin.count) \(htmlEscaped(d.counted))</title></rect>"
            if whole { s += "<text x=\"\(f(x + (Double(k) + 0.5) * barW))\" y=\"\(f(y + height))\" text-anchor=\"middle\" font-size=\"9\">\(range)</text>" }
        }
        if !whole, let first = bins.first, let last = bins.last {
            s += "<text x=\"\(f(x))\" y=\"\(f(y + height))\">\(HeatMap.number(first.lo))</text>"
            s += "<text x=\"\(f(x + width))\" y=\"\(f(y + height))\" text-anchor=\"end\">\(HeatMap.number(last.hi))</text>"
        }
        return s
    }

    public var vegaLite: [String: Any] {
        var cells = [[String: Any]]()
        for (i, row) in rows.enumerated() {
            for (j, column) in columns.enumerated() {
                if let v = values[i][j] { cells.append([rowTitle: row, columnTitle: column, valueTitle: v]) }
            }
        }
        let grid: [String: Any] = [
            "data": ["values": cells],
            "width": max(120, columns.count * 22), "height": max(60, rows.count * 16),
            "mark": ["type": "rect", "tooltip": true],
            "encoding": [
                "x": ["field": columnTitle, "type": "ordinal", "sort": columns, "axis": ["orient": "top"]],
                "y": ["field": rowTitle, "type": "ordinal", "sort": rows],
                "color": ["field": valueTitle, "type": "quantitative", "scale": ["range": [HeatMap.colour(0), HeatMap.colour(1)]]],
            ],
        ]
        var spec: [String: Any] = ["$schema": "https://vega.github.io/schema/vega-lite/v5.json",
                                   "title": LineChart.vegaTitle(title, subtitle)]
        if let distribution, !distribution.values.isEmpty {
            let finite = distribution.values.filter(\.isFinite)
            let x: [String: Any] = HeatMap.wholeNumbers(finite) ? ["field": "value", "type": "ordinal", "title": distribution.title]
                : ["field": "value", "type": "quantitative", "bin": ["maxbins": 20], "title": distribution.title]
            let histogram: [String: Any] = [
                "data": ["values": finite.map { ["value": $0] }],
                "width": max(240, columns.count * 22), "height": 80,
                "mark": ["type": "bar", "tooltip": true],
                "encoding": ["x": x,
                             "y": ["aggregate": "count", "type": "quantitative", "title": distribution.counted]],
            ]
            spec["vconcat"] = [grid, histogram]
        } else {
            spec.merge(grid) { $1 }
        }
        return spec
    }

    public var plainText: String {
        let width = max(3, columns.map(\.count).max() ?? 3, values.flatMap { $0.map { $0.map(HeatMap.number)?.count ?? 1 } }.max() ?? 1)
        let rowWidth = max(rowTitle.count, rows.map(\.count).max() ?? 1)
        func pad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var lines = [title] + (subtitle.map { [$0] } ?? [])
        lines.append(rowTitle.padding(toLength: rowWidth, withPad: " ", startingAt: 0) + " " + columns.map { pad($0, width) }.joined(separator: " "))
        for (i, row) in rows.enumerated() {
            lines.append(row.padding(toLength: rowWidth, withPad: " ", startingAt: 0) + " "
                         + values[i].map { pad($0.map(HeatMap.number) ?? "·", width) }.joined(separator: " "))
        }
        if let distribution, !distribution.values.isEmpty {
            let finite = distribution.values.filter(\.isFinite)
            let counts = HeatMap.wholeNumbers(finite)
                ? HeatMap.bins(finite).filter { $0.count > 0 }.map { "\(HeatMap.number($0.lo + 0.5)) ×\($0.count)" }.joined(separator: ", ")
                : "\(finite.count) from \(HeatMap.number(finite.min() ?? .nan)) to \(HeatMap.number(finite.max() ?? .nan))"
            lines.append("\(distribution.title), \(distribution.counted) of each: " + counts)
        }
        return lines.joined(separator: "\n")
    }

    /// An HTML table whose cells carry the scale's colour: the heat map where only HTML is drawn.
    public var html: String {
        var out = "<table class=\"sculpt-table\"><caption style=\"text-align:left;font-weight:bold\">\(htmlEscaped(title))</caption>"
        out += "<thead><tr><th>\(htmlEscaped(rowTitle))</th>" + columns.map { "<th>\(htmlEscaped($0))</th>" }.joined() + "</tr></thead><tbody>"
        let (lo, hi) = range
        for (i, row) in rows.enumerated() {
            out += "<tr><th style=\"text-align:right\">\(htmlEscaped(row))</th>"
            for value in values[i] {
                guard let value else { out += "<td></td>"; continue }
                let dark = (value - lo) / (hi - lo) > 0.55
                out += "<td style=\"text-align:right;background:\(colour(of: value));color:\(dark ? "white" : "#222")\" title=\"\(htmlEscaped(valueTitle)) \(HeatMap.number(value))\">\(HeatMap.number(value))</td>"
            }
            out += "</tr>"
        }
        return out + "</tbody></table>"
    }

    public var json: [String: Any] {
        ["rows": rows, "columns": columns, "value": valueTitle,
         "values": values.map { $0.map { $0.map { $0 as Any } ?? NSNull() } },
         "distribution": distribution.map { $0.values } ?? []]
    }

    /// The chart: Vega-Lite, SVG and text (a live display).
    public func bundle(plain: String? = nil) -> MimeBundle {
        MimeBundle.chart(plain: plain ?? plainText, svg: svg, vegaLite: vegaLite, points: json)
    }

    /// The table form: coloured HTML cells, Markdown and text (a result that reads as a table).
    public var tableBundle: MimeBundle {
        let markdown = Table(title: title, columns: [rowTitle] + columns,
                             rows: rows.enumerated().map { i, r in [r] + values[i].map { $0.map(HeatMap.number) ?? "" } }).markdown
        return MimeBundle(plain: plainText).adding("text/html", .text(html)).adding("text/markdown", .text(markdown))
    }
}
