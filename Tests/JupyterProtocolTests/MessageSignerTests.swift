import Foundation
import JupyterProtocol
import XCTest

final class MessageSignerTests: XCTestCase {
    /// RFC 4231, test case 2: HMAC-SHA256 with key "Jefe". The data is split over the four
    /// parts to check that the signer hashes their concatenation.
    func testKnownVectorOverConcatenatedParts() {
        let signer = MessageSigner(key: "Jefe")
        let parts = ["what do ", "ya want ", "for ", "nothing?"].map { Data($0.utf8) }
        XCTAssertEqual(String(decoding: signer.signature(of: parts), as: UTF8.self),
                       "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843")
    }

    /// RFC 4231, test case 1: a 20-byte key of 0x0b, "Hi There".
    func testKeyIsTheStringsUTF8NotHexDecoded() {
        let key = String(repeating: "\u{0b}", count: 20)
        let signer = MessageSigner(key: key)
        XCTAssertEqual(String(decoding: signer.signature(of: [Data("Hi There".utf8)]), as: UTF8.self),
                       "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    }

    func testEmptyKeyMeansNoSigningAndNoChecking() {
        let signer = MessageSigner(key: "")
        XCTAssertTrue(signer.signature(of: [Data("x".utf8)]).isEmpty)
        XCTAssertTrue(signer.verify(signature: Data("anything".utf8), parts: [Data("x".utf8)]))
    }

    func testVerifyRejectsTamperedPartsAndUppercaseHex() {
        let signer = MessageSigner(key: "secret")
        let parts = [Data("{}".utf8), Data("{}".utf8), Data("{}".utf8), Data("{\"a\":1}".utf8)]
        let good = signer.signature(of: parts)
        XCTAssertTrue(signer.verify(signature: good, parts: parts))
        var tampered = parts
        tampered[3] = Data("{\"a\":2}".utf8)
        XCTAssertFalse(signer.verify(signature: good, parts: tampered))
        XCTAssertFalse(signer.verify(signature: Data(String(decoding: good, as: UTF8.self).uppercased().utf8), parts: parts))
        XCTAssertFalse(signer.verify(signature: Data(), parts: parts))
    }
}
