import Foundation
import JupyterProtocol
import XCTest

final class SignatureHistoryTests: XCTestCase {
    func testASignatureIsAcceptedOnceAndTheHistoryStaysBounded() {
        let history = SignatureHistory(capacity: 100)
        let first = Data("abc".utf8)
        XCTAssertTrue(history.insert(first))
        XCTAssertFalse(history.insert(first), "a replay is refused")
        XCTAssertTrue(history.insert(Data()), "empty signatures (signing off) are never refused")
        XCTAssertTrue(history.insert(Data()))
        for i in 0..<1000 { XCTAssertTrue(history.insert(Data("sig-\(i)".utf8))) }
        XCTAssertLessThanOrEqual(history.count, 100)
        XCTAssertFalse(history.insert(Data("sig-999".utf8)), "recent signatures are still remembered")
    }

    func testTheCodecKeepsTheSignatureItVerified() throws {
        let codec = WireCodec(signer: MessageSigner(key: "k"))
        let header = MessageHeader(msgType: "kernel_info_request", session: "s")
        let frames = codec.encode(Message(header: header))
        let decoded = try codec.decode(frames)
        let delimiter = try XCTUnwrap(frames.firstIndex(of: WireCodec.delimiter))
        XCTAssertEqual(decoded.signature, frames[delimiter + 1])
        XCTAssertFalse(decoded.signature.isEmpty)
    }
}
