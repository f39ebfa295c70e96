import COpenSSL
import Foundation

/// Signs and verifies messages with HMAC-SHA256 over header ‖ parent ‖ metadata ‖ content,
/// as lowercase hex. An empty key means no signing and no checking (jupyter_client's rule).
public struct MessageSigner: Sendable {
    public let key: [UInt8]

    public init(key: String) {
        // The key is the UTF-8 of the string as given, never hex-decoded.
        self.key = Array(key.utf8)
    }

    public var isEnabled: Bool { !key.isEmpty }

    /// The signature of the four JSON frames, or empty bytes when signing is off.
    public func signature(of parts: [Data]) -> Data {
        guard isEnabled else { return Data() }
        var digest = hmacSHA256(parts)
        return Data(hexLowercase(&digest).utf8)
    }

    /// Constant-time check of a received signature against the exact received bytes.
    public func verify(signature: Data, parts: [Data]) -> Bool {
        guard isEnabled else { return true }
        let expected = self.signature(of: parts)
        guard expected.count == signature.count else { return false }
        return expected.withUnsafeBytes { a in
            signature.withUnsafeBytes { b in
                CRYPTO_memcmp(a.baseAddress, b.baseAddress, a.count) == 0
            }
        }
    }

    private func hmacSHA256(_ parts: [Data]) -> [UInt8] {
        var message = Data()
        message.reserveCapacity(parts.reduce(0) { $0 + $1.count })
        for part in parts { message.append(part) }
        var digest = [UInt8](repeating: 0, count: Int(EVP_MAX_MD_SIZE))
        var length: UInt32 = 0
        key.withUnsafeBytes { keyBytes in
            message.withUnsafeBytes { messageBytes in
                _ = HMAC(EVP_sha256(), keyBytes.baseAddress, Int32(keyBytes.count),
                         messageBytes.bindMemory(to: UInt8.self).baseAddress, messageBytes.count,
                         &digest, &length)
            }
        }
        return Array(digest.prefix(Int(length)))
    }

    private func hexLowercase(_ bytes: inout [UInt8]) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var out = [UInt8]()
        out.reserveCapacity(bytes.count * 2)
        for b in bytes {
            out.append(digits[Int(b >> 4)])
            out.append(digits[Int(b & 0x0f)])
        }
        return String(decoding: out, as: UTF8.self)
    }
}
