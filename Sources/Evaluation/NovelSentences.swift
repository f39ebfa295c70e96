import Foundation

/// A novel cut into chapters and sentences, for the tasks generated from the Austen texts.
///
/// The text is the set-up's: one printed line per line, paragraphs between blank lines, a
/// heading line per chapter ("CHAPTER I", "Chapter 1"; "VOLUME I" lines too). A paragraph's lines
/// are joined and every run of spaces made one (the text puts two after a full stop), `_emphasis_` marks dropped, and it is cut after `.`, `!` or `?`
/// (with any closing quotes) where white space and then a capital or an opening quote follow,
/// except after the abbreviations Austen's titles use (Mr., Mrs., Dr., St., Esq., Col., Capt.,
/// Wm.). Anything before the first chapter heading (title, author) is left out.
public struct NovelSentences: Sendable {
    public struct Sentence: Sendable, Equatable {
        public var text: String
        /// The first sentence of its paragraph: it follows a line break, not a space.
        public var startsParagraph: Bool
        public var wordCount: Int
    }

    /// Each chapter's sentences, in order.
    public var chapters: [[Sentence]]

    static let abbreviations: Set<String> = ["Mr", "Mrs", "Dr", "St", "Esq", "Col", "Capt", "Wm", "Messrs", "Sr", "Jr"]

    public init(text: String) {
        var chapters = [[Sentence]]()
        var paragraph = [Substring]()
        var inChapters = false
        func flush() {
            defer { paragraph.removeAll() }
            guard inChapters, !paragraph.isEmpty else { return }
            let joined = paragraph.joined(separator: " ").replacingOccurrences(of: "_", with: "")
                .split(separator: " ").joined(separator: " ")
            let sentences = NovelSentences.split(paragraph: joined)
            for (i, s) in sentences.enumerated() {
                chapters[chapters.count - 1].append(Sentence(text: s, startsParagraph: i == 0, wordCount: s.split(separator: " ").count))
            }
        }
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty { flush(); continue }
            if NovelSentences.isHeading(line) {
                flush()
                if line.uppercased().hasPrefix("CHAPTER") {
                    chapters.append([])
                    inChapters = true
                }
                continue
            }
            paragraph.append(Substring(line))
        }
        flush()
        self.chapters = chapters.filter { !$0.isEmpty }
    }

    static func isHeading(_ line: String) -> Bool {
        let words = line.split(separator: " ")
        guard words.count == 2, let first = words.first?.uppercased() else { return false }
        return first == "CHAPTER" || first == "VOLUME"
    }

    /// Cuts one paragraph (white space already single spaces) into sentences.
    static func split(paragraph: String) -> [String] {
        let scalars = Array(paragraph.unicodeScalars)
        var sentences = [String]()
        var start = 0
        var i = 0
        func isClosing(_ c: Unicode.Scalar) -> Bool { c == "\"" || c == "'" || c == ")" || c == "\u{201D}" || c == "\u{2019}" }
        func opensSentence(_ c: Unicode.Scalar) -> Bool {
            c.properties.isUppercase || c == "\"" || c == "'" || c == "\u{201C}" || c == "\u{2018}" || c == "("
        }
        while i < scalars.count {
            let c = scalars[i]
            guard c == "." || c == "!" || c == "?" else { i += 1; continue }
            var end = i + 1
            while end < scalars.count, isClosing(scalars[end]) || scalars[end] == "!" || scalars[end] == "?" { end += 1 }
            guard end + 1 < scalars.count, scalars[end] == " ", opensSentence(scalars[end + 1]) else { i = end; continue }
            if c == "." {
                // The word before the full stop: a title's abbreviation does not end a sentence.
                var w = i
                while w > start, scalars[w - 1].properties.isAlphabetic { w -= 1 }
                let word = String(String.UnicodeScalarView(scalars[w..<i]))
                if abbreviations.contains(word) || (word.count == 1 && word.uppercased() == word) { i = end; continue }
            }
            sentences.append(String(String.UnicodeScalarView(scalars[start..<end])))
            start = end + 1
            i = start
        }
        if start < scalars.count {
            sentences.append(String(String.UnicodeScalarView(scalars[start...])))
        }
        return sentences.map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    /// Sentences joined as the text has them: a space inside a paragraph, a line break between
    /// paragraphs.
    public static func join(_ sentences: ArraySlice<Sentence>) -> String {
        var out = ""
        for s in sentences {
            if !out.isEmpty { out += s.startsParagraph ? "\n" : " " }
            out += s.text
        }
        return out
    }
}
