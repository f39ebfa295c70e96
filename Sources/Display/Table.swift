import Foundation

/// A table shown as text/html, text/markdown and aligned text/plain.
public struct Table: Equatable, Sendable {
    public enum Alignment: Sendable { case left, right }

    public var title: String?
    public var columns: [String]
    public var alignments: [Alignment]
    public var rows: [[String]]

    public init(title: String? = nil, columns: [String], alignments: [Alignment]? = nil, rows: [[String]]) {
        self.title = title
        self.columns = columns
        self.alignments = alignments ?? columns.map { _ in .left }
        self.rows = rows.map { row in
            // Pad short rows so every renderer sees a rectangle.
            row.count >= columns.count ? Array(row.prefix(columns.count)) : row + Array(repeating: "", count: columns.count - row.count)
        }
    }

    public var plainText: String {
        var widths = columns.map { $0.count }
        for row in rows {
            for (i, cell) in row.enumerated() { widths[i] = max(widths[i], cell.count) }
        }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { i, cell in
                let pad = String(repeating: " ", count: widths[i] - cell.count)
                return alignments[i] == .right ? pad + cell : cell + pad
            }.joined(separator: "  ").replacingOccurrences(of: "\\s+$", with: "", options: .regularExpression)
        }
        var out = [String]()
        if let title { out.append(title) }
        out.append(line(columns))
        out.append(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  "))
        out.append(contentsOf: rows.map(line))
        return out.joined(separator: "\n")
    }

    public var markdown: String {
        var out = [String]()
        if let title { out.append("**\(markdownCellEscaped(title))**\n") }
        out.append("| " + columns.map(markdownCellEscaped).joined(separator: " | ") + " |")
        out.append("|" + alignments.map { $0 == .right ? " ---: " : " --- " }.joined(separator: "|") + "|")
        for row in rows { out.append("| " + row.map(markdownCellEscaped).joined(separator: " | ") + " |") }
        return out.joined(separator: "\n")
    }

    public var html: String {
        var out = "<table class=\"sculpt-table\">"
        if let title { out += "<caption style=\"text-align:left;font-weight:bold\">\(htmlWithCode(title))</caption>" }
        out += "<thead><tr>"
        for (i, column) in columns.enumerated() {
            out += "<th style=\"text-align:\(alignments[i] == .right ? "right" : "left")\">\(htmlWithCode(column))</th>"
        }
        out += "</tr></thead><tbody>"
        for row in rows {
            out += "<tr>"
            for (i, cell) in row.enumerated() {
                out += "<td style=\"text-align:\(alignments[i] == .right ? "right" : "left")\">\(htmlWithCode(cell))</td>"
            }
            out += "</tr>"
        }
        return out + "</tbody></table>"
    }

    public var bundle: MimeBundle {
        MimeBundle(plain: plainText).adding("text/html", .text(html)).adding("text/markdown", .text(markdown))
    }
}
