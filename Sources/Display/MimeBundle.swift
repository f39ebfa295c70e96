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

    public func adding(_ mime: String, _ value: MimeValue) -> MimeBundle {
        var copy = self
        copy.set(mime, value)
        return copy
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

/// Escapes the characters that would break a Markdown table cell.
public func markdownCellEscaped(_ text: String) -> String {
    text.replacingOccurrences(of: "|", with: "\\|").replacingOccurrences(of: "\n", with: " ")
}
