import Foundation
import JupyterProtocol
import XCTest

final class WireCodecTests: XCTestCase {
    let codec = WireCodec(signer: MessageSigner(key: "a0436f6c-1916-498b-8eb9-e81ab9368e84"))

    func request(_ type: String = "kernel_info_request", content: JSONValue = .emptyObject) -> Message {
        var header = MessageHeader(msgType: type, session: "client-session")
        header = MessageHeader(fields: header.fields.merging(["x-extra": "kept"]) { a, _ in a })
        return Message(identities: [Data([1, 2, 3])], header: header, content: content)
    }

    func testRoundTripKeepsIdentitiesHeaderAndContent() throws {
        let message = request(content: ["code": "echo hi", "n": 3, "pi": 3.5, "ok": true, "list": [1, "two", nil]])
        let frames = codec.encode(message)
        XCTAssertEqual(frames[0], Data([1, 2, 3]))
        XCTAssertEqual(frames[1], WireCodec.delimiter)
        XCTAssertEqual(frames.count, 7)
        let decoded = try codec.decode(frames)
        XCTAssertEqual(decoded.identities, [Data([1, 2, 3])])
        XCTAssertEqual(decoded.header, message.header)
        XCTAssertEqual(decoded.content, message.content)
        XCTAssertEqual(decoded.parentHeader, .emptyObject)
    }

    func testBuffersFollowAndAreNotSigned() throws {
        var message = request()
        message.buffers = [Data([9, 9])]
        var frames = codec.encode(message)
        frames[frames.count - 1] = Data([7])
        XCTAssertEqual(try codec.decode(frames).buffers, [Data([7])])
    }

    func testTamperedContentIsRejected() {
        var frames = codec.encode(request(content: ["code": "seed 1"]))
        frames[frames.count - 1] = Data("{\"code\":\"seed 2\"}".utf8)
        XCTAssertThrowsError(try codec.decode(frames)) { XCTAssertEqual($0 as? WireError, .badSignature) }
    }

    func testMissingSignatureIsRejected() {
        var frames = codec.encode(request())
        frames[2] = Data()
        XCTAssertThrowsError(try codec.decode(frames)) { XCTAssertEqual($0 as? WireError, .badSignature) }
    }

    func testVerifiesTheExactReceivedBytes() throws {
        // Same JSON, different bytes (spacing, key order): valid only with a signature over these bytes.
        let parts = ["{\"msg_id\": \"1\",  \"msg_type\": \"x\"}", "{}", "{}", "{ }"].map { Data($0.utf8) }
        let frames = [WireCodec.delimiter, codec.signer.signature(of: parts)] + parts
        XCTAssertEqual(try codec.decode(frames).msgType, "x")
    }

    func testMalformedMessagesNameTheirFault() {
        let good = codec.encode(request())
        XCTAssertThrowsError(try codec.decode(Array(good.prefix(5)))) { XCTAssertEqual($0 as? WireError, .truncated(frames: 3)) }
        XCTAssertThrowsError(try codec.decode([Data("x".utf8)] + good.dropFirst(2))) { XCTAssertEqual($0 as? WireError, .missingDelimiter) }

        let unsigned = WireCodec(signer: MessageSigner(key: ""))
        func frames(_ header: String, content: String = "{}") -> [Data] {
            [WireCodec.delimiter, Data()] + [header, "{}", "{}", content].map { Data($0.utf8) }
        }
        XCTAssertThrowsError(try unsigned.decode(frames("not json"))) { XCTAssertEqual($0 as? WireError, .invalidJSON(part: "header")) }
        XCTAssertThrowsError(try unsigned.decode(frames("{\"msg_id\":\"1\",\"msg_type\":\"x\"}", content: "[1]"))) {
            XCTAssertEqual($0 as? WireError, .invalidJSON(part: "content"))
        }
        XCTAssertThrowsError(try unsigned.decode(frames("{\"msg_id\":\"1\"}"))) { XCTAssertEqual($0 as? WireError, .incompleteHeader(missing: "msg_type")) }
        let small = WireCodec(signer: MessageSigner(key: ""), maximumBytes: 100)
        XCTAssertThrowsError(try small.decode(frames("{\"msg_id\":\"1\",\"msg_type\":\"x\"}", content: "{\"pad\":\"\(String(repeating: "a", count: 200))\"}"))) {
            guard case .oversized? = $0 as? WireError else { return XCTFail("expected oversized, got \($0)") }
        }
    }

    func testHeadersHaveFreshIDsAndTheProtocolVersion() {
        let a = MessageHeader(msgType: "status", session: "s")
        let b = MessageHeader(msgType: "status", session: "s")
        XCTAssertNotEqual(a.msgID, b.msgID)
        XCTAssertEqual(a.fields["version"], "5.4")
        let date = a.fields["date"]?.stringValue ?? ""
        XCTAssertNotNil(date.range(of: #"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"#, options: .regularExpression), date)
        XCTAssertEqual(MessageHeader.isoDate(Date(timeIntervalSince1970: 1_700_000_000.25)), "2023-11-14T22:13:20.250000Z")
    }

    func testJSONKeepsIntegersAndRefusesNonFiniteNumbers() throws {
        let value: JSONValue = ["count": 3, "x": .double(.nan)]
        let text = String(decoding: value.serialized(), as: UTF8.self)
        XCTAssertEqual(text, #"{"count":3,"x":null}"#)
        XCTAssertEqual(try JSONValue.parse(Data("[1, 1.5, true, \"é\"]".utf8)), [1, 1.5, true, "é"])
    }
}

final class JSONParserTests: XCTestCase {
    func testValuesEscapesNumbersAndErrors() throws {
        let text = #"{"a": [1, -2, 3.5, 1e3, true, false, null], "s": "q\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00", "big": 123456789012345678901, "e": {}}"#
        let value = try JSONValue.parse(Data(text.utf8))
        XCTAssertEqual(value["a"], .array([.int(1), .int(-2), .double(3.5), .double(1000), .bool(true), .bool(false), .null]))
        XCTAssertEqual(value["s"], .string("q\"\\/\u{8}\u{c}\n\r\té😀"))
        XCTAssertEqual(value["big"], .double(123456789012345678901), "integers beyond Int become doubles")
        XCTAssertEqual(value["e"], .object([:]))
        // The serializer's output parses back to the same value.
        XCTAssertEqual(try JSONValue.parse(value.serialized()), value)
        for bad in ["", "{", "[1,]", "{\"a\" 1}", "01", "1.", "\"\\ud800\"", "\"\u{1}\"", "nul", "[1] x", "{\"a\":1,}", "-", "\"\\x\""] {
            XCTAssertThrowsError(try JSONValue.parse(Data(bad.utf8)), bad)
        }
        XCTAssertThrowsError(try JSONValue.parse(Data([0x22, 0xFF, 0x22])), "invalid UTF-8")
    }

    func testDeepNestingIsLinearAndBounded() throws {
        // 500 levels parse (the limit is 512); deeper is refused rather than recursing on.
        let deep = String(repeating: "[", count: 500) + String(repeating: "]", count: 500)
        XCTAssertNoThrow(try JSONValue.parse(Data(deep.utf8)))
        let tooDeep = String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)
        XCTAssertThrowsError(try JSONValue.parse(Data(tooDeep.utf8))) { XCTAssertTrue("\($0)".contains("nested deeper"), "\($0)") }
    }
}
