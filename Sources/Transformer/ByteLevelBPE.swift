import Foundation

/// GPT-2 byte-level BPE as GGUF stores it (`tokenizer.ggml.model = "gpt2"`), with the
/// pre-tokenizers Sculpt's models use: "smollm" (each digit alone, then the GPT-2 split) and
/// plain "gpt2".
///
/// Encoding: split out special tokens, pre-tokenize, map each piece's UTF-8 bytes to GPT-2's
/// printable stand-ins, merge the adjacent pair of lowest rank until none applies, look up ids.
public final class ByteLevelBPE: @unchecked Sendable {
    public let tokens: [String]
    public let tokenTypes: [Int32]
    public let preTokenizer: String
    public let bosID: Int32?
    public let eosID: Int32?
    public let addBOS: Bool
    private let ids: [String: Int32]
    private let ranks: [String: Int]
    /// The merges in rank order, as GGUF stores them.
    public let mergeList: [String]
    /// Control and user-defined tokens, longest first, matched in text when specials are parsed.
    private let specials: [(text: String, id: Int32)]
    private let cacheLock = NSLock()
    private var cache = [String: [Int32]]()

    public enum TokenType: Int32 { case normal = 1, unknown = 2, control = 3, userDefined = 4, unused = 5, byte = 6 }

    public init(tokens: [String], tokenTypes: [Int32]? = nil, merges: [String], preTokenizer: String,
                bosID: Int32? = nil, eosID: Int32? = nil, addBOS: Bool = false) {
        self.tokens = tokens
        self.tokenTypes = tokenTypes ?? Array(repeating: TokenType.normal.rawValue, count: tokens.count)
        self.preTokenizer = preTokenizer
        self.bosID = bosID
        self.eosID = eosID
        self.addBOS = addBOS
        var ids = [String: Int32](minimumCapacity: tokens.count)
        for (i, t) in tokens.enumerated() where ids[t] == nil { ids[t] = Int32(i) }
        self.ids = ids
        var ranks = [String: Int](minimumCapacity: merges.count)
        for (i, m) in merges.enumerated() where ranks[m] == nil { ranks[m] = i }
        self.ranks = ranks
        mergeList = merges
        specials = zip(tokens, self.tokenTypes).enumerated()
            .filter { $0.element.1 == TokenType.control.rawValue || $0.element.1 == TokenType.userDefined.rawValue }
            .map { (text: $0.element.0, id: Int32($0.offset)) }
            .filter { !$0.text.isEmpty }
            .sorted { $0.text.count > $1.text.count }
    }

    /// A tokenizer over the 256 bytes and nothing else: for tiny models.
    public static func bytes() -> ByteLevelBPE {
        ByteLevelBPE(tokens: (0..<256).map { String(ByteLevelBPE.byteToUnicode[$0]) }, merges: [], preTokenizer: "gpt2")
    }

    public var vocabularySize: Int { tokens.count }

    // MARK: Encoding

    public func encode(_ text: String, parseSpecial: Bool = false) -> [Int32] {
        var out = [Int32]()
        if addBOS, let bosID { out.append(bosID) }
        for (segment, specialID) in splitSpecials(text, parse: parseSpecial) {
            if let specialID { out.append(specialID); continue }
            for piece in preTokenize(segment) { out += encodePiece(piece) }
        }
        return out
    }

    private func splitSpecials(_ text: String, parse: Bool) -> [(String, Int32?)] {
        guard parse, !specials.isEmpty else { return [(text, nil)] }
        var out = [(String, Int32?)]()
        var rest = Substring(text)
        var plain = ""
        while !rest.isEmpty {
            if rest.first == "<" || rest.first == "[", let match = specials.first(where: { rest.hasPrefix($0.text) }) {
                if !plain.isEmpty { out.append((plain, nil)); plain = "" }
                out.append((match.text, match.id))
                rest = rest.dropFirst(match.text.count)
            } else {
                plain.append(rest.removeFirst())
            }
        }
        if !plain.isEmpty { out.append((plain, nil)) }
        return out
    }

    private func encodePiece(_ piece: [Unicode.Scalar]) -> [Int32] {
        let bytes = Array(String(String.UnicodeScalarView(piece)).utf8)
        let word = String(bytes.map { ByteLevelBPE.byteToUnicode[Int($0)] })
        cacheLock.lock()
        if let hit = cache[word] { cacheLock.unlock(); return hit }
        cacheLock.unlock()

        var symbols = word.map { String($0) }
        while symbols.count > 1 {
            var best = Int.max, bestIndex = -1
            for i in 0..<(symbols.count - 1) {
                if let rank = ranks[symbols[i] + " " + symbols[i + 1]], rank < best { best = rank; bestIndex = i }
            }
            if bestIndex < 0 { break }
            // Merge every occurrence of the best pair, left to right.
            let left = symbols[bestIndex], right = symbols[bestIndex + 1]
            var merged = [String]()
            merged.reserveCapacity(symbols.count)
            var i = 0
            while i < symbols.count {
                if i < symbols.count - 1 && symbols[i] == left && symbols[i + 1] == right {
                    merged.append(left + right)
                    i += 2
                } else {
                    merged.append(symbols[i])
                    i += 1
                }
            }
            symbols = merged
        }
        var out = [Int32]()
        for symbol in symbols {
            if let id = ids[symbol] {
                out.append(id)
            } else {
                // A symbol outside the vocabulary: fall back to its single byte-characters.
                for c in symbol { if let id = ids[String(c)] { out.append(id) } }
            }
        }
        cacheLock.lock()
        cache[word] = out
        cacheLock.unlock()
        return out
    }

    // MARK: Pre-tokenizers

    /// Pieces of text that BPE merges never cross.
    func preTokenize(_ text: String) -> [[Unicode.Scalar]] {
        let scalars = Array(text.unicodeScalars)
        guard preTokenizer == "smollm" else { return ByteLevelBPE.gpt2Split(scalars[...]) }
        // "smollm": first every \p{N} becomes its own piece (with the gaps between as pieces),
        // then the GPT-2 split runs inside each piece.
        var pieces = [[Unicode.Scalar]]()
        var start = 0
        for (i, s) in scalars.enumerated() where ByteLevelBPE.isNumber(s) {
            if start < i { pieces += ByteLevelBPE.gpt2Split(scalars[start..<i]) }
            pieces.append([s])
            start = i + 1
        }
        if start < scalars.count { pieces += ByteLevelBPE.gpt2Split(scalars[start...]) }
        return pieces
    }

    /// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+ — by hand, as llama.cpp
    /// does, so that it is fast and does not depend on a regex engine's Unicode tables.
    static func gpt2Split(_ text: ArraySlice<Unicode.Scalar>) -> [[Unicode.Scalar]] {
        var pieces = [[Unicode.Scalar]]()
        let end = text.endIndex
        var pos = text.startIndex
        func at(_ i: Int) -> Unicode.Scalar? { i < end ? text[i] : nil }
        func emit(_ to: Int) { if to > pos { pieces.append(Array(text[pos..<to])) }; pos = to }
        while pos < end {
            let c = text[pos]
            if c == "'", let n = at(pos + 1) {
                if n == "s" || n == "t" || n == "m" || n == "d" { emit(pos + 2); continue }
                if let nn = at(pos + 2), (n == "r" && nn == "e") || (n == "v" && nn == "e") || (n == "l" && nn == "l") {
                    emit(pos + 3); continue
                }
            }
            let lead = c == " " ? pos + 1 : pos
            if let s = at(lead) {
                if isLetter(s) {
                    var i = lead
                    while let x = at(i), isLetter(x) { i += 1 }
                    emit(i); continue
                }
                if isNumber(s) {
                    var i = lead
                    while let x = at(i), isNumber(x) { i += 1 }
                    emit(i); continue
                }
                if !isSpace(s) {
                    var i = lead
                    while let x = at(i), !isSpace(x), !isLetter(x), !isNumber(x) { i += 1 }
                    emit(i); continue
                }
            }
            var spaces = 0
            while let x = at(pos + spaces), isSpace(x) { spaces += 1 }
            if spaces > 1 && pos + spaces < end {
                // \s+(?!\S): leave the last space to lead the next word.
                emit(pos + spaces - 1); continue
            }
            if spaces > 0 { emit(pos + spaces); continue }
            emit(pos + 1)
        }
        return pieces
    }

    static func isLetter(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return (s >= "a" && s <= "z") || (s >= "A" && s <= "Z") }
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: return true
        default: return false
        }
    }

    static func isNumber(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return s >= "0" && s <= "9" }
        switch s.properties.generalCategory {
        case .decimalNumber, .letterNumber, .otherNumber: return true
        default: return false
        }
    }

    static func isSpace(_ s: Unicode.Scalar) -> Bool {
        if s.isASCII { return s == " " || (s.value >= 9 && s.value <= 13) }
        return s.properties.isWhitespace
    }

    // MARK: Decoding

    /// The bytes a token stands for (control tokens: none).
    public func bytes(of id: Int32) -> [UInt8] {
        guard id >= 0 && Int(id) < tokens.count else { return [] }
        if tokenTypes[Int(id)] == TokenType.control.rawValue { return [] }
        if tokenTypes[Int(id)] == TokenType.userDefined.rawValue { return Array(tokens[Int(id)].utf8) }
        return tokens[Int(id)].unicodeScalars.flatMap { scalar -> [UInt8] in
            if let byte = ByteLevelBPE.unicodeToByte[scalar] { return [byte] }
            return Array(String(scalar).utf8)
        }
    }

    public func decode(_ ids: [Int32]) -> String {
        String(decoding: ids.flatMap { bytes(of: $0) }, as: UTF8.self)
    }

    /// GPT-2's byte ↔ printable character table: bytes 33–126, 161–172, 174–255 map to
    /// themselves, the other 68 to U+0100 onwards in order (space → "Ġ", newline → "Ċ").
    public static let byteToUnicode: [Character] = {
        var table = [Character](repeating: " ", count: 256)
        var next: UInt32 = 256
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = Character(Unicode.Scalar(UInt32(b))!)
            } else {
                table[b] = Character(Unicode.Scalar(next)!)
                next += 1
            }
        }
        return table
    }()

    static let unicodeToByte: [Unicode.Scalar: UInt8] = {
        var map = [Unicode.Scalar: UInt8]()
        for (b, c) in byteToUnicode.enumerated() { map[c.unicodeScalars.first!] = UInt8(b) }
        return map
    }()
}

/// Turns a stream of token bytes into text, holding back an incomplete UTF-8 sequence until
/// the rest arrives: for printing tokens as they are generated.
public struct UTF8StreamDecoder {
    private var pending = [UInt8]()

    public init() {}

    public mutating func push(_ bytes: [UInt8]) -> String {
        pending += bytes
        // Find the longest prefix that ends on a complete UTF-8 sequence.
        var cut = pending.count
        var back = 0
        while back < min(3, pending.count) {
            let b = pending[pending.count - 1 - back]
            if b & 0xC0 == 0x80 { back += 1; continue }       // continuation byte
            if b & 0x80 != 0 {                                  // lead byte: how long should it be?
                let needed = b >= 0xF0 ? 4 : b >= 0xE0 ? 3 : 2
                if back + 1 < needed { cut = pending.count - 1 - back }
            }
            break
        }
        let text = String(decoding: pending[..<cut], as: UTF8.self)
        pending.removeFirst(cut)
        return text
    }

    public mutating func flush() -> String {
        defer { pending = [] }
        return String(decoding: pending, as: UTF8.self)
    }
}
