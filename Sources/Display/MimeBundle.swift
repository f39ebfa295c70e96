import Foundation

/// One representation of an output: text (including base64 images) or a JSON document.
public enum MimeValue: Equatable, Sendable {
    case text(String)
    /// UTF-8 JSON bytes, for `application/json` and `application/vnd.*+json` types.
    case json(Data)
}

/// An output in several representations, keyed by MIME type. Every bundle carries
/// `text/plain`, so consoles and logs can always show something.
public struct MimeBundle: Equatable, Sendable {
    public private(set) var values: [String: MimeValue]
    /// The display's metadata (JSON values by key). Front ends never render it, so it is where
    /// data for the user rather than for the eye goes: a chart's raw points live under `sculpt`.
    public private(set) var metadata: [String: MimeValue] = [:]

    public init(plain: String) {
        values = ["text/plain": .text(plain)]
    }

    public var plainText: String {
        if case .text(let s)? = values["text/plain"] { return s }
        return ""
    }

    /// Adds or replaces a representation.
    public mutating func set(_ mime: String, _ value: MimeValue) {
        values[mime] = value
    }

    /// Adds or replaces one metadata entry.
    public mutating func setMetadata(_ key: String, _ value: MimeValue) {
        metadata[key] = value
    }

    public func adding(_ mime: String, _ value: MimeValue) -> MimeBundle {
        var copy = self
        copy.set(mime, value)
        return copy
    }

    /// A chart: Vega-Lite for JupyterLab and Notebook 7 (interactive), SVG for VS Code, exported
    /// HTML and anything that draws images, text for consoles and logs. No `text/html` and no
    /// `application/json`: JupyterLab ranks both above Vega-Lite and would show those instead. The
    /// raw points go into the metadata under `sculpt`, where no front end mistakes them for the display.
    public static func chart(plain: String, svg: String, vegaLite: [String: Any], points: [String: Any]) -> MimeBundle {
        var bundle = MimeBundle(plain: plain)
        bundle.set("image/svg+xml", .text(svg))
        if let spec = try? JSONSerialization.data(withJSONObject: vegaLite, options: [.sortedKeys]) {
            bundle.set("application/vnd.vegalite.v5+json", .json(spec))
        }
        if let data = try? JSONSerialization.data(withJSONObject: ["points": points], options: [.sortedKeys]) {
            bundle.setMetadata("sculpt", .json(data))
        }
        return bundle
    }

    /// Markdown with a plain-text fallback.
    public static func markdown(_ markdown: String, plain: String) -> MimeBundle {
        MimeBundle(plain: plain).adding("text/markdown", .text(markdown))
    }
}

/// HTML escaping for text placed inside elements and attributes.
public func htmlEscaped(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        default: out.append(c)
        }
    }
    return out
}

/// HTML for prose that marks code with backticks, as help and error texts do: escaped, with each
/// `quoted` run set in `<code>`, so no literal backtick reaches the page.
public func htmlWithCode(_ text: String) -> String {
    let parts = text.components(separatedBy: "`")
    // An odd number of backticks: the last one is a literal character, not the start of code.
    guard parts.count > 2 else { return htmlEscaped(text) }
    var out = ""
    for (i, part) in parts.enumerated() {
        let closed = i % 2 == 1 && i < parts.count - 1
        if i % 2 == 1 && !closed { out += "`" + htmlEscaped(part); continue }
        out += closed ? "<code>" + htmlEscaped(part) + "</code>" : htmlEscaped(part)
    }
    return out
}

/// Escapes the characters that would break a Markdown table cell.
public func markdownCellEscaped(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}
