import Foundation
@testable import Transformer
import XCTest

final class TokenizerTests: XCTestCase {
    func pieces(_ text: String, _ pre: String = "smollm") -> [String] {
        ByteLevelBPE(tokens: [], merges: [], preTokenizer: pre).preTokenize(text).map { String(String.UnicodeScalarView($0)) }
    }

    func testGPT2SplitRules() {
        XCTAssertEqual(pieces("Hello world", "gpt2"), ["Hello", " world"])
        XCTAssertEqual(pieces("I'm here, aren't you?", "gpt2"), ["I", "'m", " here", ",", " aren", "'t", " you", "?"])
        XCTAssertEqual(pieces("a   b", "gpt2"), ["a", "  ", " b"], "all but the last space stand alone")
        XCTAssertEqual(pieces("end  ", "gpt2"), ["end", "  "])
        XCTAssertEqual(pieces("x\nY", "gpt2"), ["x", "\n", "Y"])
        XCTAssertEqual(pieces("naïve café", "gpt2"), ["naïve", " café"])
    }

    func testSmolLMSplitsEveryDigit() {
        XCTAssertEqual(pieces("in 1818 there"), ["in", " ", "1", "8", "1", "8", " there"])
        XCTAssertEqual(pieces("v2.0"), ["v", "2", ".", "0"])
    }

    func testMergesApplyByRank() {
        let tokens = ["a", "b", "c", "ab", "bc", "abc"]
        // "b c" ranks before "a b": "abc" → a + bc; then no "a bc" merge exists.
        let bpe = ByteLevelBPE(tokens: tokens, merges: ["b c", "a b", "ab c"], preTokenizer: "gpt2")
        XCTAssertEqual(bpe.encode("abc"), [0, 4])
        let other = ByteLevelBPE(tokens: tokens, merges: ["a b", "ab c"], preTokenizer: "gpt2")
        XCTAssertEqual(other.encode("abc"), [5])
    }

    func testByteTokenizerRoundTripsArbitraryUTF8() {
        let bpe = ByteLevelBPE.bytes()
        for text in ["", "plain ASCII", "Ünïcödé — ✓ 🎉 漢字", "tabs\tand\nnewlines\r\n", "\u{0}\u{1f}"] {
            let ids = bpe.encode(text)
            XCTAssertEqual(ids.count, text.utf8.count)
            XCTAssertEqual(bpe.decode(ids), text)
        }
    }

    func testSpecialTokensAreMatchedOnlyWhenAsked() {
        let tokens = (0..<256).map { String(ByteLevelBPE.byteToUnicode[$0]) } + ["<|im_start|>"]
        var types = [Int32](repeating: 1, count: 256)
        types.append(3)
        let bpe = ByteLevelBPE(tokens: tokens, tokenTypes: types, merges: [], preTokenizer: "gpt2")
        XCTAssertEqual(bpe.encode("<|im_start|>hi", parseSpecial: true), [256, 104, 105])
        XCTAssertEqual(bpe.encode("<|im_start|>hi").count, 14)
        XCTAssertEqual(bpe.decode([256, 104, 105]), "hi", "control tokens decode to nothing")
    }

    func testStreamingDecoderHoldsBackPartialCharacters() {
        var decoder = UTF8StreamDecoder()
        let bytes = Array("é✓🎉".utf8)
        var text = ""
        for b in bytes {
            let piece = decoder.push([b])
            XCTAssertFalse(piece.contains("\u{FFFD}"))
            text += piece
        }
        text += decoder.flush()
        XCTAssertEqual(text, "é✓🎉")
    }
}
